//! Test fixtures for front ends: a minimal in-memory SBC disk and a recording
//! [`CopyService`]. Not a device model — the emulated disk (device/) is that; these only
//! exercise transports and the dispatcher (unit tests, the iSCSI integration test and the
//! `iscsi_target` example that libiscsi's iscsi-test-cu runs against).

use std::sync::{Arc, Mutex, PoisonError};

use crate::command::{Abort, CommandResult, Nexus};
use crate::copy::CopyService;
use crate::device::reservation::Reservations;
use crate::device::{Completion, DataDirection, DeviceError, ScsiDevice};
use crate::scsi::cdb::ExtendedCopyCdb;
use crate::scsi::copy_results::ReceiveCopyResultsCdb;
use crate::scsi::inquiry::{InquiryCdb, StandardInquiry};
use crate::scsi::{Asc, DeviceClass, Opcode, PeripheralDeviceType, Put, Sense};

/// A RAM disk answering TEST UNIT READY, INQUIRY (standard only), READ CAPACITY(10),
/// READ(10)/WRITE(10)/READ(16)/WRITE(16), SYNCHRONIZE CACHE(10); 05/20/00 for the rest.
pub struct MemoryDisk {
    name: String,
    block_size: u32,
    data: Mutex<Vec<u8>>,
    reservations: Reservations,
}

impl MemoryDisk {
    pub fn new(name: &str, block_size: u32, blocks: u64) -> Self {
        let len = usize::try_from(u64::from(block_size) * blocks).unwrap_or(0);
        Self {
            name: name.into(),
            block_size,
            data: Mutex::new(vec![0; len]),
            reservations: Reservations::new(DeviceClass::Block),
        }
    }

    fn rw(&self, lba: u64, blocks: u64, data: DataDirection<'_>) -> Completion {
        let bs = u64::from(self.block_size);
        let mut disk = self.data.lock().unwrap_or_else(PoisonError::into_inner);
        let total = disk.len() as u64 / bs;
        if lba.checked_add(blocks).is_none_or(|end| end > total) {
            let s = Sense::illegal_request(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
            return Completion::check_condition(&s, data.len());
        }
        let start = (lba * bs) as usize;
        let len = (blocks * bs) as usize;
        match data {
            DataDirection::FromDevice(buf) => {
                let n = len.min(buf.len());
                buf[..n].copy_from_slice(&disk[start..start + n]);
                Completion::good(buf.len() - n)
            }
            DataDirection::ToDevice(buf) => {
                let n = len.min(buf.len());
                disk[start..start + n].copy_from_slice(&buf[..n]);
                Completion::good(buf.len() - n)
            }
            DataDirection::None => Completion::good(0),
        }
    }
}

impl ScsiDevice for MemoryDisk {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        let be = |r: std::ops::Range<usize>| {
            cdb.get(r)
                .map(|b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
        };
        let op = Opcode(cdb.first().copied().unwrap_or(0xff));
        let out = |data: DataDirection<'_>, bytes: &[u8]| match data {
            DataDirection::FromDevice(buf) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Completion::good(buf.len() - n)
            }
            _ => Completion::good(0),
        };
        let invalid = |data: &DataDirection<'_>| {
            let s = Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE);
            Completion::check_condition(&s, data.len())
        };
        let c = match op {
            Opcode::TEST_UNIT_READY | Opcode::SYNCHRONIZE_CACHE_10 => Completion::good(0),
            Opcode::INQUIRY => match InquiryCdb::decode(cdb) {
                Ok(c) if !c.evpd => {
                    let mut v = Vec::new();
                    StandardInquiry::new(
                        PeripheralDeviceType::DIRECT_ACCESS,
                        "XCOPYD",
                        "MEMORY DISK",
                        "0001",
                    )
                    .encode(&mut v);
                    v.truncate(usize::from(c.allocation_length));
                    out(data, &v)
                }
                Ok(_) => Completion::check_condition(&Sense::invalid_field_in_cdb(2, None), 0),
                Err(e) => Completion::check_condition(&Sense::from(e), 0),
            },
            Opcode::READ_CAPACITY_10 => {
                let blocks = self
                    .data
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len() as u64
                    / u64::from(self.block_size);
                let mut v = Vec::new();
                v.put_u32(u32::try_from(blocks.saturating_sub(1)).unwrap_or(u32::MAX));
                v.put_u32(self.block_size);
                out(data, &v)
            }
            Opcode::READ_10 | Opcode::WRITE_10 => match (be(2..6), be(7..9)) {
                (Some(lba), Some(n)) => self.rw(lba, n, data),
                _ => invalid(&data),
            },
            Opcode::READ_16 | Opcode::WRITE_16 => match (be(2..10), be(10..14)) {
                (Some(lba), Some(n)) => self.rw(lba, n, data),
                _ => invalid(&data),
            },
            _ => invalid(&data),
        };
        Ok(c)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn concurrent_io(&self) -> bool {
        true
    }

    fn reservations(&self) -> Option<&Reservations> {
        Some(&self.reservations)
    }
}

/// A [`CopyService`] that records what it was asked and answers GOOD with fixed data.
#[derive(Default)]
pub struct RecordingCopyService {
    pub calls: Mutex<Vec<CopyCall>>,
}

/// One call a [`RecordingCopyService`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyCall {
    ExtendedCopy {
        nexus: Nexus,
        receiving_lun: Option<String>,
        parameter_list: Vec<u8>,
        aborted: bool,
    },
    ReceiveCopyResults {
        nexus: Nexus,
    },
    NexusLost(Nexus),
}

impl RecordingCopyService {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn calls(&self) -> Vec<CopyCall> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, call: CopyCall) {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
    }
}

impl CopyService for RecordingCopyService {
    fn extended_copy(
        &self,
        nexus: &Nexus,
        receiving_lun: Option<Arc<dyn ScsiDevice>>,
        _cdb: &ExtendedCopyCdb,
        parameter_list: &[u8],
        abort: &Abort,
    ) -> CommandResult {
        self.record(CopyCall::ExtendedCopy {
            nexus: nexus.clone(),
            receiving_lun: receiving_lun.map(|d| d.name().to_string()),
            parameter_list: parameter_list.to_vec(),
            aborted: abort.is_aborted(),
        });
        CommandResult::good(Vec::new())
    }

    fn receive_copy_results(&self, nexus: &Nexus, _cdb: &ReceiveCopyResultsCdb) -> CommandResult {
        self.record(CopyCall::ReceiveCopyResults {
            nexus: nexus.clone(),
        });
        CommandResult::good(vec![0xab; 64])
    }

    fn nexus_lost(&self, nexus: &Nexus) {
        self.record(CopyCall::NexusLost(nexus.clone()));
    }
}
