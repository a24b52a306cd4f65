//! A real SCSI device reached through SG_IO: /dev/sg*, /dev/sd* (the block layer's SG_IO)
//! and /dev/nst* (the st driver's). Opening it runs discovery — standard INQUIRY and the
//! Device Identification VPD page (83h) — so the inventory can match CSCD designators
//! against what the device itself reports.
//!
//! Outcome mapping (include/scsi/sg.h, include/scsi/scsi_status.h):
//! - the ioctl failing: ENODEV/ENXIO -> [`DeviceError::Gone`], anything else ->
//!   [`DeviceError::Io`];
//! - `host_status`: DID_NO_CONNECT, DID_TRANSPORT_DISRUPTED, DID_TRANSPORT_FAILFAST ->
//!   [`DeviceError::NotResponding`]; DID_BAD_TARGET -> [`DeviceError::Gone`];
//!   DID_TIME_OUT -> [`DeviceError::Timeout`]; any other non-zero -> [`DeviceError::Transport`];
//! - `driver_status` (low nibble; DRIVER_SENSE only says sense is valid): DRIVER_TIMEOUT ->
//!   Timeout; other errors without a SCSI status -> Transport;
//! - otherwise a [`Completion`] with the status byte (from `masked_status` on drivers that
//!   fill only that), up to 252 sense bytes, and `resid`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::libc;

use super::{Completion, DataDirection, DeviceError, ScsiDevice};
use crate::scsi::designator::Designator;
use crate::scsi::inquiry::{decode_device_identification, page, split_vpd_page, StandardInquiry};
use crate::scsi::{PeripheralDeviceType, Status};
use crate::sys::sg_io::{self, driver, host, Data, SgIoOutcome, SENSE_BUFFER_LEN};

/// Default command timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 60_000;

/// Why an SG_IO device could not be opened or discovered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SgError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a character or block device node", path.display())]
    NotADeviceNode { path: PathBuf },
    #[error("{}: does not accept SG_IO (not a SCSI device)", path.display())]
    NotScsi { path: PathBuf },
    #[error("{}: discovery {what} failed: {detail}", path.display())]
    Discovery {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
}

/// A SCSI device behind SG_IO.
#[derive(Debug)]
pub struct SgDevice {
    name: String,
    path: PathBuf,
    file: File,
    timeout_ms: u32,
    inquiry: StandardInquiry,
    designators: Vec<Designator>,
}

impl SgDevice {
    /// Opens `path` and runs discovery (standard INQUIRY + VPD 83h). A device without VPD
    /// 83h gets no designators (it can then be named only by FC/SAS address).
    pub fn open(name: &str, path: &Path, timeout_ms: u32) -> Result<Self, SgError> {
        let io_err = |source: io::Error| SgError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io_err)?;
        let ft = meta.file_type();
        if !ft.is_char_device() && !ft.is_block_device() {
            return Err(SgError::NotADeviceNode {
                path: path.to_path_buf(),
            });
        }
        // O_NONBLOCK: a tape drive without a loaded cartridge still opens (st.c).
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .or_else(|e| match e.raw_os_error() {
                Some(libc::EACCES | libc::EROFS) => OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(path),
                _ => Err(e),
            })
            .map_err(io_err)?;
        let mut dev = Self {
            name: name.to_string(),
            path: path.to_path_buf(),
            file,
            timeout_ms,
            inquiry: StandardInquiry::new(PeripheralDeviceType::UNKNOWN, "", "", ""),
            designators: Vec::new(),
        };
        let discovery = |what: &'static str, detail: String| SgError::Discovery {
            path: path.to_path_buf(),
            what,
            detail,
        };
        let (data, c) = dev
            .data_in(&[0x12, 0, 0, 0, 96, 0], 96)
            .map_err(|e| match e {
                DeviceError::Io(e) if e.raw_os_error() == Some(libc::ENOTTY) => SgError::NotScsi {
                    path: path.to_path_buf(),
                },
                other => discovery("INQUIRY", other.to_string()),
            })?;
        if !c.is_good() {
            return Err(discovery("INQUIRY", format!("{:?}", c.decoded_sense())));
        }
        dev.inquiry =
            StandardInquiry::decode(&data).map_err(|e| discovery("INQUIRY", e.to_string()))?;
        let (vpd, c) = dev
            .data_in(&[0x12, 1, page::DEVICE_IDENTIFICATION, 0x10, 0, 0], 4096)
            .map_err(|e| discovery("VPD 83h", e.to_string()))?;
        if c.is_good() {
            let (_, body) =
                split_vpd_page(&vpd).map_err(|e| discovery("VPD 83h", e.to_string()))?;
            dev.designators = decode_device_identification(body)
                .map_err(|e| discovery("VPD 83h", e.to_string()))?;
        }
        Ok(dev)
    }

    /// Up to `len` bytes of data in for `cdb` (cut to what the device returned).
    pub fn data_in(&self, cdb: &[u8], len: usize) -> Result<(Vec<u8>, Completion), DeviceError> {
        let mut buf = vec![0u8; len];
        let c = self.execute(cdb, DataDirection::FromDevice(&mut buf))?;
        buf.truncate(len - c.residual.min(len));
        Ok((buf, c))
    }

    /// The device's designators from VPD 83h (all associations).
    pub fn designators(&self) -> &[Designator] {
        &self.designators
    }

    /// The standard INQUIRY data read at open.
    pub fn inquiry(&self) -> &StandardInquiry {
        &self.inquiry
    }

    pub fn peripheral_device_type(&self) -> PeripheralDeviceType {
        self.inquiry.peripheral_device_type
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn timeout_ms(&self) -> u32 {
        self.timeout_ms
    }
}

impl ScsiDevice for SgDevice {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        let mut sense = [0u8; SENSE_BUFFER_LEN];
        let data = match data {
            DataDirection::None => Data::None,
            DataDirection::FromDevice(b) => Data::FromDevice(b),
            DataDirection::ToDevice(b) => Data::ToDevice(b),
        };
        use crate::scsi::dump::hex_spaced;
        tracing::debug!(device = %self.name, cdb = %hex_spaced(cdb), "SG_IO command");
        let outcome = sg_io::sg_io(self.file.as_fd(), cdb, data, &mut sense, self.timeout_ms)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENODEV | libc::ENXIO) => DeviceError::Gone,
                _ => DeviceError::Io(e),
            });
        let r = outcome.and_then(|o| completion(&o, &sense, self.timeout_ms));
        match &r {
            Ok(c) => tracing::debug!(
                device = %self.name,
                status = format_args!("{:02x}h", c.status.0),
                sense = %hex_spaced(&c.sense),
                residual = c.residual,
                "SG_IO response"
            ),
            Err(e) => tracing::debug!(device = %self.name, error = %e, "SG_IO failed"),
        }
        r
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Maps the outputs of one SG_IO call to a completion or a transport error.
fn completion(
    o: &SgIoOutcome,
    sense: &[u8; SENSE_BUFFER_LEN],
    timeout_ms: u32,
) -> Result<Completion, DeviceError> {
    match o.host_status {
        host::DID_OK => {}
        host::DID_NO_CONNECT | host::DID_TRANSPORT_DISRUPTED | host::DID_TRANSPORT_FAILFAST => {
            return Err(DeviceError::NotResponding)
        }
        host::DID_BAD_TARGET => return Err(DeviceError::Gone),
        host::DID_TIME_OUT => return Err(DeviceError::Timeout(timeout_ms)),
        other => {
            return Err(DeviceError::Transport {
                host: other,
                driver: o.driver_status,
            })
        }
    }
    let status = if o.status != 0 {
        o.status
    } else {
        o.masked_status << 1
    };
    match o.driver_status & 0x0f {
        driver::DRIVER_OK | driver::DRIVER_SENSE => {}
        driver::DRIVER_TIMEOUT => return Err(DeviceError::Timeout(timeout_ms)),
        _ if status == 0 => {
            return Err(DeviceError::Transport {
                host: o.host_status,
                driver: o.driver_status,
            })
        }
        _ => {}
    }
    let sense_len = if status == Status::CHECK_CONDITION.0 {
        o.sense_len
    } else {
        0
    };
    Ok(Completion {
        status: Status(status),
        sense: sense.get(..sense_len).unwrap_or_default().to_vec(),
        residual: usize::try_from(o.resid).unwrap_or(0),
        overflow: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_sg_paths_fail_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = SgDevice::open("x", &file, 1000).unwrap_err();
        assert!(matches!(e, SgError::NotADeviceNode { .. }), "{e}");
        let e = SgDevice::open("x", &dir.path().join("missing"), 1000).unwrap_err();
        assert!(matches!(e, SgError::Io { .. }), "{e}");
        // A character device that is not SCSI: SG_IO is ENOTTY.
        let e = SgDevice::open("x", Path::new("/dev/null"), 1000).unwrap_err();
        assert!(matches!(e, SgError::NotScsi { .. }), "{e}");
        assert!(e.to_string().contains("not a SCSI device"));
    }

    fn outcome(status: u8, host: u16, driver: u16, sense_len: usize, resid: i32) -> SgIoOutcome {
        SgIoOutcome {
            status,
            masked_status: status >> 1,
            host_status: host,
            driver_status: driver,
            sense_len,
            resid,
            ..SgIoOutcome::default()
        }
    }

    #[test]
    fn outcome_mapping() {
        let mut sense = [0u8; SENSE_BUFFER_LEN];
        sense[..3].copy_from_slice(&[0x70, 0, 0x05]);
        let c = completion(&outcome(0, 0, 0, 0, 512), &sense, 10).unwrap();
        assert_eq!(c, Completion::good(512));
        let c = completion(&outcome(2, 0, driver::DRIVER_SENSE, 18, 0), &sense, 10).unwrap();
        assert_eq!(c.status, Status::CHECK_CONDITION);
        assert_eq!(c.sense.len(), 18);
        assert_eq!(c.sense[..3], [0x70, 0, 0x05]);
        let c = completion(&outcome(0x08, 0, 0, 0, 0), &sense, 10).unwrap();
        assert_eq!((c.status, c.sense.len()), (Status::BUSY, 0));
        // Only masked_status filled (old drivers).
        let mut o = outcome(0, 0, 0, 0, 0);
        o.masked_status = 0x0c;
        assert_eq!(
            completion(&o, &sense, 10).unwrap().status,
            Status::RESERVATION_CONFLICT
        );
        for (host, want) in [
            (host::DID_NO_CONNECT, "NotResponding"),
            (host::DID_TRANSPORT_FAILFAST, "NotResponding"),
            (host::DID_BAD_TARGET, "Gone"),
            (host::DID_TIME_OUT, "Timeout(10)"),
            (host::DID_ERROR, "Transport { host: 7, driver: 0 }"),
        ] {
            let e = completion(&outcome(0, host, 0, 0, 0), &sense, 10).unwrap_err();
            assert_eq!(format!("{e:?}"), want);
        }
        let e = completion(&outcome(0, 0, driver::DRIVER_TIMEOUT, 0, 0), &sense, 10);
        assert!(matches!(e, Err(DeviceError::Timeout(10))));
        let e = completion(&outcome(0, 0, 0x04, 0, 0), &sense, 10);
        assert!(matches!(
            e,
            Err(DeviceError::Transport { host: 0, driver: 4 })
        ));
        assert_eq!(
            completion(&outcome(0, 0, 0, 0, -5), &sense, 10)
                .unwrap()
                .residual,
            0
        );
    }
}
