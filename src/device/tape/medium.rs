//! The commands that read, write and move over the medium: READ(6), WRITE(6), WRITE
//! FILEMARKS(6), SPACE(6), LOCATE(10/16), READ POSITION and ERASE(6).
//!
//! Residues in INFORMATION are bytes for a variable-block (FIXED=0) command and blocks for
//! a fixed-block one; for SPACE they are the count not spaced over, as a positive number
//! in either direction (what the Linux st driver expects: it negates a negative residue
//! from "drives that get this wrong").

use std::io::ErrorKind;

use super::image::{record_image_len, Object};
use super::{check, decode_error, not_ready, Drive};
use crate::device::{Completion, FileSpan};

use crate::scsi::ssc::{
    self, Locate, LocateDestination, Position, Read6, ReadPosition, ReadPositionForm, Space6,
    SpaceCode, Write6, WriteFilemarks6,
};
use crate::scsi::{Asc, DecodeError, Sense, SenseKey};

/// Shortest record a write from a file copies in the kernel: each record is three system
/// calls (header, data, trailer), against one write for a batch of records from memory.
const MIN_FILE_RECORD: u64 = 64 * 1024;

fn filemark_sense(information: u64) -> Sense {
    Sense {
        filemark: true,
        information: Some(information),
        ..Sense::new(SenseKey::NO_SENSE, Asc::FILEMARK_DETECTED)
    }
}

fn bop_sense(information: u64) -> Sense {
    Sense {
        eom: true,
        information: Some(information),
        ..Sense::new(
            SenseKey::NO_SENSE,
            Asc::BEGINNING_OF_PARTITION_MEDIUM_DETECTED,
        )
    }
}

fn read_error(information: u64) -> Sense {
    Sense::new(SenseKey::MEDIUM_ERROR, Asc::UNRECOVERED_READ_ERROR).with_information(information)
}

fn write_error(information: u64) -> Sense {
    Sense::new(SenseKey::MEDIUM_ERROR, Asc::WRITE_ERROR).with_information(information)
}

/// A WRITE(6)'s records: `count` of `size` bytes.
#[derive(Clone, Copy)]
struct WriteShape {
    fixed: bool,
    count: u64,
    size: u64,
}

impl WriteShape {
    /// INFORMATION when `written` of the records were written: blocks not written (fixed),
    /// the requested length (variable).
    fn residue(self, written: u64) -> u64 {
        if self.fixed {
            self.count - written
        } else {
            self.size
        }
    }
}

fn write_protected() -> Completion {
    check(Sense::new(SenseKey::DATA_PROTECT, Asc::WRITE_PROTECTED), 0)
}

/// 24/00 pointing at the TRANSFER LENGTH (bytes 2-4 of a 6-byte CDB).
fn bad_transfer_length(residual: usize) -> Completion {
    check(Sense::invalid_field_in_cdb(2, Some(7)), residual)
}

/// FIXED=1 while the drive is in variable-block mode: 24/00 at byte 1 bit 0 (SSC-3 READ(6),
/// WRITE(6)).
fn fixed_in_variable_mode(residual: usize) -> Completion {
    check(Sense::invalid_field_in_cdb(1, Some(0)), residual)
}

impl Drive {
    /// SSC-3 READ(6).
    pub(super) fn read(&mut self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let total = buf.len();
        let cmd = match Read6::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, total),
        };
        if !self.loaded {
            return not_ready(total);
        }
        if cmd.fixed && self.mode.block_length == 0 {
            return fixed_in_variable_mode(total);
        }
        let block = if cmd.fixed {
            u64::from(self.mode.block_length)
        } else {
            1
        };
        if u64::from(cmd.transfer_length) * block > total as u64 {
            return bad_transfer_length(total);
        }
        if cmd.transfer_length == 0 {
            return Completion::good(total);
        }
        if cmd.fixed {
            self.read_fixed(cmd.transfer_length, buf)
        } else {
            self.read_variable(cmd.transfer_length, cmd.sili, buf)
        }
    }

    /// One record of at most `want` bytes. A shorter record is GOOD with a residual under
    /// SILI, else ILI; a longer one is truncated to `want` and always ILI, INFORMATION
    /// negative (requested − actual, 32-bit two's complement).
    fn read_variable(&mut self, want: u32, sili: bool, buf: &mut [u8]) -> Completion {
        let total = buf.len();
        let requested = u64::from(want);
        match self.image.object(self.position) {
            None => check(self.blank_check(Some(requested)), total),
            Some(Object::Filemark) => {
                self.position += 1;
                check(filemark_sense(requested), total)
            }
            Some(Object::BadRecord { .. }) => {
                self.position += 1;
                check(read_error(requested), total)
            }
            Some(Object::Record { len }) => {
                let n = len.min(want) as usize;
                let result = match buf.get_mut(..n) {
                    Some(dst) => self.image.read_data(self.position, dst),
                    None => Ok(()),
                };
                self.position += 1;
                if result.is_err() {
                    return check(read_error(requested), total);
                }
                let residual = total - n;
                if len == want || (sili && len < want) {
                    Completion::good(residual)
                } else {
                    let sense = Sense {
                        ili: true,
                        information: Some(ssc::signed_information(requested, u64::from(len))),
                        ..Sense::new(SenseKey::NO_SENSE, Asc::NO_ADDITIONAL_SENSE)
                    };
                    check(sense, residual)
                }
            }
        }
    }

    /// `blocks` records of the current block length; stops at a filemark (after it), end of
    /// data, a bad record or a record of another length (after it, ILI), INFORMATION the
    /// blocks not transferred.
    fn read_fixed(&mut self, blocks: u32, buf: &mut [u8]) -> Completion {
        let total = buf.len();
        let size = self.mode.block_length as usize;
        for i in 0..blocks as usize {
            let left = u64::from(blocks) - i as u64;
            let done = i * size;
            let sense = match self.image.object(self.position) {
                None => return check(self.blank_check(Some(left)), total - done),
                Some(Object::Filemark) => filemark_sense(left),
                Some(Object::BadRecord { .. }) => read_error(left),
                Some(Object::Record { len }) if len as usize != size => Sense {
                    ili: true,
                    information: Some(left),
                    ..Sense::new(SenseKey::NO_SENSE, Asc::NO_ADDITIONAL_SENSE)
                },
                Some(Object::Record { .. }) => {
                    let result = match buf.get_mut(done..done + size) {
                        Some(dst) => self.image.read_data(self.position, dst),
                        None => Ok(()),
                    };
                    self.position += 1;
                    if result.is_err() {
                        return check(read_error(left), total - done);
                    }
                    continue;
                }
            };
            self.position += 1;
            return check(sense, total - done);
        }
        Completion::good(total - blocks as usize * size)
    }

    /// What a WRITE(6) asks for, checked as [`Drive::write`] checks it: `Ok(None)` for a
    /// zero transfer length, `Err` with the completion for a refused command.
    fn write_shape(&self, cdb: &[u8], total: usize) -> Result<Option<WriteShape>, Completion> {
        let cmd = Write6::decode(cdb).map_err(|e| decode_error(e, total))?;
        if !self.loaded {
            return Err(not_ready(total));
        }
        if cmd.fixed && self.mode.block_length == 0 {
            return Err(fixed_in_variable_mode(total));
        }
        let (count, size) = if cmd.fixed {
            (
                u64::from(cmd.transfer_length),
                u64::from(self.mode.block_length),
            )
        } else {
            (1, u64::from(cmd.transfer_length))
        };
        if (!cmd.fixed && size > u64::from(self.max_block_length)) || count * size > total as u64 {
            return Err(bad_transfer_length(total));
        }
        if self.mode.write_protect {
            return Err(write_protected());
        }
        Ok((cmd.transfer_length != 0).then_some(WriteShape {
            fixed: cmd.fixed,
            count,
            size,
        }))
    }

    /// Appends `data` as records of `size` bytes at the current position (discarding what
    /// follows it). `Err` with the records written when the image write fails.
    fn append(&mut self, data: &[&[u8]], size: u64) -> Result<(), u64> {
        let base = self.position;
        let result = self
            .image
            .truncate(base)
            .and_then(|()| self.image.append_records(data, size as usize));
        self.dirty = true;
        let written = self.image.objects().saturating_sub(base);
        self.position = self.image.objects();
        result.map_err(|_| written)
    }

    /// WRITE(6) `cdb` once per `transfer` bytes of `data` (as
    /// [`ScsiDevice::write_transfers`]: each slice whole transfers). The commands that end
    /// before early warning are all GOOD, so their records are appended at once; the rest
    /// go one by one through [`Drive::write`], whose sense they get. Returns the commands
    /// that completed GOOD and the one that did not.
    ///
    /// [`ScsiDevice::write_transfers`]: crate::device::ScsiDevice::write_transfers
    pub(super) fn write_many(
        &mut self,
        cdb: &[u8],
        data: &[&[u8]],
        transfer: usize,
    ) -> (usize, Option<Completion>) {
        let transfer = transfer.max(1);
        let total: usize = data.iter().map(|d| d.len()).sum();
        let mut clean = 0usize;
        let shape = self.write_shape(cdb, transfer).ok().flatten();
        if let Some(shape) = shape.filter(|s| !self.index_full_at_end(s.size as u32)) {
            let fits = self
                .commands_before_early_warning(&shape)
                .min((total / transfer) as u64) as usize;
            let whole = (shape.count * shape.size) as usize;
            if fits > 1 && whole == transfer {
                let parts = prefix(data, fits * transfer);
                if let Err(written) = self.append(&parts, shape.size) {
                    return append_failed(&shape, transfer, written);
                }
                clean = fits;
            }
        }
        let mut done = clean;
        let mut skip = clean * transfer;
        for d in data {
            let rest = d.get(skip.min(d.len())..).unwrap_or_default();
            skip = skip.saturating_sub(d.len());
            for piece in rest.chunks(transfer) {
                let c = self.write(cdb, piece);
                if !(c.is_good() && c.residual == 0) {
                    return (done, Some(c));
                }
                done += 1;
            }
        }
        (done, None)
    }

    /// [`Drive::write_many`] with the data in `span`, which the image copies from the file
    /// in the kernel ([`super::Backing::append_from_file`]). Taken only when it comes to
    /// the same: every command ends before early warning (all GOOD, records appended at
    /// once), the records are long enough for a copy per record to pay, and the image
    /// takes files. `None`: not taken, and nothing on the tape changed.
    pub(super) fn write_many_from_file(
        &mut self,
        cdb: &[u8],
        span: FileSpan<'_>,
        transfer: usize,
    ) -> Option<(usize, Option<Completion>)> {
        let transfer = transfer.max(1);
        let commands = usize::try_from(span.len / transfer as u64).ok()?;
        if commands == 0 || !span.len.is_multiple_of(transfer as u64) || !self.image.takes_files() {
            return None;
        }
        let shape = self.write_shape(cdb, transfer).ok().flatten()?;
        if shape.size < MIN_FILE_RECORD
            || (shape.count * shape.size) as usize != transfer
            || self.index_full_at_end(shape.size as u32)
        {
            return None;
        }
        if self.commands_before_early_warning(&shape) < commands as u64 {
            return None;
        }
        let base = self.position;
        if base < self.image.objects() {
            // Writing mid-tape discards what follows, whichever way the records then go.
            self.dirty = true;
            if self.image.truncate(base).is_err() {
                return None;
            }
        }
        let result = self.image.append_from_file(span, shape.size as usize);
        let written = self.image.objects().saturating_sub(base);
        if written == 0
            && result
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::Unsupported)
        {
            return None;
        }
        self.dirty = true;
        self.position = self.image.objects();
        Some(match result {
            Ok(()) => (commands, None),
            Err(_) => append_failed(&shape, transfer, written),
        })
    }

    /// How many WRITE(6) commands of `shape`, from the current position, end before early
    /// warning (each GOOD, with no EOM to report).
    fn commands_before_early_warning(&self, shape: &WriteShape) -> u64 {
        let per = shape.count * record_image_len(shape.size);
        let start = self.image.offset_of(self.position);
        let room = self
            .early_warning_at
            .saturating_sub(start.saturating_add(1));
        room / per
    }

    /// SSC-3 WRITE(6). Writing anywhere but at end of data first discards what follows.
    /// Records that would end past the physical end are not written: VOLUME OVERFLOW,
    /// EOM=1, 00/02, INFORMATION the blocks (or bytes) not written. A write that leaves end
    /// of data at or past early warning completes with NO SENSE, EOM=1, 00/02, INFORMATION 0.
    pub(super) fn write(&mut self, cdb: &[u8], buf: &[u8]) -> Completion {
        let total = buf.len();
        let shape = match self.write_shape(cdb, total) {
            Ok(Some(shape)) => shape,
            Ok(None) => return Completion::good(total),
            Err(c) => return c,
        };
        let WriteShape { count, size, .. } = shape;
        let start = self.image.offset_of(self.position);
        let mut fit = count.min(self.capacity.saturating_sub(start) / record_image_len(size));
        if self.index_full_at_end(size as u32) {
            fit = 0;
        }
        if fit > 0 {
            let data = buf.get(..(fit * size) as usize).unwrap_or_default();
            if let Err(written) = self.append(&[data], size) {
                return check(
                    write_error(shape.residue(written)),
                    total - (written * size) as usize,
                );
            }
        }
        let residual = total - (fit * size) as usize;
        if fit < count {
            let sense = Sense {
                eom: true,
                information: Some(shape.residue(fit)),
                ..Sense::new(
                    SenseKey::VOLUME_OVERFLOW,
                    Asc::END_OF_PARTITION_MEDIUM_DETECTED,
                )
            };
            return check(sense, residual);
        }
        if self.beyond_early_warning(self.image.end_of_data()) {
            return check(early_warning(), residual);
        }
        Completion::good(residual)
    }

    /// Writing objects with SIMH word `word` at the position would need more index than a
    /// tape has: the medium is full there, as at its capacity (a write in the middle of
    /// the tape drops what follows, so only end of data counts).
    fn index_full_at_end(&self, word: u32) -> bool {
        self.position == self.image.objects() && self.image.index_full(word)
    }

    /// SSC-3 WRITE FILEMARKS(6). A count of 0 only flushes (unless IMMED). With IMMED=0 the
    /// written filemarks are synced to stable storage before status.
    pub(super) fn write_filemarks(&mut self, cdb: &[u8]) -> Completion {
        let cmd = match WriteFilemarks6::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, 0),
        };
        if !self.loaded {
            return not_ready(0);
        }
        let count = u64::from(cmd.count);
        if count > 0 && self.mode.write_protect {
            return write_protected();
        }
        let start = self.image.offset_of(self.position);
        let mut fit = count.min(self.capacity.saturating_sub(start) / 4);
        if self.index_full_at_end(0) {
            fit = 0;
        }
        if fit > 0 {
            let base = self.position;
            let result = self
                .image
                .truncate(base)
                .and_then(|()| self.image.append_filemarks(fit));
            self.dirty = true;
            let written = self.image.objects().saturating_sub(base);
            self.position = self.image.objects();
            if result.is_err() {
                return check(write_error(count - written), 0);
            }
        }
        if !cmd.immediate {
            if let Err(c) = self.flush() {
                return c;
            }
        }
        if fit < count {
            let sense = Sense {
                eom: true,
                information: Some(count - fit),
                ..Sense::new(
                    SenseKey::VOLUME_OVERFLOW,
                    Asc::END_OF_PARTITION_MEDIUM_DETECTED,
                )
            };
            return check(sense, 0);
        }
        if count > 0 && self.beyond_early_warning(self.image.end_of_data()) {
            return check(early_warning(), 0);
        }
        Completion::good(0)
    }

    /// SSC-3 SPACE(6) over blocks, filemarks, or to end of data.
    pub(super) fn space(&mut self, cdb: &[u8]) -> Completion {
        let cmd = match Space6::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, 0),
        };
        if !self.loaded {
            return not_ready(0);
        }
        let pos = self.position;
        let end = self.image.objects();
        let n = u64::from(cmd.count.unsigned_abs());
        // Filemarks before the position: also the index of the next filemark.
        let k = self.image.filemarks_before(pos);
        match cmd.code {
            SpaceCode::EndOfData => {
                self.position = end;
                Completion::good(0)
            }
            _ if n == 0 => Completion::good(0),
            SpaceCode::Blocks if cmd.count > 0 => {
                let target = pos + n;
                match self.image.filemark(k).filter(|&f| f < target) {
                    Some(f) => {
                        // Stop on the EOP side of the filemark.
                        self.position = f + 1;
                        check(filemark_sense(n - (f - pos)), 0)
                    }
                    None if target > end => {
                        self.position = end;
                        check(self.blank_check(Some(n - (end - pos))), 0)
                    }
                    None => {
                        self.position = target;
                        Completion::good(0)
                    }
                }
            }
            SpaceCode::Blocks => {
                let target = pos.checked_sub(n);
                let previous = k.checked_sub(1).and_then(|i| self.image.filemark(i));
                match previous.filter(|&f| target.is_none_or(|t| f >= t)) {
                    Some(f) => {
                        // Stop on the BOP side of the filemark.
                        self.position = f;
                        check(filemark_sense(n - (pos - 1 - f)), 0)
                    }
                    None => match target {
                        Some(t) => {
                            self.position = t;
                            Completion::good(0)
                        }
                        None => {
                            self.position = 0;
                            check(bop_sense(n - pos), 0)
                        }
                    },
                }
            }
            SpaceCode::Filemarks if cmd.count > 0 => match self.image.filemark(k + n - 1) {
                Some(f) => {
                    self.position = f + 1;
                    Completion::good(0)
                }
                None => {
                    let spaced = self.image.filemark_count() - k;
                    self.position = end;
                    check(self.blank_check(Some(n - spaced)), 0)
                }
            },
            SpaceCode::Filemarks => match k.checked_sub(n).and_then(|i| self.image.filemark(i)) {
                Some(f) => {
                    self.position = f;
                    Completion::good(0)
                }
                None => {
                    self.position = 0;
                    check(bop_sense(n - k), 0)
                }
            },
        }
    }

    /// SSC-3 LOCATE(10) / LOCATE(16). Beyond end of data is BLANK CHECK, END-OF-DATA
    /// DETECTED, positioned at end of data. The only partition is 0.
    pub(super) fn locate(
        &mut self,
        cmd: Result<Locate, DecodeError>,
        partition_byte: u16,
    ) -> Completion {
        let cmd = match cmd {
            Ok(c) => c,
            Err(e) => return decode_error(e, 0),
        };
        if !self.loaded {
            return not_ready(0);
        }
        if cmd.change_partition && cmd.partition != 0 {
            return check(Sense::invalid_field_in_cdb(partition_byte, None), 0);
        }
        let end = self.image.objects();
        let target = match cmd.destination {
            LocateDestination::Object(id) => Some(id).filter(|&id| id <= end),
            LocateDestination::File(0) => Some(0),
            LocateDestination::File(file) => self.image.filemark(file - 1).map(|f| f + 1),
            LocateDestination::EndOfData => Some(end),
        };
        match target {
            Some(t) => {
                self.position = t;
                Completion::good(0)
            }
            None => {
                self.position = end;
                check(self.blank_check(None), 0)
            }
        }
    }

    /// SSC-3 READ POSITION: short (00h, 01h) and long (06h) forms.
    pub(super) fn read_position(&self, cdb: &[u8], buf: &mut [u8]) -> Completion {
        let cmd = match ReadPosition::decode(cdb) {
            Ok(c) => c,
            Err(e) => return decode_error(e, buf.len()),
        };
        if !self.loaded {
            return not_ready(buf.len());
        }
        let position = Position {
            bop: self.position == 0,
            eop: self.beyond_early_warning(self.image.offset_of(self.position)),
            partition: 0,
            object: self.position,
            file: self.image.filemarks_before(self.position),
        };
        let allocation = match usize::from(cmd.allocation_length) {
            0 => cmd.data_length(),
            n => n,
        };
        match cmd.form {
            ReadPositionForm::Short | ReadPositionForm::ShortVendor => {
                super::reply(buf, &position.encode_short(), allocation)
            }
            ReadPositionForm::Long => super::reply(buf, &position.encode_long(), allocation),
        }
    }

    /// SSC-3 ERASE(6): short and long erase both end the data at the current position.
    pub(super) fn erase(&mut self, cdb: &[u8]) -> Completion {
        if let Err(e) = ssc::Erase6::decode(cdb) {
            return decode_error(e, 0);
        }
        if !self.loaded {
            return not_ready(0);
        }
        if self.mode.write_protect {
            return write_protected();
        }
        self.dirty = true;
        match self.image.truncate(self.position) {
            Ok(()) => Completion::good(0),
            Err(_) => check(write_error(0), 0),
        }
    }
}

/// Early warning on a write that completed: NO SENSE, EOM=1, END-OF-PARTITION/MEDIUM
/// DETECTED, VALID=1 with INFORMATION 0 (all data written).
fn early_warning() -> Sense {
    Sense {
        eom: true,
        information: Some(0),
        ..Sense::new(SenseKey::NO_SENSE, Asc::END_OF_PARTITION_MEDIUM_DETECTED)
    }
}

/// The first `len` bytes of `data`, as slices.
/// A run of WRITE(6) commands of `shape` whose append failed after `written` records: the
/// commands that completed, and the WRITE ERROR of the one that did not, its residue the
/// records (or bytes) of it not written.
fn append_failed(shape: &WriteShape, transfer: usize, written: u64) -> (usize, Option<Completion>) {
    let (k, partial) = (written / shape.count, written % shape.count);
    let residual = transfer - (partial * shape.size) as usize;
    (
        k as usize,
        Some(check(write_error(shape.residue(partial)), residual)),
    )
}

fn prefix<'a>(data: &[&'a [u8]], mut len: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for d in data {
        if len == 0 {
            break;
        }
        let take = d.len().min(len);
        out.push(d.get(..take).unwrap_or_default());
        len -= take;
    }
    out
}
