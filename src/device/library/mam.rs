//! A cartridge's medium auxiliary memory: the attributes kept beside its image as
//! `BARCODE.mam` (replaced atomically), or beside its index in an object store as
//! `PREFIX/BARCODE/mam` (so they travel with the cartridge from gateway to gateway), and
//! READ ATTRIBUTE / WRITE ATTRIBUTE as a drive answers them for the cartridge it holds.
//!
//! The file holds what the cartridge remembers — its load count, the attributes
//! applications wrote (application vendor, barcode, LTFS's volume coherency information…)
//! and, for a cartridge made smaller than its generation, MAXIMUM CAPACITY IN PARTITION —
//! as partition-number + attribute records in the READ ATTRIBUTE wire form. What the drive
//! computes (remaining capacity, MAM space left, the medium's identity) is not stored.
//! At most [`MAM_CAPACITY`] bytes of attributes, as an LTO cartridge memory holds.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cartridge_store::CartridgeStore;
use crate::device::Completion;
use crate::scsi::attribute::{
    decode_parameter_list, host_length, host_writable, id, with_available_data, Attribute,
    ReadAttribute, ReadAttributeAction, WriteAttribute,
};
use crate::scsi::{Asc, Put, Reader, Sense, SenseKeySpecific};

/// Bytes of attributes a cartridge holds (MAM CAPACITY).
pub const MAM_CAPACITY: usize = 16 * 1024;

const MIB: u64 = 1 << 20;

/// The attributes of one cartridge.
#[derive(Clone, Debug)]
pub struct Mam {
    home: Home,
    entries: BTreeMap<(u8, u16), Attribute>,
}

/// Where a cartridge's attributes are kept.
#[derive(Clone, Debug)]
enum Home {
    /// `BARCODE.mam` beside the image.
    File(PathBuf),
    /// Beside the cartridge in the cartridge store it lives in (an object store:
    /// `PREFIX/BARCODE/mam`).
    Store {
        store: Arc<dyn CartridgeStore>,
        barcode: String,
    },
}

impl std::fmt::Display for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Store { store, barcode } => write!(f, "{barcode} (store, as {})", store.name()),
        }
    }
}

/// What the drive knows that the attributes report.
#[derive(Clone, Debug)]
pub struct MediumFacts {
    pub barcode: String,
    pub capacity: u64,
    pub used: u64,
    pub density_code: u8,
}

fn check(sense: Sense, residual: usize) -> Completion {
    Completion::check_condition(&sense, residual)
}

fn invalid_parameter(offset: usize) -> Sense {
    Sense::illegal_request(Asc::INVALID_FIELD_IN_PARAMETER_LIST).with_sks(SenseKeySpecific::Field {
        command: false,
        bit: None,
        pointer: u16::try_from(offset).unwrap_or(u16::MAX),
    })
}

impl Mam {
    /// The attribute file of the cartridge image `image` (`BARCODE.tap` -> `BARCODE.mam`).
    pub fn path_of(image: &Path) -> PathBuf {
        image.with_extension("mam")
    }

    /// Reads the attribute file (none yet: no attributes). A damaged file is an error.
    pub fn load(path: PathBuf) -> io::Result<Self> {
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Self::parse(Home::File(path), &bytes)
    }

    /// Reads cartridge `barcode`'s attributes from the cartridge store `store` (none yet:
    /// no attributes). A damaged object, or a store that cannot answer, is an error.
    pub fn load_from_store(store: Arc<dyn CartridgeStore>, barcode: &str) -> io::Result<Self> {
        let bytes = store.read_mam(barcode)?;
        let home = Home::Store {
            store,
            barcode: barcode.to_string(),
        };
        Self::parse(home, &bytes)
    }

    fn parse(home: Home, bytes: &[u8]) -> io::Result<Self> {
        let mut entries = BTreeMap::new();
        let mut r = Reader::new(
            bytes
                .get(..bytes.len().min(2 * MAM_CAPACITY))
                .unwrap_or(&[]),
        );
        while !r.is_empty() {
            let bad = |_| io::Error::new(io::ErrorKind::InvalidData, format!("{home}: damaged"));
            let partition = r.u8().map_err(bad)?;
            let a = Attribute::decode(&mut r).map_err(bad)?;
            entries.insert((partition, a.id), a);
        }
        Ok(Self { home, entries })
    }

    /// Writes the attributes where they live: the file atomically, or the store's object
    /// (one PUT, which replaces it whole).
    pub fn save(&self) -> io::Result<()> {
        let mut bytes = Vec::new();
        for ((partition, _), a) in &self.entries {
            bytes.put_u8(*partition);
            a.encode(&mut bytes);
        }
        let path = match &self.home {
            Home::File(path) => path,
            Home::Store { store, barcode } => return store.write_mam(barcode, &bytes),
        };
        let tmp = path.with_extension("mam.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
    }

    pub fn get(&self, partition: u8, id: u16) -> Option<&Attribute> {
        self.entries.get(&(partition, id))
    }

    pub fn set(&mut self, partition: u8, a: Attribute) {
        self.entries.insert((partition, a.id), a);
    }

    /// A capacity set for this cartridge: the sum of its partitions' MAXIMUM CAPACITY IN
    /// PARTITION (one partition unless FORMAT MEDIUM partitioned it).
    pub fn capacity(&self) -> Option<u64> {
        self.partition_capacities().map(|c| c.iter().sum())
    }

    /// The capacity of each partition, partition 0 first, if this cartridge has one set.
    pub fn partition_capacities(&self) -> Option<Vec<u64>> {
        let caps: Vec<u64> = (0u8..=u8::MAX)
            .map_while(|p| {
                let v = self.get(p, id::MAXIMUM_CAPACITY)?;
                let bytes: [u8; 8] = v.value.as_slice().try_into().ok()?;
                u64::from_be_bytes(bytes).checked_mul(MIB)
            })
            .collect();
        (!caps.is_empty()).then_some(caps)
    }

    /// Makes this a cartridge of `bytes` (rounded down to MiB), one partition.
    pub fn set_capacity(&mut self, bytes: u64) {
        self.set_partitions(&[bytes]);
    }

    /// Makes this a cartridge of partitions of these sizes (each rounded down to MiB).
    pub fn set_partitions(&mut self, sizes: &[u64]) {
        self.entries.retain(|(_, i), _| *i != id::MAXIMUM_CAPACITY);
        for (p, bytes) in (0u8..).zip(sizes) {
            self.set(
                p,
                Attribute::binary(id::MAXIMUM_CAPACITY, &(bytes / MIB).to_be_bytes()),
            );
        }
    }

    /// LOAD COUNT so far.
    pub fn load_count(&self) -> u64 {
        self.get(0, id::LOAD_COUNT)
            .and_then(|a| <[u8; 8]>::try_from(a.value.as_slice()).ok())
            .map_or(0, u64::from_be_bytes)
    }

    /// Counts one more load (LOAD COUNT).
    pub fn count_load(&mut self) {
        let n = self.load_count();
        self.set(0, Attribute::binary(id::LOAD_COUNT, &(n + 1).to_be_bytes()));
    }

    /// The medium's contents changed (the first write after a load): VOLUME CHANGE
    /// REFERENCE goes up, so an application that recorded it (LTFS, in its volume
    /// coherency information) sees that someone wrote since.
    pub fn count_volume_change(&mut self) {
        let n = self
            .get(0, id::VOLUME_CHANGE_REFERENCE)
            .and_then(|a| <[u8; 4]>::try_from(a.value.as_slice()).ok())
            .map_or(0, u32::from_be_bytes);
        let next = n.wrapping_add(1).max(1);
        self.set(
            0,
            Attribute::binary(id::VOLUME_CHANGE_REFERENCE, &next.to_be_bytes()),
        );
    }

    /// Bytes the host attributes take (what MAM SPACE REMAINING counts).
    fn host_bytes(&self) -> usize {
        self.entries
            .values()
            .filter(|a| host_writable(a.id))
            .map(|a| 5 + a.value.len())
            .sum()
    }

    /// Every attribute of `partition`: the drive's, the medium's, and those stored.
    fn attributes(&self, partition: u8, facts: &MediumFacts) -> Vec<Attribute> {
        let remaining = facts.capacity.saturating_sub(facts.used) / MIB;
        let space = MAM_CAPACITY.saturating_sub(self.host_bytes()) as u64;
        let mut all: BTreeMap<u16, Attribute> = [
            Attribute::binary(id::REMAINING_CAPACITY, &remaining.to_be_bytes()),
            Attribute::binary(id::MAXIMUM_CAPACITY, &(facts.capacity / MIB).to_be_bytes()),
            Attribute::binary(id::LOAD_COUNT, &0u64.to_be_bytes()),
            Attribute::binary(id::MAM_SPACE_REMAINING, &space.to_be_bytes()),
            Attribute::ascii(id::ASSIGNING_ORGANIZATION, "LTO-CVE", 8),
            Attribute::binary(id::FORMAT_DENSITY_CODE, &[facts.density_code]),
            Attribute::binary(id::VOLUME_CHANGE_REFERENCE, &1u32.to_be_bytes()),
            Attribute::ascii(id::MEDIUM_MANUFACTURER, "XCOPYD", 8),
            Attribute::ascii(id::MEDIUM_SERIAL_NUMBER, &facts.barcode, 32),
            Attribute::binary(id::MEDIUM_DENSITY_CODE, &[facts.density_code]),
            Attribute::binary(id::MAM_CAPACITY, &(MAM_CAPACITY as u64).to_be_bytes()),
            Attribute::binary(id::MEDIUM_TYPE, &[0]),
        ]
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
        for ((p, i), a) in &self.entries {
            // Stored device attributes (load count, volume change reference) are the
            // medium's, the same in every partition; host attributes are per partition; a
            // stored capacity is already in.
            let mine = *p == partition || (*p == 0 && !host_writable(*i));
            if mine && *i != id::MAXIMUM_CAPACITY {
                all.insert(*i, a.clone());
            }
        }
        all.into_values().collect()
    }

    /// READ ATTRIBUTE for the cartridge; `facts` has one entry per partition.
    pub fn read_attribute(&self, cdb: &[u8], buf: &mut [u8], facts: &[MediumFacts]) -> Completion {
        let cdb = match ReadAttribute::decode(cdb) {
            Ok(c) => c,
            Err(e) => return check(Sense::from(e), buf.len()),
        };
        if cdb.volume != 0 {
            return check(Sense::invalid_field_in_cdb(5, None), buf.len());
        }
        let Some(partition_facts) = facts.get(usize::from(cdb.partition)) else {
            return check(Sense::invalid_field_in_cdb(7, None), buf.len());
        };
        let attributes = self.attributes(cdb.partition, partition_facts);
        let mut body = Vec::new();
        let data = match cdb.action {
            ReadAttributeAction::Values => {
                for a in attributes.iter().filter(|a| a.id >= cdb.first) {
                    a.encode(&mut body);
                }
                with_available_data(&body)
            }
            ReadAttributeAction::List | ReadAttributeAction::Supported => {
                for a in attributes.iter().filter(|a| a.id >= cdb.first) {
                    body.put_u16(a.id);
                }
                with_available_data(&body)
            }
            ReadAttributeAction::PartitionList => {
                vec![0, 2, 0, u8::try_from(facts.len()).unwrap_or(u8::MAX)]
            }
        };
        let n = data
            .len()
            .min(cdb.allocation_length as usize)
            .min(buf.len());
        if let (Some(d), Some(s)) = (buf.get_mut(..n), data.get(..n)) {
            d.copy_from_slice(s);
        }
        Completion::good(buf.len() - n)
    }

    /// WRITE ATTRIBUTE: every attribute is checked (host attributes only, standard lengths,
    /// the space left) before any is stored; a zero length deletes one. The file is saved
    /// before status. The cartridge has `partitions` partitions.
    pub fn write_attribute(&mut self, cdb: &[u8], params: &[u8], partitions: usize) -> Completion {
        let cdb = match WriteAttribute::decode(cdb) {
            Ok(c) => c,
            Err(e) => return check(Sense::from(e), params.len()),
        };
        if cdb.volume != 0 {
            return check(Sense::invalid_field_in_cdb(5, None), params.len());
        }
        if usize::from(cdb.partition) >= partitions {
            return check(Sense::invalid_field_in_cdb(7, None), params.len());
        }
        let len = cdb.parameter_list_length as usize;
        let Some(list) = params.get(..len) else {
            return check(Sense::invalid_field_in_cdb(10, None), params.len());
        };
        let attributes = match decode_parameter_list(list) {
            Ok(a) => a,
            Err(e) => return check(Sense::from(e), params.len()),
        };
        let mut next = self.clone();
        let mut at = 4;
        for a in attributes {
            if !host_writable(a.id) {
                tracing::info!(
                    attribute = a.id,
                    "WRITE ATTRIBUTE of a read-only attribute refused"
                );
                return check(invalid_parameter(at), params.len());
            }
            let fixed = host_length(a.id).is_some_and(|n| n != a.value.len());
            if fixed && !a.value.is_empty() {
                return check(invalid_parameter(at + 3), params.len());
            }
            at += 5 + a.value.len();
            if a.value.is_empty() {
                next.entries.remove(&(cdb.partition, a.id));
            } else {
                let stored = Attribute {
                    read_only: false,
                    ..a
                };
                next.set(cdb.partition, stored);
            }
        }
        if next.host_bytes() > MAM_CAPACITY {
            return check(Sense::illegal_request(Asc::new(0x55, 0x06)), params.len());
        }
        if let Err(e) = next.save() {
            tracing::error!(mam = %self.home, error = %e, "MAM not saved");
            return check(
                Sense::new(crate::scsi::SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR),
                params.len(),
            );
        }
        *self = next;
        Completion::good(params.len() - len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::SenseKey;

    fn facts() -> MediumFacts {
        MediumFacts {
            barcode: "XC0001L9".into(),
            capacity: 64 << 20,
            used: 3 << 20,
            density_code: 0x60,
        }
    }

    fn read(m: &Mam, first: u16, action: u8) -> Vec<u8> {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x8c;
        cdb[1] = action;
        cdb[8..10].copy_from_slice(&first.to_be_bytes());
        cdb[10..14].copy_from_slice(&4096u32.to_be_bytes());
        let mut buf = vec![0u8; 4096];
        let c = m.read_attribute(&cdb, &mut buf, &[facts()]);
        assert!(c.is_good(), "{c:?}");
        buf.truncate(4096 - c.residual);
        buf
    }

    fn write(m: &mut Mam, list: &[u8]) -> Completion {
        let mut cdb = [0u8; 16];
        cdb[0] = 0x8d;
        cdb[10..14].copy_from_slice(&(list.len() as u32).to_be_bytes());
        m.write_attribute(&cdb, list, 1)
    }

    #[test]
    fn device_and_medium_attributes_then_host_ones_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("XC0001L9.mam");
        let mut m = Mam::load(path.clone()).unwrap();
        m.count_load();
        // Remaining 61 MiB of 64: attribute 0000h, 8-byte binary, read only.
        let data = read(&m, 0, 0);
        assert_eq!(data[4..17], [0, 0, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 61]);
        let ids: Vec<u16> = read(&m, 0, 1)[4..]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(
            ids,
            [
                0x0000, 0x0001, 0x0003, 0x0004, 0x0005, 0x0006, 0x0009, 0x0400, 0x0401, 0x0405,
                0x0407, 0x0408
            ]
        );
        // LOAD COUNT 1, from 0003h on.
        let data = read(&m, 3, 0);
        assert_eq!(data[4..17], [0, 3, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        // An application writes its vendor and the coherency information; they come back
        // writable, after a restart too.
        let mut list = vec![0, 0, 0, 0];
        Attribute {
            read_only: false,
            ..Attribute::ascii(0x0800, "LTFS", 8)
        }
        .encode(&mut list);
        Attribute {
            read_only: false,
            ..Attribute::binary(0x080c, &[1, 2, 3])
        }
        .encode(&mut list);
        let n = (list.len() - 4) as u32;
        list[..4].copy_from_slice(&n.to_be_bytes());
        assert!(write(&mut m, &list).is_good());
        let again = Mam::load(path.clone()).unwrap();
        let data = read(&again, 0x0800, 0);
        assert_eq!(data[4..17], *b"\x08\x00\x01\x00\x08LTFS    ");
        assert_eq!(data[17..25], [0x08, 0x0c, 0x00, 0x00, 0x03, 1, 2, 3]);
        // A read-only attribute: 05/26/00 pointing at it; a wrong length: at its length.
        let c = write(&mut m, &[0, 0, 0, 6, 0x04, 0x01, 1, 0, 1, b'X']);
        let s = c.decoded_sense().unwrap();
        assert_eq!(
            (s.key, s.asc, s.field_pointer()),
            (
                SenseKey::ILLEGAL_REQUEST,
                Asc::INVALID_FIELD_IN_PARAMETER_LIST,
                Some(4)
            )
        );
        let c = write(&mut m, &[0, 0, 0, 6, 0x08, 0x00, 1, 0, 1, b'X']);
        assert_eq!(c.decoded_sense().unwrap().field_pointer(), Some(7));
        // Too much: AUXILIARY MEMORY OUT OF SPACE, nothing stored.
        let mut big = vec![0, 0, 0, 0];
        Attribute {
            read_only: false,
            ..Attribute::binary(0x1400, &vec![7; 20_000])
        }
        .encode(&mut big);
        let n = (big.len() - 4) as u32;
        big[..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(
            write(&mut m, &big).decoded_sense().unwrap().asc,
            Asc::new(0x55, 0x06)
        );
        assert_eq!(m.get(0, 0x1400), None);
        // A zero length deletes.
        assert!(write(&mut m, &[0, 0, 0, 5, 0x08, 0x0c, 0, 0, 0]).is_good());
        assert_eq!(Mam::load(path).unwrap().get(0, 0x080c), None);
        // A capacity of its own.
        m.set_capacity(64 << 20);
        assert_eq!(m.capacity(), Some(64 << 20));
    }

    #[test]
    fn two_partitions_their_capacities_and_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Mam::load(dir.path().join("XC0001L9.mam")).unwrap();
        assert_eq!(m.capacity(), None);
        m.set_partitions(&[(10 << 20) + 5, 54 << 20]);
        assert_eq!(m.partition_capacities(), Some(vec![10 << 20, 54 << 20]));
        assert_eq!(m.capacity(), Some(64 << 20));
        m.count_load();
        m.save().unwrap();
        let m = Mam::load(dir.path().join("XC0001L9.mam")).unwrap();
        assert_eq!(m.capacity(), Some(64 << 20));
        let mut m = m;
        // Partition 1 exists now: LTFS's attributes go to either; READ ATTRIBUTE of
        // partition 1 has its own capacity and the medium's load count.
        let one = MediumFacts {
            capacity: 54 << 20,
            used: 0,
            ..facts()
        };
        let list = [0, 0, 0, 8, 0x08, 0x0c, 0x00, 0x00, 0x03, 1, 2, 3];
        let mut cdb = [0u8; 16];
        cdb[0] = 0x8d;
        cdb[7] = 1;
        cdb[10..14].copy_from_slice(&(list.len() as u32).to_be_bytes());
        assert!(m.write_attribute(&cdb, &list, 2).is_good());
        let c = m.write_attribute(&cdb, &list, 1);
        assert_eq!(c.decoded_sense().unwrap().field_pointer(), Some(7));
        let mut cdb = [0u8; 16];
        cdb[0] = 0x8c;
        cdb[7] = 1;
        cdb[10..14].copy_from_slice(&4096u32.to_be_bytes());
        let mut buf = vec![0u8; 4096];
        assert!(m
            .read_attribute(&cdb, &mut buf, &[facts(), one.clone()])
            .is_good());
        assert_eq!(buf[4..17], [0, 0, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 54]);
        assert_eq!(buf[17..30], [0, 1, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 54]);
        assert_eq!(buf[30..43], [0, 3, 0x80, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        let attrs = &buf[..4 + u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize];
        assert!(attrs
            .windows(8)
            .any(|w| w == [0x08, 0x0c, 0, 0, 3, 1, 2, 3]));
        // Not in partition 0; partition 2 does not exist; the partition list says 2.
        cdb[7] = 0;
        assert!(m
            .read_attribute(&cdb, &mut buf, &[facts(), one.clone()])
            .is_good());
        let attrs = &buf[..4 + u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize];
        assert!(!attrs.windows(2).any(|w| w == [0x08, 0x0c]));
        cdb[7] = 2;
        let c = m.read_attribute(&cdb, &mut buf, &[facts(), one.clone()]);
        assert_eq!(c.decoded_sense().unwrap().field_pointer(), Some(7));
        cdb[1] = 0x03;
        cdb[7] = 0;
        assert!(m.read_attribute(&cdb, &mut buf, &[facts(), one]).is_good());
        assert_eq!(buf[..4], [0, 2, 0, 2]);
    }
}
