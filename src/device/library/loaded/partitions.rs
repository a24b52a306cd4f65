//! Partitions of a library cartridge, as LTFS lays them out: MODE SENSE and MODE SELECT of
//! the Medium Partition page (11h) beside the partition's own pages, and FORMAT MEDIUM,
//! which makes, resizes or removes the partitions' images and records the layout in the
//! cartridge's memory.

use std::io;

use super::{check, open_part, partition_image, reply, run, Loaded, ERASE_LONG, REWIND};
use crate::device::library::lto::{self, Access};
use crate::device::{Completion, DataDirection, ScsiDevice};
use crate::scsi::partition_page::{self, PartitionPage};
use crate::scsi::ssc::ModeSelect;
use crate::scsi::{Asc, Sense, SenseKey};

impl Loaded {
    /// The Medium Partition page with the layout the cartridge has.
    fn layout(&self) -> PartitionPage {
        let sizes: Vec<u64> = self.parts().map(|t| t.config().capacity).collect();
        if sizes.len() < 2 {
            return PartitionPage::single();
        }
        // In megabytes when they fit, else gigabytes (rounded up).
        let units: u8 = if sizes.iter().all(|&s| s / 1_000_000 < 0xffff) {
            6
        } else {
            9
        };
        let unit = 10u64.pow(u32::from(units));
        let mut page = PartitionPage {
            additional: u8::try_from(sizes.len() - 1).unwrap_or(1),
            flags: 0x38, // IDP, PSUM 11b
            units,
            sizes: [0; partition_page::MAX_PARTITIONS],
        };
        for (s, &bytes) in page.sizes.iter_mut().zip(&sizes) {
            *s = u16::try_from(bytes.div_ceil(unit)).unwrap_or(0xfffe);
        }
        page
    }

    /// MODE SENSE: the partition's data with MEDIUM TYPE this cartridge's; page 11h
    /// (alone, or with 3Fh) added after the partition's pages.
    pub(super) fn mode_sense(&mut self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let ten = cdb.first() == Some(&0x5a);
        let page_code = cdb.get(2).map_or(0, |b| b & 0x3f);
        let pc = cdb.get(2).map_or(0, |b| b >> 6);
        let allocation = if ten {
            match cdb.get(7..9) {
                Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
                _ => 0,
            }
        } else {
            cdb.get(4).map_or(0, |&b| usize::from(b))
        };
        let ours = page_code == partition_page::PAGE_CODE || page_code == 0x3f;
        // The partition answers for the header, block descriptor and its own pages (the
        // CDB checked as if it asked for all pages).
        let mut inner = cdb.to_vec();
        if ours {
            if let Some(b) = inner.get_mut(2) {
                *b = (*b & 0xc0) | 0x3f;
            }
            if ten {
                if let Some(b) = inner.get_mut(7..9) {
                    b.copy_from_slice(&[0xff, 0xff]);
                }
            } else if let Some(b) = inner.get_mut(4) {
                *b = 0xff;
            }
        }
        let mut data = vec![0u8; if ten { 0xffff } else { 0xff }];
        let c = match self
            .tape()
            .execute(&inner, DataDirection::FromDevice(&mut data))
        {
            Ok(c) => c,
            Err(_) => {
                return check(
                    Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE),
                    buf.len(),
                )
            }
        };
        if !c.is_good() {
            return Completion {
                residual: buf.len(),
                ..c
            };
        }
        data.truncate(data.len() - c.residual.min(data.len()));
        let header = if ten { 8 } else { 4 };
        if pc != 1 {
            if let Some(b) = data.get_mut(if ten { 2 } else { 1 }) {
                *b = self.medium_type;
            }
        }
        if ours {
            if page_code == partition_page::PAGE_CODE {
                let bdl = if ten {
                    usize::from(u16::from_be_bytes([
                        data.get(6).copied().unwrap_or(0),
                        data.get(7).copied().unwrap_or(0),
                    ]))
                } else {
                    usize::from(data.get(3).copied().unwrap_or(0))
                };
                data.truncate(header + bdl);
            }
            let page = match pc {
                1 => PartitionPage::changeable(),
                2 => PartitionPage::single().encode(),
                _ => self.pending.unwrap_or_else(|| self.layout()).encode(),
            };
            partition_page::add_page(&mut data, ten, &page);
        }
        reply(buf, &data, allocation)
    }

    /// MODE SELECT: a Medium Partition page is kept for FORMAT MEDIUM; the rest of the list
    /// goes to every partition (the current one checks it). MEDIUM TYPE as MODE SENSE
    /// reported it is accepted back.
    pub(super) fn mode_select(&mut self, cdb: &[u8], buf: &[u8]) -> Completion {
        let select = match if cdb.first() == Some(&0x55) {
            ModeSelect::decode10(cdb)
        } else {
            ModeSelect::decode6(cdb)
        } {
            Ok(s) => s,
            Err(e) => return check(Sense::from(e), buf.len()),
        };
        let len = usize::from(select.parameter_list_length);
        let Some(params) = buf.get(..len) else {
            return self
                .tape()
                .execute(cdb, DataDirection::ToDevice(buf))
                .unwrap_or_else(|_| {
                    check(
                        Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE),
                        buf.len(),
                    )
                });
        };
        let mut params = params.to_vec();
        let medium_at = if select.ten { 2 } else { 1 };
        if let Some(b) = params
            .get_mut(medium_at)
            .filter(|b| **b == self.medium_type)
        {
            *b = 0;
        }
        let (rest, page) = match partition_page::cut_partition_page(&params, select.ten) {
            Ok(r) => r,
            Err(e) => return check(Sense::from(e), buf.len()),
        };
        let mut inner = cdb.to_vec();
        let n = u16::try_from(rest.len()).unwrap_or(u16::MAX);
        if select.ten {
            if let Some(b) = inner.get_mut(7..9) {
                b.copy_from_slice(&n.to_be_bytes());
            }
        } else if let Some(b) = inner.get_mut(4) {
            *b = u8::try_from(n).unwrap_or(u8::MAX);
        }
        let c = match self.tape().execute(&inner, DataDirection::ToDevice(&rest)) {
            Ok(c) => c,
            Err(_) => {
                return check(
                    Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE),
                    buf.len(),
                )
            }
        };
        if !c.is_good() {
            return Completion {
                residual: buf.len(),
                ..c
            };
        }
        for (i, t) in self.parts().enumerate() {
            if i != self.current {
                let _ = t.execute(&inner, DataDirection::ToDevice(&rest));
            }
        }
        if page.is_some() {
            self.pending = page;
        }
        Completion::good(buf.len() - len)
    }

    /// FORMAT MEDIUM (SSC-4): 0h one partition, 1h the Medium Partition page's layout, 2h
    /// both (the same here). At the beginning of partition 0 only (05/3B/0C, as mhvtl);
    /// every partition ends up empty.
    pub(super) fn format_medium(&mut self, cdb: &[u8], total: usize) -> Completion {
        let Some(&[_, b1, b2, l0, l1, _]) = cdb.get(..6) else {
            return check(Sense::invalid_field_in_cdb(0, None), total);
        };
        if b1 & 0xfc != 0 {
            return check(Sense::invalid_field_in_cdb(1, Some(7)), total);
        }
        if b2 & 0xf0 != 0 || b2 & 0x0f > 2 {
            return check(Sense::invalid_field_in_cdb(2, Some(3)), total);
        }
        if (l0, l1) != (0, 0) {
            return check(Sense::invalid_field_in_cdb(3, None), total);
        }
        if let Err(s) = run(self.tape(), &[0, 0, 0, 0, 0, 0]) {
            return check(s, total);
        }
        if self.access != Access::ReadWrite {
            return check(
                Sense::new(SenseKey::DATA_PROTECT, Asc::WRITE_PROTECTED),
                total,
            );
        }
        if self.current != 0 || self.tape().position() != 0 {
            return check(
                Sense::illegal_request(Asc::POSITION_PAST_BEGINNING_OF_MEDIUM),
                total,
            );
        }
        let layout = match b2 & 0x0f {
            0 => PartitionPage::single(),
            _ => self.pending.unwrap_or_else(|| self.layout()),
        };
        let total_capacity = self.config.capacity;
        let sizes = layout.partition_bytes(total_capacity);
        match self.repartition(&sizes) {
            Ok(()) => {
                self.pending = None;
                Completion::good(total)
            }
            Err(e) => {
                tracing::error!(barcode = %self.barcode, error = %e, "FORMAT MEDIUM failed");
                check(
                    Sense::new(SenseKey::MEDIUM_ERROR, Asc::MEDIUM_FORMAT_CORRUPTED),
                    total,
                )
            }
        }
    }

    /// Lays the cartridge out as partitions of `sizes`, every one empty: images of new
    /// partitions are made before the memory records them, images of partitions gone are
    /// removed after.
    fn repartition(&mut self, sizes: &[u64]) -> io::Result<()> {
        let err = |s: Sense| io::Error::other(format!("{s}"));
        if self.single && sizes.len() > 1 {
            return Err(io::Error::other(
                "object store cartridges have one partition",
            ));
        }
        for (n, &size) in sizes.iter().enumerate() {
            if n >= self.partitions() {
                let rings = &self.rings;
                let part = open_part(&self.name, &self.image, n, &self.config, size, rings)?;
                self.more.push(part);
            }
            let Some(part) = self.part_mut(n) else {
                continue;
            };
            part.resize(size, lto::early_warning_zone(size));
            run(part, &REWIND).map_err(err)?;
            run(part, &ERASE_LONG).map_err(err)?;
        }
        if sizes.len() == 1 {
            self.mam.set_partitions(&[self.config.capacity]);
        } else {
            self.mam.set_partitions(sizes);
        }
        self.mam.save()?;
        while self.partitions() > sizes.len().max(1) {
            let n = self.partitions() - 1;
            self.more.truncate(n - 1);
            match std::fs::remove_file(partition_image(&self.image, n)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.current = 0;
        // The new partitions start in the mode the drive is in.
        let mut mode = [0u8; 12];
        if let Ok(c) = self.first.execute(
            &[0x1a, 0x08, 0, 0, 12, 0],
            DataDirection::FromDevice(&mut mode),
        ) {
            if c.is_good() {
                let [_, _, dsp, _, ..] = mode;
                let mut select = [0u8; 12];
                select[2] = dsp & 0x70;
                select[3] = 8;
                if let Some(bd) = select.get_mut(4..12) {
                    bd.copy_from_slice(mode.get(4..12).unwrap_or(&[0; 8]));
                }
                for t in &self.more {
                    let _ = t.execute(&[0x15, 0x10, 0, 0, 12, 0], DataDirection::ToDevice(&select));
                }
            }
        }
        Ok(())
    }
}
