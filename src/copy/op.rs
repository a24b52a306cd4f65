//! The commands the copy manager sends to its CSCDs, typed. Segments and their planners
//! speak in [`Op`]s; an `Op` becomes CDB bytes here, and only through the codec's encoders,
//! so no segment builds a CDB by hand and no opcode or field is written in two places.

use std::ops::Deref;

use crate::scsi::persistent_reservation::{PrOutAction, PrOutCdb};
use crate::scsi::sbc::{self, ModeSenseCdb, ReadWriteCdb};
use crate::scsi::{cdb, inquiry::InquiryCdb, ssc};

/// How a stream CSCD is read and written (Part B 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamUnit {
    /// FIXED: the transfer length counts blocks of `block_length`.
    pub fixed: bool,
    pub block_length: u32,
    /// STREAM DEVICE TRANSFER LENGTH from the segment.
    pub transfer_length: u32,
}

impl StreamUnit {
    /// Bytes moved by one READ or WRITE.
    pub fn bytes(&self) -> usize {
        if self.fixed {
            self.transfer_length as usize * self.block_length as usize
        } else {
            self.transfer_length as usize
        }
    }

    /// The READ(6) (`write` false) or WRITE(6) of `bytes`: FIXED as the CSCD says, the
    /// TRANSFER LENGTH in blocks when fixed, else in bytes.
    pub fn op(&self, write: bool, bytes: usize) -> Op {
        let length = if self.fixed {
            bytes / self.block_length.max(1) as usize
        } else {
            bytes
        } as u32;
        let fixed = self.fixed;
        if write {
            Op::WriteStream { fixed, length }
        } else {
            Op::ReadStream { fixed, length }
        }
    }
}

/// One command to a CSCD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// TEST UNIT READY (verify CSCD, 07h, with TUR=1).
    TestUnitReady,
    /// Standard INQUIRY of `allocation_length` bytes (a CSCD's type; 07h with TUR=0).
    Inquiry { allocation_length: u16 },
    /// READ CAPACITY(16), its 32 bytes of parameter data (a disk's size and block length).
    ReadCapacity16,
    /// MODE SENSE(6) of the header and block descriptor (a drive's block length).
    ModeSense6 { allocation_length: u8 },
    /// READ BLOCK LIMITS (the largest record a drive reads).
    ReadBlockLimits,
    /// READ(16) of `blocks` logical blocks at `lba`.
    ReadBlocks { lba: u64, blocks: u32 },
    /// WRITE(16) of `blocks` logical blocks at `lba`.
    WriteBlocks { lba: u64, blocks: u32 },
    /// READ(6) of one transfer with SILI=0: `length` blocks when `fixed`, else bytes.
    ReadStream { fixed: bool, length: u32 },
    /// WRITE(6) of one transfer: `length` blocks when `fixed`, else bytes.
    WriteStream { fixed: bool, length: u32 },
    /// WRITE FILEMARKS(6) (10h; 13h at each filemark it copies).
    WriteFilemarks { immediate: bool, count: u32 },
    /// SPACE(6) with the segment's CODE (11h).
    Space { code: u8, count: i32 },
    /// LOCATE(10) to a logical object identifier (12h).
    Locate { object: u32 },
    /// PERSISTENT RESERVE OUT with a parameter list of `parameter_list_length` bytes
    /// (14h REGISTER, 15h REGISTER AND MOVE).
    PersistentReserveOut {
        action: PrOutAction,
        parameter_list_length: u32,
    },
}

impl Op {
    /// The CDB, from the codec's encoder for the command.
    pub fn cdb(&self) -> Cdb {
        match *self {
            Op::TestUnitReady => Cdb::new(&cdb::TEST_UNIT_READY),
            Op::Inquiry { allocation_length } => Cdb::new(
                &InquiryCdb {
                    evpd: false,
                    page_code: 0,
                    allocation_length,
                }
                .encode(),
            ),
            Op::ReadCapacity16 => Cdb::new(&sbc::READ_CAPACITY_16_CDB),
            Op::ModeSense6 { allocation_length } => Cdb::new(
                &ModeSenseCdb {
                    ten: false,
                    dbd: false,
                    llbaa: false,
                    page_control: 0,
                    page_code: 0,
                    subpage_code: 0,
                    allocation_length: u16::from(allocation_length),
                }
                .encode6(),
            ),
            Op::ReadBlockLimits => Cdb::new(&ssc::READ_BLOCK_LIMITS_CDB),
            Op::ReadBlocks { lba, blocks } => Cdb::new(&ReadWriteCdb::read_16(lba, blocks)),
            Op::WriteBlocks { lba, blocks } => {
                Cdb::new(&ReadWriteCdb::write_16(lba, blocks, false))
            }
            Op::ReadStream { fixed, length } => Cdb::new(
                &ssc::Read6 {
                    fixed,
                    sili: false,
                    transfer_length: length,
                }
                .encode(),
            ),
            Op::WriteStream { fixed, length } => Cdb::new(
                &ssc::Write6 {
                    fixed,
                    transfer_length: length,
                }
                .encode(),
            ),
            Op::WriteFilemarks { immediate, count } => {
                Cdb::new(&ssc::WriteFilemarks6 { immediate, count }.encode())
            }
            Op::Space { code, count } => Cdb::new(&ssc::space6(code, count)),
            Op::Locate { object } => Cdb::new(&ssc::Locate::encode10(object)),
            Op::PersistentReserveOut {
                action,
                parameter_list_length,
            } => Cdb::new(
                &PrOutCdb {
                    action,
                    scope: 0,
                    type_code: 0,
                    parameter_list_length,
                }
                .encode(),
            ),
        }
    }
}

/// A CDB of at most 16 bytes, held by value (no allocation per command).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cdb {
    bytes: [u8; 16],
    len: usize,
}

impl Cdb {
    /// `bytes` must be a CDB the codec encoded: 6, 10, 12 or 16 bytes.
    fn new(bytes: &[u8]) -> Self {
        let mut out = [0u8; 16];
        let len = bytes.len().min(16);
        out[..len].copy_from_slice(&bytes[..len]);
        Self { bytes: out, len }
    }
}

impl Deref for Cdb {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Debug for Cdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cdb({})", hex::encode(&self.bytes[..self.len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each op's CDB, byte for byte, as the standard lays it out (not as the codec's
    /// decoders read it back): opcode, flags, fields big-endian, CONTROL 0.
    #[test]
    fn cdbs_are_the_standards_bytes() {
        let cases: [(Op, &[u8]); 14] = [
            (Op::TestUnitReady, &[0x00, 0, 0, 0, 0, 0]),
            // SPC-3 6.4.1: EVPD 0, PAGE CODE 0, ALLOCATION LENGTH in bytes 3-4.
            (
                Op::Inquiry {
                    allocation_length: 36,
                },
                &[0x12, 0, 0, 0, 36, 0],
            ),
            // SBC-3 5.11: SERVICE ACTION IN(16) 9Eh, service action 10h, ALLOCATION
            // LENGTH 32 in bytes 10-13.
            (
                Op::ReadCapacity16,
                &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
            ),
            // SPC-3 6.9: page 00h, current values, ALLOCATION LENGTH in byte 4.
            (
                Op::ModeSense6 {
                    allocation_length: 12,
                },
                &[0x1a, 0, 0, 0, 12, 0],
            ),
            (Op::ReadBlockLimits, &[0x05, 0, 0, 0, 0, 0]),
            // SBC-3 5.10 / 5.28: LBA in bytes 2-9, TRANSFER LENGTH in bytes 10-13.
            (
                Op::ReadBlocks {
                    lba: 0x0102_0304_0506_0708,
                    blocks: 0x0a0b_0c0d,
                },
                &[
                    0x88, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0,
                ],
            ),
            (
                Op::WriteBlocks { lba: 5, blocks: 2 },
                &[0x8a, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0],
            ),
            // SSC-3 READ(6)/WRITE(6): FIXED in byte 1 bit 0 (SILI bit 1 stays 0), a 24-bit
            // TRANSFER LENGTH.
            (
                Op::ReadStream {
                    fixed: true,
                    length: 0x01_0203,
                },
                &[0x08, 1, 1, 2, 3, 0],
            ),
            (
                Op::WriteStream {
                    fixed: false,
                    length: 65536,
                },
                &[0x0a, 0, 1, 0, 0, 0],
            ),
            (
                Op::WriteFilemarks {
                    immediate: true,
                    count: 3,
                },
                &[0x10, 1, 0, 0, 3, 0],
            ),
            // SSC-3 SPACE(6): CODE in byte 1 bits 3-0, a 24-bit two's complement COUNT.
            (
                Op::Space { code: 1, count: -1 },
                &[0x11, 1, 0xff, 0xff, 0xff, 0],
            ),
            (Op::Space { code: 3, count: 0 }, &[0x11, 3, 0, 0, 0, 0]),
            // SSC-3 LOCATE(10): the object identifier in bytes 3-6.
            (
                Op::Locate {
                    object: 0x0102_0304,
                },
                &[0x2b, 0, 0, 1, 2, 3, 4, 0, 0, 0],
            ),
            // SPC-4 6.16.1: service action in byte 1, PARAMETER LIST LENGTH in 5-8.
            (
                Op::PersistentReserveOut {
                    action: PrOutAction::RegisterAndMove,
                    parameter_list_length: 24,
                },
                &[0x5f, 0x07, 0, 0, 0, 0, 0, 0, 24, 0],
            ),
        ];
        for (op, bytes) in cases {
            assert_eq!(&*op.cdb(), bytes, "{op:?}");
        }
        let register = Op::PersistentReserveOut {
            action: PrOutAction::Register,
            parameter_list_length: 24,
        };
        assert_eq!(&*register.cdb(), &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0]);
        // What a log line shows of one: its bytes in hex, nothing past its length.
        assert_eq!(
            format!("{:?}", Op::Locate { object: 1 }.cdb()),
            "Cdb(2b000000000001000000)"
        );
    }
}
