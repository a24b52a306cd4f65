//! A cartridge in a library drive: its partitions, each an [`EmulatedTape`] over its own
//! SIMH image (`BARCODE.tap` is partition 0, `BARCODE.p1.tap` partition 1), the partition
//! the drive is in, and the cartridge's medium auxiliary memory.
//!
//! A cartridge has one partition until FORMAT MEDIUM lays out two, as LTFS does it: MODE
//! SENSE of the Medium Partition page (11h), MODE SELECT of it with ADDITIONAL PARTITIONS
//! DEFINED 1 and the sizes, FORMAT MEDIUM 01h at the beginning of partition 0. The layout
//! is kept as each partition's MAXIMUM CAPACITY IN PARTITION in the cartridge's memory
//! (and the images), so it survives unloads and restarts.
//!
//! Commands that move between partitions (LOCATE with CP, REWIND, LOAD) or that describe
//! them (READ POSITION's partition, MODE SENSE page 11h, the capacity log pages, READ
//! ATTRIBUTE of partition 1) are answered here; everything else goes to the partition the
//! drive is in.

mod partitions;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lto::{self, Access};
use super::mam::{Mam, MediumFacts};
use crate::buf::Rings;
use crate::device::tape::{EmulatedTape, TapeConfig};
use crate::device::{Completion, DataDirection, DeviceError, FileSpan, ScsiDevice};
use crate::scsi::partition_page::{self, PartitionPage};
use crate::scsi::ssc;
use crate::scsi::{Asc, Sense, SenseKey};

/// FORMAT MEDIUM's operation code.
pub const FORMAT_MEDIUM: u8 = 0x04;
/// SPACE(16)'s operation code (SSC; SBC's SYNCHRONIZE CACHE(16) shares it).
pub const SPACE_16: u8 = 0x91;

const REWIND: [u8; 6] = [0x01, 0, 0, 0, 0, 0];
const ERASE_LONG: [u8; 6] = [0x19, 0x01, 0, 0, 0, 0];

/// The image of partition `n` of the cartridge whose partition 0 is `image`.
pub fn partition_image(image: &Path, n: usize) -> PathBuf {
    if n == 0 {
        return image.to_path_buf();
    }
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    image.with_file_name(format!("{stem}.p{n}.tap"))
}

/// A cartridge in a drive.
#[derive(Debug)]
pub struct Loaded {
    pub barcode: String,
    /// The name its partitions' emulated tapes log with.
    name: String,
    /// Partition 0's image.
    image: PathBuf,
    /// How the drive opened it; `capacity` is the whole cartridge's.
    config: TapeConfig,
    /// Partition 0: a cartridge always has it.
    first: EmulatedTape,
    /// Partitions 1 and on.
    more: Vec<EmulatedTape>,
    /// The partition the drive is in.
    current: usize,
    /// None: the drive cannot use it at all (every medium command 02/30/00).
    pub(super) access: Access,
    /// Its medium auxiliary memory.
    pub(super) mam: Mam,
    /// Written since it was loaded (VOLUME CHANGE REFERENCE already counted).
    changed: bool,
    /// MODE SENSE's MEDIUM TYPE for it (an LTO data cartridge of its generation).
    medium_type: u8,
    /// The Medium Partition page as MODE SELECT last set it, for FORMAT MEDIUM.
    pending: Option<PartitionPage>,
    /// Kept elsewhere than partition images (an object store): one partition only.
    single: bool,
    /// Where its partitions' O_DIRECT appends borrow a ring (partitions FORMAT MEDIUM
    /// makes too).
    rings: Arc<Rings>,
}

fn check(sense: Sense, residual: usize) -> Completion {
    Completion::check_condition(&sense, residual)
}

fn reply(buf: &mut [u8], data: &[u8], allocation: usize) -> Completion {
    let n = data.len().min(allocation).min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(..n)) {
        dst.copy_from_slice(src);
    }
    Completion::good(buf.len() - n)
}

/// Runs `cdb` without data on `tape`: GOOD, or the sense it failed with.
fn run(tape: &EmulatedTape, cdb: &[u8]) -> Result<(), Sense> {
    match tape.execute(cdb, DataDirection::None) {
        Ok(c) if c.is_good() => Ok(()),
        Ok(c) => Err(c
            .decoded_sense()
            .unwrap_or_else(|| Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE))),
        Err(_) => Err(Sense::new(
            SenseKey::HARDWARE_ERROR,
            Asc::INTERNAL_TARGET_FAILURE,
        )),
    }
}

/// MEDIUM TYPE of an LTO data cartridge of `generation` (IBM: 58h for LTO-5 … 98h for
/// LTO-9), as LTFS checks it.
pub fn medium_type(generation: u8) -> u8 {
    (generation << 4) | 0x08
}

impl Loaded {
    /// Opens cartridge `barcode` (partition 0's image `image`) as `config` says, with its
    /// partitions as its memory records them (a partition whose image is missing makes it
    /// a one-partition cartridge again). Their appends borrow their ring from `rings`.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        name: impl Into<String>,
        barcode: impl Into<String>,
        image: PathBuf,
        config: TapeConfig,
        access: Access,
        mam: Mam,
        medium_type: u8,
        rings: Arc<Rings>,
    ) -> io::Result<Self> {
        let name = name.into();
        let barcode = barcode.into();
        let sizes = match mam.partition_capacities() {
            Some(sizes)
                if sizes.len() > 1
                    && sizes.len() <= partition_page::MAX_PARTITIONS
                    && (1..sizes.len()).all(|n| partition_image(&image, n).is_file()) =>
            {
                sizes
            }
            _ => vec![config.capacity],
        };
        let first = open_part(
            &name,
            &image,
            0,
            &config,
            sizes.first().copied().unwrap_or(0),
            &rings,
        )?;
        let mut more = Vec::with_capacity(sizes.len().saturating_sub(1));
        for (n, &size) in sizes.iter().enumerate().skip(1) {
            more.push(open_part(&name, &image, n, &config, size, &rings)?);
        }
        Ok(Self {
            barcode,
            name,
            image,
            config,
            first,
            more,
            current: 0,
            access,
            mam,
            changed: false,
            medium_type,
            pending: None,
            single: false,
            rings,
        })
    }

    /// Cartridge `barcode` over `backing` (an object store cartridge): one partition,
    /// FORMAT MEDIUM into two refused. `image` names its memory file's place only.
    #[allow(clippy::too_many_arguments)]
    pub fn open_single(
        name: impl Into<String>,
        barcode: impl Into<String>,
        image: PathBuf,
        config: TapeConfig,
        access: Access,
        mam: Mam,
        medium_type: u8,
        backing: Box<dyn crate::device::tape::Backing>,
    ) -> io::Result<Self> {
        let name = name.into();
        let first = EmulatedTape::with_backing(
            name.clone(),
            backing,
            TapeConfig {
                early_warning: lto::early_warning_zone(config.capacity),
                ..config.clone()
            },
        )?;
        Ok(Self {
            barcode: barcode.into(),
            name,
            image,
            config,
            first,
            more: Vec::new(),
            current: 0,
            access,
            mam,
            changed: false,
            medium_type,
            pending: None,
            single: true,
            // Its one partition is the store's; no image of it is ever appended to.
            rings: Arc::default(),
        })
    }

    fn parts(&self) -> impl Iterator<Item = &EmulatedTape> {
        std::iter::once(&self.first).chain(&self.more)
    }

    fn part_mut(&mut self, n: usize) -> Option<&mut EmulatedTape> {
        match n.checked_sub(1) {
            None => Some(&mut self.first),
            Some(i) => self.more.get_mut(i),
        }
    }

    /// The partition the drive is in.
    pub fn tape(&self) -> &EmulatedTape {
        match self.current.checked_sub(1) {
            Some(i) => self.more.get(i).unwrap_or(&self.first),
            None => &self.first,
        }
    }

    pub fn partitions(&self) -> usize {
        1 + self.more.len()
    }

    /// What the drive knows of each partition, partition 0 first.
    pub fn facts(&self) -> Vec<MediumFacts> {
        self.parts()
            .map(|t| MediumFacts {
                barcode: self.barcode.clone(),
                capacity: t.config().capacity,
                used: t.end_of_data(),
                density_code: t.config().density_code,
            })
            .collect()
    }

    /// Runs a command without data on every partition, the current one's result first
    /// (LOAD, PREVENT ALLOW). The first failure stops it.
    pub fn on_all(&self, cdb: &[u8]) -> Result<(), Sense> {
        run(self.tape(), cdb)?;
        for (n, t) in self.parts().enumerate() {
            if n != self.current {
                run(t, cdb)?;
            }
        }
        Ok(())
    }

    /// Loads every partition; the drive is then at the beginning of partition 0.
    pub fn load(&mut self) -> Result<(), Sense> {
        let r = self.on_all(&[0x1b, 0, 0, 0, 0x01, 0]);
        self.current = 0;
        r
    }

    /// Unloads: every partition's written data synced; nothing changes if the current
    /// one refuses (removal prevented).
    pub fn unload(&mut self) -> Result<(), Sense> {
        let r = self.on_all(&[0x1b, 0, 0, 0, 0, 0]);
        if r.is_ok() {
            self.current = 0;
        }
        r
    }

    /// Whether the drive is ready (TEST UNIT READY GOOD).
    pub fn ready(&self) -> bool {
        run(self.tape(), &[0, 0, 0, 0, 0, 0]).is_ok()
    }

    /// The end of a list on every partition ([`ScsiDevice::settle`]); the first refusal.
    pub fn settle(&self) -> Result<(), Completion> {
        self.parts().try_for_each(|t| t.settle())
    }

    /// After a command that may have written the medium: the first one that did counts a
    /// volume change in the cartridge's memory.
    pub fn note_write(&mut self, op: u8, c: &Result<Completion, DeviceError>) {
        let writes = matches!(op, 0x0a | 0x10 | 0x19 | FORMAT_MEDIUM);
        let took = c.as_ref().is_ok_and(|c| {
            c.is_good()
                || c.decoded_sense()
                    .is_some_and(|s| s.key == SenseKey::NO_SENSE)
        });
        if writes && took && !self.changed {
            self.changed = true;
            self.mam.count_volume_change();
            if let Err(e) = self.mam.save() {
                tracing::warn!(barcode = %self.barcode, "volume change not saved: {e}");
            }
        }
    }

    /// WRITE(6) and friends in pieces, on the current partition.
    pub fn write_transfers(
        &mut self,
        cdb: &[u8],
        data: &[&[u8]],
        transfer: usize,
    ) -> (usize, Option<Result<Completion, DeviceError>>) {
        let (done, stopped) = self.tape().write_transfers(cdb, data, transfer);
        if done > 0 {
            self.note_write(cdb.first().copied().unwrap_or(0), &Ok(Completion::good(0)));
        }
        (done, stopped)
    }

    /// [`Loaded::write_transfers`] from a file ([`ScsiDevice::write_transfers_from_file`]).
    pub fn write_transfers_from_file(
        &mut self,
        cdb: &[u8],
        span: FileSpan<'_>,
        transfer: usize,
    ) -> Option<(usize, Option<Result<Completion, DeviceError>>)> {
        let (done, stopped) = self.tape().write_transfers_from_file(cdb, span, transfer)?;
        if done > 0 {
            self.note_write(cdb.first().copied().unwrap_or(0), &Ok(Completion::good(0)));
        }
        Some((done, stopped))
    }

    /// A medium command for the cartridge: the partition-aware ones here, the rest to the
    /// partition the drive is in.
    pub fn execute(
        &mut self,
        cdb: &[u8],
        data: DataDirection<'_>,
    ) -> Result<Completion, DeviceError> {
        let op = cdb.first().copied().unwrap_or(0);
        let total = data.len();
        let c = match op {
            0x01 => Ok(self.rewind(cdb)),
            0x1b => Ok(self.load_unload(cdb)),
            0x1e => Ok(match self.on_all(cdb) {
                Ok(()) => Completion::good(total),
                Err(s) => check(s, total),
            }),
            0x2b | 0x92 => Ok(self.locate(cdb)),
            SPACE_16 => self.space16(cdb),
            0x34 => self.read_position(cdb, data),
            0x1a | 0x5a => Ok(match data {
                DataDirection::FromDevice(b) => self.mode_sense(cdb, b),
                _ => self.mode_sense(cdb, &mut []),
            }),
            0x15 | 0x55 => Ok(match data {
                DataDirection::ToDevice(b) => self.mode_select(cdb, b),
                _ => self.mode_select(cdb, &[]),
            }),
            FORMAT_MEDIUM => Ok(self.format_medium(cdb, total)),
            _ => self.tape().execute(cdb, data),
        };
        self.note_write(op, &c);
        c
    }

    /// REWIND: to the beginning of partition 0 (BOM), as IBM's drives do.
    fn rewind(&mut self, cdb: &[u8]) -> Completion {
        let c = match self.tape().execute(cdb, DataDirection::None) {
            Ok(c) => c,
            Err(_) => {
                return check(
                    Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE),
                    0,
                )
            }
        };
        if c.is_good() && self.current != 0 {
            self.current = 0;
            if let Err(s) = run(self.tape(), &REWIND) {
                return check(s, 0);
            }
        }
        c
    }

    /// LOAD UNLOAD on every partition; either way the drive ends in partition 0.
    fn load_unload(&mut self, cdb: &[u8]) -> Completion {
        if let Err(e) = ssc::LoadUnload::decode(cdb) {
            return check(Sense::from(e), 0);
        }
        match self.on_all(cdb) {
            Ok(()) => {
                self.current = 0;
                Completion::good(0)
            }
            Err(s) => check(s, 0),
        }
    }

    /// LOCATE(10) / LOCATE(16): CP=1 moves to the partition first (24/00 at the PARTITION
    /// byte for one the cartridge does not have), then the partition locates.
    fn locate(&mut self, cdb: &[u8]) -> Completion {
        let (decoded, partition_byte) = if cdb.first() == Some(&0x2b) {
            (ssc::Locate::decode10(cdb), 8)
        } else {
            (ssc::Locate::decode16(cdb), 3)
        };
        let cmd = match decoded {
            Ok(c) => c,
            Err(e) => return check(Sense::from(e), 0),
        };
        let mut forward = cdb.to_vec();
        if cmd.change_partition {
            let p = usize::from(cmd.partition);
            if p >= self.partitions() {
                return check(Sense::invalid_field_in_cdb(partition_byte, None), 0);
            }
            if let Some(b) = forward.get_mut(1) {
                *b &= !0x02;
            }
            if let Some(b) = forward.get_mut(usize::from(partition_byte)) {
                *b = 0;
            }
            self.current = p;
        }
        match self.tape().execute(&forward, DataDirection::None) {
            Ok(c) => c,
            Err(_) => check(
                Sense::new(SenseKey::HARDWARE_ERROR, Asc::INTERNAL_TARGET_FAILURE),
                0,
            ),
        }
    }

    /// SPACE(16) as SPACE(6): a count beyond 24 bits or a PARAMETER LENGTH is 24/00.
    fn space16(&mut self, cdb: &[u8]) -> Result<Completion, DeviceError> {
        let Some(&[_, b1, b2, b3, c0, c1, c2, c3, c4, c5, c6, c7, l0, l1, _, control]) =
            cdb.get(..16)
        else {
            return Ok(check(Sense::invalid_field_in_cdb(0, None), 0));
        };
        if b1 & 0xf0 != 0 || b2 != 0 || b3 != 0 {
            let byte = if b1 & 0xf0 != 0 {
                1
            } else if b2 != 0 {
                2
            } else {
                3
            };
            return Ok(check(Sense::invalid_field_in_cdb(byte, None), 0));
        }
        if (l0, l1) != (0, 0) {
            return Ok(check(Sense::invalid_field_in_cdb(12, None), 0));
        }
        let count = i64::from_be_bytes([c0, c1, c2, c3, c4, c5, c6, c7]);
        if !(-(1 << 23)..(1 << 23)).contains(&count) {
            return Ok(check(Sense::invalid_field_in_cdb(4, None), 0));
        }
        let [_, _, _, _, _, hi, mid, lo] = count.to_be_bytes();
        let space6 = [0x11, b1 & 0x0f, hi, mid, lo, control];
        self.tape().execute(&space6, DataDirection::None)
    }

    /// READ POSITION of the partition the drive is in, its number in the data.
    fn read_position(
        &mut self,
        cdb: &[u8],
        data: DataDirection<'_>,
    ) -> Result<Completion, DeviceError> {
        let form = cdb.get(1).map(|b| b & 0x1f);
        let partition = u8::try_from(self.current).unwrap_or(u8::MAX);
        let DataDirection::FromDevice(buf) = data else {
            return self.tape().execute(cdb, data);
        };
        if form == Some(0x08) {
            return Ok(extended_position(self.tape(), cdb, buf, partition));
        }
        let c = self
            .tape()
            .execute(cdb, DataDirection::FromDevice(&mut *buf))?;
        if c.is_good() {
            let sent = buf.len() - c.residual.min(buf.len());
            match form {
                Some(0x00 | 0x01) if sent > 1 => {
                    if let Some(b) = buf.get_mut(1) {
                        *b = partition;
                    }
                }
                Some(0x06) if sent >= 8 => {
                    if let Some(b) = buf.get_mut(4..8) {
                        b.copy_from_slice(&u32::from(partition).to_be_bytes());
                    }
                }
                _ => {}
            }
        }
        Ok(c)
    }
}

/// Opens partition `n` (of `size` bytes) of the cartridge whose partition 0 is `image`.
fn open_part(
    name: &str,
    image: &Path,
    n: usize,
    config: &TapeConfig,
    size: u64,
    rings: &Arc<Rings>,
) -> io::Result<EmulatedTape> {
    let config = TapeConfig {
        capacity: size,
        early_warning: lto::early_warning_zone(size),
        ..config.clone()
    };
    let label = if n == 0 {
        name.to_string()
    } else {
        format!("{name}.p{n}")
    };
    let image_n = partition_image(image, n);
    let (tape, report) = EmulatedTape::open_in(label, image_n, config, Arc::clone(rings))?;
    if !report.is_clean() {
        tracing::warn!(image = %image.display(), partition = n, "cartridge image repaired: {report}");
    }
    Ok(tape)
}

/// READ POSITION, extended form (service action 08h, SSC-4), from the tape's long form.
fn extended_position(tape: &EmulatedTape, cdb: &[u8], buf: &mut [u8], partition: u8) -> Completion {
    if cdb.get(1).map(|b| b & 0xe0) != Some(0) || cdb.len() < 10 {
        return check(Sense::invalid_field_in_cdb(1, Some(7)), buf.len());
    }
    let mut long = [0u8; 32];
    match tape.execute(
        &[0x34, 0x06, 0, 0, 0, 0, 0, 0, 32, 0],
        DataDirection::FromDevice(&mut long),
    ) {
        Ok(c) if c.is_good() => {}
        Ok(c) => {
            return Completion {
                residual: buf.len(),
                ..c
            }
        }
        Err(_) => {
            return check(
                Sense::new(SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT),
                buf.len(),
            )
        }
    }
    let Some(mut position) = ssc::Position::decode_long(&long) else {
        return check(
            Sense::new(SenseKey::NOT_READY, Asc::MEDIUM_NOT_PRESENT),
            buf.len(),
        );
    };
    position.partition = u32::from(partition);
    let allocation = match cdb.get(7..9) {
        Some(&[a, b]) if (a, b) != (0, 0) => usize::from(u16::from_be_bytes([a, b])),
        _ => 32,
    };
    reply(buf, &position.encode_extended(), allocation)
}
