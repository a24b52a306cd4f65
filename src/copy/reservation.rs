//! The copy manager meets the reservations of the logical units it copies between: every
//! command it sends a CSCD, and every read and write its fast path does on a device's file,
//! is checked first as an access by the copy manager's own I_T nexus
//! ([`crate::device::reservation::copy_manager_port`]), the way a reservation-aware target
//! checks a command. A conflict ends the segment as the device would end the command: with
//! RESERVATION CONFLICT, forwarded in COPY ABORTED (0D/01, the destination's or source's
//! status 18h and no sense data), nothing of the access done.
//!
//! PERSISTENT RESERVE commands the copy manager sends (segment 14h registers its key, 15h
//! moves a reservation with REGISTER AND MOVE) go to the logical unit's reservations as that
//! same I_T nexus. Devices without [`crate::device::ScsiDevice::reservations`] (SG_IO) keep
//! their own: the real device sees the host's nexus.

use crate::command::{Command, Nexus};
use crate::device::reservation::{Outcome, COPY_MANAGER_PORT};
use crate::device::DataDirection;
use crate::scsi::sbc::ReadWriteCdb;
use crate::scsi::{Asc, Status};

use super::endpoint::Endpoint;
use super::failure::{Failure, Side};

/// The copy manager's I_T nexus.
pub fn nexus() -> Nexus {
    Nexus {
        initiator: COPY_MANAGER_PORT.into(),
        session: 0,
    }
}

fn device_failure(endpoint: &Endpoint, side: Side, status: Status, sense: Vec<u8>) -> Failure {
    Failure {
        asc: Asc::THIRD_PARTY_DEVICE_FAILURE,
        device: Some((side, status, sense)),
        cscd: endpoint.cscd,
        field: None,
    }
}

/// Screens the command `cdb` the copy manager is about to send `endpoint`: `Some` when the
/// logical unit's reservations end it (a conflict, or a PERSISTENT RESERVE command answered
/// there: `Ok(residual)` as [`super::io::command`] returns it).
pub fn screen(
    endpoint: &Endpoint,
    side: Side,
    cdb: &[u8],
    data: &mut DataDirection<'_>,
) -> Option<Result<usize, Failure>> {
    let reservations = endpoint.device.reservations()?;
    let out: &[u8] = match data {
        DataDirection::ToDevice(b) => b,
        _ => &[],
    };
    // The copy manager's own command, built by `Op::cdb`; decoding it cannot fail for want
    // of an operation code.
    let command = Command::decode(cdb).ok()?;
    let outcome = reservations.screen(&nexus(), &command, out)?;
    Some(match outcome {
        Outcome::Good(bytes) => Ok(match data {
            DataDirection::FromDevice(buf) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                buf.len() - n
            }
            _ => 0,
        }),
        Outcome::Check(sense) => {
            tracing::info!(device = %endpoint.device.name(), asc = %sense.asc, "copy manager command refused");
            Err(device_failure(
                endpoint,
                side,
                Status::CHECK_CONDITION,
                sense.encode(),
            ))
        }
        Outcome::Conflict => Err(conflict(endpoint, side)),
    })
}

/// Checks the command `cdb` the copy manager sends `endpoint` outside [`screen`] (a run of
/// tape WRITEs handed over together, a tape image copy's READs).
pub fn check_command(endpoint: &Endpoint, side: Side, cdb: &[u8]) -> Result<(), Failure> {
    match endpoint.device.reservations() {
        Some(r) if r.check(&crate::device::reservation::copy_manager_port(), cdb) => {
            Err(conflict(endpoint, side))
        }
        _ => Ok(()),
    }
}

/// Checks a read (or write) of `blocks` blocks at `lba` the copy manager's fast path is
/// about to do on `endpoint`'s file, as the READ(16) or WRITE(16) it stands for.
pub fn check_io(
    endpoint: &Endpoint,
    side: Side,
    write: bool,
    lba: u64,
    blocks: u64,
) -> Result<(), Failure> {
    if endpoint.device.reservations().is_none() {
        return Ok(());
    }
    let blocks = u32::try_from(blocks).unwrap_or(u32::MAX);
    let cdb = if write {
        ReadWriteCdb::write_16(lba, blocks, false)
    } else {
        ReadWriteCdb::read_16(lba, blocks)
    };
    check_command(endpoint, side, &cdb)
}

fn conflict(endpoint: &Endpoint, side: Side) -> Failure {
    tracing::info!(device = %endpoint.device.name(), ?side, "copy manager access: RESERVATION CONFLICT");
    device_failure(endpoint, side, Status::RESERVATION_CONFLICT, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::limit::Throttle;
    use crate::device::disk::{DiskOptions, EmulatedDisk};
    use std::sync::Arc;

    #[test]
    fn a_persistent_reserve_in_is_answered_into_the_buffer_with_its_residual() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DiskOptions {
            create_size: Some(1 << 20),
            ..DiskOptions::new(dir.path().join("d.img"), 512)
        };
        let disk = EmulatedDisk::open("d", &opts).unwrap();
        let endpoint = Endpoint {
            device: Arc::new(disk),
            cscd: Some(0),
            block_length: 512,
            blocks: 2048,
            backend: None,
            throttle: Throttle::none(),
        };
        // PERSISTENT RESERVE IN, READ KEYS, 16 bytes: the 8-byte header of a unit with no
        // registrations (PRGENERATION 0, ADDITIONAL LENGTH 0), 8 bytes short.
        let mut buf = [0xffu8; 16];
        let cdb = [0x5e, 0, 0, 0, 0, 0, 0, 0, 16, 0];
        let r = screen(
            &endpoint,
            Side::Source,
            &cdb,
            &mut DataDirection::FromDevice(&mut buf),
        );
        assert!(matches!(r, Some(Ok(8))), "{r:?}");
        assert_eq!(
            buf,
            [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        // A READ is not the reservations' to answer: it goes to the device.
        let mut data = [0u8; 512];
        let read = ReadWriteCdb::read_16(0, 1);
        let r = screen(
            &endpoint,
            Side::Source,
            &read,
            &mut DataDirection::FromDevice(&mut data),
        );
        assert!(r.is_none(), "{r:?}");
    }
}
