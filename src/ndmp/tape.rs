//! A tape drive as the NDMP TAPE service and the MOVER see it, built on SSC-3 CDBs sent
//! through the dispatcher (so an emulated tape, a library drive and an SG tape are driven
//! the same way), with the NDMP v4 semantics laid over SCSI's:
//! - a READ that meets a filemark answers EOF_ERR and leaves the tape *before* the filemark
//!   (SCSI leaves it after; NDMP v4 expects FSF to skip it), end of data is EOM_ERR;
//! - FSR/BSR stop at a filemark on the side they started (SCSI crosses it);
//! - MTIO answers the residual count (SPACE's INFORMATION);
//! - block numbers are within the current file (READ POSITION long form gives the logical
//!   object and file numbers; the object number where each file starts is learned as the
//!   tape passes it, and the block number is unsupported where it is not known).

use std::collections::BTreeMap;

use super::lu::{Done, Lu};
use super::message::{Error, MtioOp};
use super::reply::{self, TapeState};
use crate::scsi::ssc::{
    Position, Read6, ReadPosition, ReadPositionForm, Space6, SpaceCode, Write6,
};
use crate::scsi::{Asc, SenseKey};

/// The largest SPACE(6) count (a signed 24-bit field).
const MAX_SPACE: u32 = 0x7f_ffff;

/// An open tape.
pub struct TapeDrive {
    pub lu: Lu,
    pub writable: bool,
    /// Logical object number of the first object of each file known so far.
    file_starts: BTreeMap<u64, u64>,
}

/// What a write did.
pub struct Written {
    pub error: Error,
    /// Bytes that reached the tape.
    pub count: usize,
}

impl TapeDrive {
    pub fn new(lu: Lu, writable: bool) -> Self {
        Self {
            lu,
            writable,
            file_starts: BTreeMap::from([(0, 0)]),
        }
    }

    fn position(&self) -> Option<Position> {
        let cdb = ReadPosition {
            form: ReadPositionForm::Long,
            allocation_length: 0,
        }
        .encode();
        let d = self.lu.exec(&cdb, &[], 32);
        if d.good() {
            Position::decode_long(&d.result.data_in)
        } else {
            None
        }
    }

    /// Notes that the tape is at the first object of its file.
    fn at_file_start(&mut self) {
        if let Some(p) = self.position() {
            self.file_starts.insert(p.file, p.object);
        }
    }

    /// Forgets where files after the current one start (a write ends the data here).
    fn truncated(&mut self) {
        if let Some(p) = self.position() {
            self.file_starts.retain(|&f, _| f <= p.file);
        }
    }

    fn space(&self, code: SpaceCode, count: i32) -> Done {
        self.lu.exec(&Space6 { code, count }.encode(), &[], 0)
    }

    pub fn state(&self) -> TapeState {
        let mut s = TapeState {
            unsupported: reply::TAPE_STATE_SOFT_ERRORS_UNS
                | reply::TAPE_STATE_TOTAL_SPACE_UNS
                | reply::TAPE_STATE_SPACE_REMAIN_UNS,
            flags: reply::TAPE_STATE_NOREWIND,
            ..TapeState::default()
        };
        // MODE SENSE(6), block descriptor: WP in the header, BLOCK LENGTH in bytes 9-11.
        let d = self.lu.exec(&[0x1a, 0, 0, 0, 12, 0], &[], 12);
        let m = &d.result.data_in;
        if d.good() && m.len() >= 12 {
            if m.get(2).is_some_and(|b| b & 0x80 != 0) {
                s.flags |= reply::TAPE_STATE_WR_PROT;
            }
            s.block_size = u32::from_be_bytes([0, m[9], m[10], m[11]]);
        } else {
            s.unsupported |= 0x04;
        }
        match self.position() {
            Some(p) => {
                s.file_num = u32::try_from(p.file).unwrap_or(u32::MAX);
                match self.file_starts.get(&p.file) {
                    Some(start) => s.blockno = u32::try_from(p.object - start).unwrap_or(u32::MAX),
                    None => s.unsupported |= 0x08,
                }
            }
            None => s.unsupported |= 0x01 | 0x08,
        }
        s
    }

    pub fn write(&mut self, data: &[u8]) -> Written {
        if !self.writable {
            return Written {
                error: Error::PERMISSION,
                count: 0,
            };
        }
        if data.is_empty() {
            return Written {
                error: Error::ILLEGAL_ARGS,
                count: 0,
            };
        }
        let cdb = Write6 {
            fixed: false,
            transfer_length: data.len() as u32,
        }
        .encode();
        let d = self.lu.exec(&cdb, data, 0);
        self.truncated();
        if d.good() {
            return Written {
                error: Error::NO_ERR,
                count: data.len(),
            };
        }
        let (error, count) = match &d.sense {
            // Early warning: the record is on the tape.
            Some(s) if s.key == SenseKey::NO_SENSE && s.eom => (Error::EOM, data.len()),
            Some(s) if s.key == SenseKey::VOLUME_OVERFLOW => (Error::EOM, 0),
            Some(s) if s.key == SenseKey::DATA_PROTECT => (Error::WRITE_PROTECT, 0),
            Some(s) if s.key == SenseKey::NOT_READY => (Error::NO_TAPE_LOADED, 0),
            _ => (Error::IO, 0),
        };
        Written { error, count }
    }

    /// Reads one record of at most `count` bytes.
    pub fn read(&mut self, count: u32) -> (Error, Vec<u8>) {
        if count == 0 {
            return (Error::NO_ERR, Vec::new());
        }
        if count as usize > super::message::MAX_DATA {
            return (Error::ILLEGAL_ARGS, Vec::new());
        }
        let cdb = Read6 {
            fixed: false,
            sili: true,
            transfer_length: count,
        }
        .encode();
        let mut d = self.lu.exec(&cdb, &[], count as usize);
        let data = std::mem::take(&mut d.result.data_in);
        if d.good() {
            return (Error::NO_ERR, data);
        }
        match &d.sense {
            Some(s) if s.filemark => {
                // Back over the filemark: NDMP v4 leaves the tape before it.
                self.space(SpaceCode::Filemarks, -1);
                (Error::EOF, Vec::new())
            }
            Some(s) if s.key == SenseKey::BLANK_CHECK => (Error::EOM, Vec::new()),
            // A record longer than asked for: its first `count` bytes, the rest skipped.
            Some(s) if s.ili && s.key == SenseKey::NO_SENSE => (Error::NO_ERR, data),
            Some(s) if s.key == SenseKey::NOT_READY => (Error::NO_TAPE_LOADED, Vec::new()),
            _ => (Error::IO, Vec::new()),
        }
    }

    /// TAPE_MTIO: (error, residual count).
    pub fn mtio(&mut self, op: MtioOp, count: u32) -> (Error, u32) {
        let (error, resid) = match op {
            MtioOp::Rewind => {
                let d = self.lu.exec(&[0x01, 0, 0, 0, 0, 0], &[], 0);
                (ok_or_io(&d), 0)
            }
            MtioOp::Eof => self.write_filemarks(count),
            MtioOp::Off => {
                let d = self.lu.exec(&[0x1b, 0, 0, 0, 0, 0], &[], 0);
                (ok_or_io(&d), 0)
            }
            MtioOp::Tur => {
                let d = self.lu.exec(&[0x00, 0, 0, 0, 0, 0], &[], 0);
                let e = match &d.sense {
                    _ if d.good() => Error::NO_ERR,
                    Some(s) if s.key == SenseKey::NOT_READY => Error::NO_TAPE_LOADED,
                    _ => Error::IO,
                };
                (e, 0)
            }
            MtioOp::Fsf | MtioOp::Bsf | MtioOp::Fsr | MtioOp::Bsr => self.space_op(op, count),
        };
        if matches!(op, MtioOp::Rewind) {
            self.file_starts.insert(0, 0);
        }
        (error, resid)
    }

    fn write_filemarks(&mut self, count: u32) -> (Error, u32) {
        if !self.writable {
            return (Error::PERMISSION, count);
        }
        let [_, a, b, c] = count.min(0xff_ffff).to_be_bytes();
        let d = self.lu.exec(&[0x10, 0, a, b, c, 0], &[], 0);
        self.truncated();
        let e = match &d.sense {
            _ if d.good() => Error::NO_ERR,
            Some(s) if s.key == SenseKey::NO_SENSE && s.eom => Error::NO_ERR,
            Some(s) if s.key == SenseKey::VOLUME_OVERFLOW => Error::EOM,
            Some(s) if s.key == SenseKey::DATA_PROTECT => Error::WRITE_PROTECT,
            _ => Error::IO,
        };
        if count > 0 && e == Error::NO_ERR {
            self.at_file_start();
        }
        (e, 0)
    }

    /// FSF, BSF, FSR, BSR with SPACE(6).
    fn space_op(&mut self, op: MtioOp, count: u32) -> (Error, u32) {
        if count == 0 {
            return (Error::NO_ERR, 0);
        }
        let n = count.min(MAX_SPACE);
        let beyond = count - n;
        let (code, signed) = match op {
            MtioOp::Fsf => (SpaceCode::Filemarks, n as i32),
            MtioOp::Bsf => (SpaceCode::Filemarks, -(n as i32)),
            MtioOp::Fsr => (SpaceCode::Blocks, n as i32),
            _ => (SpaceCode::Blocks, -(n as i32)),
        };
        let d = self.space(code, signed);
        if d.good() {
            if op == MtioOp::Fsf {
                self.at_file_start();
            }
            return (Error::NO_ERR, beyond);
        }
        let Some(s) = &d.sense else {
            return (Error::IO, count);
        };
        let short = s
            .information
            .map_or(n, |i| (i as u32 as i32).unsigned_abs());
        let stopped = s.filemark
            || s.key == SenseKey::BLANK_CHECK
            || s.asc == Asc(0x0004)
            || (s.key == SenseKey::NO_SENSE && s.eom);
        if !stopped {
            return (Error::IO, count);
        }
        match op {
            // Stopped at a filemark it crossed: back to the side it started on.
            MtioOp::Fsr if s.filemark => {
                self.space(SpaceCode::Filemarks, -1);
            }
            MtioOp::Bsr if s.filemark => {
                self.space(SpaceCode::Filemarks, 1);
                self.at_file_start();
            }
            MtioOp::Fsf => self.at_file_start(),
            _ => {}
        }
        (Error::NO_ERR, short + beyond)
    }
}

fn ok_or_io(d: &Done) -> Error {
    if d.good() {
        Error::NO_ERR
    } else {
        match &d.sense {
            Some(s) if s.key == SenseKey::NOT_READY => Error::NO_TAPE_LOADED,
            _ => Error::IO,
        }
    }
}
