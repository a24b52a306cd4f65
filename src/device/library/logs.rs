//! LOG SENSE as a library drive answers it ([`crate::scsi::log_sense`]): supported pages,
//! Volume Statistics (17h) and Tape Capacity (31h) of the cartridge in the drive, in
//! megabytes (10^6 bytes), per partition (one or two).

use super::mam::MediumFacts;
use crate::device::Completion;
use crate::scsi::log_sense::{self, page, partition_records, LogSense, Parameter};
use crate::scsi::{Asc, Sense, SenseKey};

const MB: u64 = 1_000_000;

fn mb(bytes: u64) -> u32 {
    u32::try_from(bytes / MB).unwrap_or(u32::MAX)
}

/// LOG SENSE; `medium` is the facts of the cartridge's partitions (partition 0 first) and
/// its load count, None for an empty drive (pages 17h and 31h are then NOT READY, 3A/00).
pub fn log_sense(cdb: &[u8], buf: &mut [u8], medium: Option<(&[MediumFacts], u64)>) -> Completion {
    let cdb = match LogSense::decode(cdb) {
        Ok(c) => c,
        Err(e) => return Completion::check_condition(&Sense::from(e), buf.len()),
    };
    let data = match (cdb.page_code, medium) {
        (page::SUPPORTED, _) => log_sense::supported_pages(&[
            page::SUPPORTED,
            page::VOLUME_STATISTICS,
            page::TAPE_CAPACITY,
        ]),
        (page::VOLUME_STATISTICS | page::TAPE_CAPACITY, None) => {
            let sense = Sense::new(SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT);
            return Completion::check_condition(&sense, buf.len());
        }
        (page::VOLUME_STATISTICS, Some((parts, loads))) => {
            let per = |value: &dyn Fn(&MediumFacts) -> u64| -> Vec<(u16, u32)> {
                (0u16..)
                    .zip(parts)
                    .map(|(p, f)| (p, mb(value(f))))
                    .collect()
            };
            let used = |f: &MediumFacts| f.used.min(f.capacity);
            let params = [
                Parameter {
                    code: 0x0001,
                    value: u32::try_from(loads)
                        .unwrap_or(u32::MAX)
                        .to_be_bytes()
                        .to_vec(),
                },
                Parameter {
                    code: 0x0202,
                    value: partition_records(&per(&|f| f.capacity)),
                },
                Parameter {
                    code: 0x0203,
                    value: partition_records(&per(&used)),
                },
                Parameter {
                    code: 0x0204,
                    value: partition_records(&per(&|f| f.capacity - used(f))),
                },
            ];
            log_sense::log_page(cdb.page_code, &params, cdb.parameter_pointer)
        }
        (page::TAPE_CAPACITY, Some((parts, _))) => {
            let remaining = |p: usize| {
                parts
                    .get(p)
                    .map_or(0, |f| mb(f.capacity.saturating_sub(f.used)))
            };
            let maximum = |p: usize| parts.get(p).map_or(0, |f| mb(f.capacity));
            let params: Vec<Parameter> = [
                (1, remaining(0)),
                (2, remaining(1)),
                (3, maximum(0)),
                (4, maximum(1)),
            ]
            .into_iter()
            .map(|(code, v): (u16, u32)| Parameter {
                code,
                value: v.to_be_bytes().to_vec(),
            })
            .collect();
            log_sense::log_page(cdb.page_code, &params, cdb.parameter_pointer)
        }
        _ => {
            return Completion::check_condition(&Sense::invalid_field_in_cdb(2, Some(5)), buf.len())
        }
    };
    let n = data
        .len()
        .min(usize::from(cdb.allocation_length))
        .min(buf.len());
    if let (Some(d), Some(s)) = (buf.get_mut(..n), data.get(..n)) {
        d.copy_from_slice(s);
    }
    Completion::good(buf.len() - n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_pages_in_megabytes() {
        let facts = MediumFacts {
            barcode: "XC0001L9".into(),
            capacity: 18_000_000_000_000,
            used: 3_000_000_000,
            density_code: 0x60,
        };
        let mut buf = [0u8; 128];
        let c = log_sense(
            &[0x4d, 0, 0x71, 0, 0, 0, 0, 0, 128, 0],
            &mut buf,
            Some((std::slice::from_ref(&facts), 4)),
        );
        assert!(c.is_good());
        assert_eq!(buf[..4], [0x31, 0, 0, 32]);
        // Remaining 17 997 000 MB, maximum 18 000 000 MB, partition 1 none.
        assert_eq!(buf[4..12], [0, 1, 3, 4, 0x01, 0x12, 0x9c, 0xc8]);
        assert_eq!(buf[20..28], [0, 3, 3, 4, 0x01, 0x12, 0xa8, 0x80]);
        let c = log_sense(
            &[0x4d, 0, 0x57, 0, 0, 0x02, 0x04, 0, 128, 0],
            &mut buf,
            Some((std::slice::from_ref(&facts), 4)),
        );
        assert!(c.is_good());
        assert_eq!(
            buf[..16],
            [0x17, 0, 0, 12, 0x02, 0x04, 3, 8, 7, 0, 0, 0, 0x01, 0x12, 0x9c, 0xc8]
        );
        let c = log_sense(&[0x4d, 0, 0x57, 0, 0, 0, 0, 0, 128, 0], &mut buf, None);
        assert_eq!(c.decoded_sense().unwrap().asc, Asc::MEDIUM_NOT_PRESENT);
        let c = log_sense(&[0x4d, 0, 0x40, 0, 0, 0, 0, 0, 128, 0], &mut buf, None);
        assert!(c.is_good());
        assert_eq!(buf[..7], [0, 0, 0, 3, 0, 0x17, 0x31]);
        let c = log_sense(&[0x4d, 0, 0x42, 0, 0, 0, 0, 0, 128, 0], &mut buf, None);
        assert_eq!(c.decoded_sense().unwrap().field_pointer(), Some(2));
    }
}
