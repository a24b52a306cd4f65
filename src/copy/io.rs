//! The copy manager's I/O to its CSCDs: block reads and writes (through the device's fast
//! path when it has one, else READ(16)/WRITE(16) CDBs), stream reads and writes (READ(6) /
//! WRITE(6) with FIXED as the CSCD says and SILI=0, Part B 3.1), and the tape-control
//! commands. Every failure becomes a [`Failure`] that says which side failed and carries
//! the device's status and sense, to be forwarded in COPY ABORTED (SPC-3 6.3.3, Part B 4).

use std::os::unix::fs::FileExt;

use crate::buf::{AlignedBuf, ALIGN};
use crate::device::{Completion, DataDirection, DeviceError, FileSpan};
use crate::scsi::{Asc, Status};

pub use super::endpoint::Endpoint;
pub use super::failure::{Failure, Side};

use super::op::Op;
pub use super::op::StreamUnit;
use super::plan::Planned;

fn aligned(buf: &[u8]) -> bool {
    buf.as_ptr().align_offset(ALIGN) == 0 && buf.len().is_multiple_of(512)
}

/// Sends one CDB; a CHECK CONDITION or a transport error becomes a [`Failure`] for `side`.
/// Returns the residual on GOOD.
pub fn command(
    endpoint: &Endpoint,
    side: Side,
    cdb: &[u8],
    mut data: DataDirection<'_>,
) -> Result<usize, Failure> {
    let wanted = data.len();
    if let Some(screened) = super::reservation::screen(endpoint, side, cdb, &mut data) {
        return screened;
    }
    match endpoint.device.execute(cdb, data) {
        Ok(c) if c.is_good() => Ok(c.residual.min(wanted)),
        Ok(c) => Err(Failure {
            asc: Asc::THIRD_PARTY_DEVICE_FAILURE,
            device: Some((side, c.status, c.sense)),
            cscd: endpoint.cscd,
            field: None,
        }),
        Err(e) => Err(unreachable(endpoint, &e)),
    }
}

/// Sends a command a planner asked for ([`Planned`]): its data-out, or its data-in, which
/// is returned (as long as the planner said; what the device did not send is zeros).
pub fn carry_out(endpoint: &Endpoint, planned: &Planned) -> Result<Vec<u8>, Failure> {
    let mut data_in = vec![0u8; planned.data_in];
    let direction = if !planned.data_out.is_empty() {
        DataDirection::ToDevice(&planned.data_out)
    } else if planned.data_in > 0 {
        DataDirection::FromDevice(&mut data_in)
    } else {
        DataDirection::None
    };
    command(endpoint, planned.side, &planned.op.cdb(), direction)?;
    Ok(data_in)
}

fn unreachable(endpoint: &Endpoint, _e: &DeviceError) -> Failure {
    Failure::of(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE, endpoint)
}

/// Reads `buf.len()` bytes (a whole number of blocks) starting at `lba`.
pub fn read_blocks(
    endpoint: &Endpoint,
    side: Side,
    lba: u64,
    buf: &mut [u8],
) -> Result<(), Failure> {
    let blocks = blocks_in(endpoint, buf.len())?;
    check_range(endpoint, side, lba, blocks)?;
    endpoint.throttle.take(side, buf.len() as u64)?;
    if let Some(b) = &endpoint.backend {
        super::reservation::check_io(endpoint, side, false, lba, blocks)?;
        let offset = b.offset + lba * u64::from(b.block_size);
        let result = if b.direct && !aligned(buf) {
            let mut bounce = AlignedBuf::default();
            let tmp = bounce.slice(buf.len());
            let r = b.file.read_exact_at(tmp, offset);
            buf.copy_from_slice(tmp);
            r
        } else {
            b.file.read_exact_at(buf, offset)
        };
        return result.map_err(|e| io_failure(endpoint, side, &e, true));
    }
    let mut done = 0usize;
    for chunk in buf.chunks_mut(cdb_chunk(endpoint)) {
        let n = chunk.len() / endpoint.block_length as usize;
        let cdb = Op::ReadBlocks {
            lba: lba + (done / endpoint.block_length as usize) as u64,
            blocks: n as u32,
        }
        .cdb();
        let residual = command(endpoint, side, &cdb, DataDirection::FromDevice(chunk))?;
        if residual != 0 {
            return Err(Failure::of(Asc::COPY_TARGET_DEVICE_DATA_UNDERRUN, endpoint));
        }
        done += n * endpoint.block_length as usize;
    }
    Ok(())
}

/// Writes `buf` (a whole number of blocks) starting at `lba`.
pub fn write_blocks(endpoint: &Endpoint, lba: u64, buf: &[u8]) -> Result<(), Failure> {
    let blocks = blocks_in(endpoint, buf.len())?;
    check_range(endpoint, Side::Destination, lba, blocks)?;
    endpoint
        .throttle
        .take(Side::Destination, buf.len() as u64)?;
    if let Some(b) = endpoint.backend.as_ref().filter(|b| !b.read_only) {
        super::reservation::check_io(endpoint, Side::Destination, true, lba, blocks)?;
        let offset = b.offset + lba * u64::from(b.block_size);
        let _held = b.writes.shared(lba, blocks);
        let result = if b.direct && !aligned(buf) {
            let mut bounce = AlignedBuf::default();
            let tmp = bounce.slice(buf.len());
            tmp.copy_from_slice(buf);
            b.file.write_all_at(tmp, offset)
        } else {
            b.file.write_all_at(buf, offset)
        };
        return result.map_err(|e| io_failure(endpoint, Side::Destination, &e, false));
    }
    let mut done = 0usize;
    for chunk in buf.chunks(cdb_chunk(endpoint)) {
        let n = chunk.len() / endpoint.block_length as usize;
        let cdb = Op::WriteBlocks {
            lba: lba + (done / endpoint.block_length as usize) as u64,
            blocks: n as u32,
        }
        .cdb();
        let residual = command(
            endpoint,
            Side::Destination,
            &cdb,
            DataDirection::ToDevice(chunk),
        )?;
        if residual != 0 {
            return Err(Failure::of(Asc::COPY_TARGET_DEVICE_DATA_UNDERRUN, endpoint));
        }
        done += n * endpoint.block_length as usize;
    }
    Ok(())
}

fn blocks_in(endpoint: &Endpoint, len: usize) -> Result<u64, Failure> {
    let bl = endpoint.block_length as usize;
    if bl == 0 || !len.is_multiple_of(bl) {
        return Err(Failure::of(
            Asc::INCORRECT_COPY_TARGET_DEVICE_TYPE,
            endpoint,
        ));
    }
    Ok((len / bl) as u64)
}

/// An LBA range past the end of the device: the device would answer 05/21/00; answer as it
/// would, without sending the command (so nothing is partially done). The segment executor
/// checks ranges first and reports them against the segment's LBA field; this is the net
/// under it.
pub(super) fn check_range(
    endpoint: &Endpoint,
    side: Side,
    lba: u64,
    blocks: u64,
) -> Result<(), Failure> {
    if lba
        .checked_add(blocks)
        .is_some_and(|end| end <= endpoint.blocks)
    {
        return Ok(());
    }
    let sense =
        crate::scsi::Sense::illegal_request(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE).encode();
    Err(Failure {
        asc: Asc::THIRD_PARTY_DEVICE_FAILURE,
        device: Some((side, Status::CHECK_CONDITION, sense)),
        cscd: endpoint.cscd,
        field: None,
    })
}

pub(super) fn io_failure(
    endpoint: &Endpoint,
    side: Side,
    e: &std::io::Error,
    read: bool,
) -> Failure {
    // The host read or write of a device's medium failed: the device reports MEDIUM ERROR.
    let asc = if read {
        Asc::UNRECOVERED_READ_ERROR
    } else {
        Asc::WRITE_ERROR
    };
    let sense = crate::scsi::Sense::new(crate::scsi::SenseKey::MEDIUM_ERROR, asc).encode();
    let _ = e;
    Failure {
        asc: Asc::THIRD_PARTY_DEVICE_FAILURE,
        device: Some((side, Status::CHECK_CONDITION, sense)),
        cscd: endpoint.cscd,
        field: None,
    }
}

/// Bytes per READ(16)/WRITE(16) when going through CDBs.
fn cdb_chunk(endpoint: &Endpoint) -> usize {
    let bl = endpoint.block_length.max(1) as usize;
    ((1 << 20) / bl).max(1) * bl
}

/// Reads one transfer (`buf.len()` = one unit) from a stream device with SILI=0. Anything
/// but a full transfer is a failure: CHECK CONDITION (ILI, filemark, EOD) -> 0D/01 with the
/// device's sense; GOOD with a residual -> 0D/04.
pub fn read_stream(endpoint: &Endpoint, unit: StreamUnit, buf: &mut [u8]) -> Result<(), Failure> {
    let cdb = unit.op(false, buf.len()).cdb();
    endpoint.throttle.take(Side::Source, buf.len() as u64)?;
    let residual = command(endpoint, Side::Source, &cdb, DataDirection::FromDevice(buf))?;
    if residual != 0 {
        return Err(Failure::of(Asc::COPY_TARGET_DEVICE_DATA_UNDERRUN, endpoint));
    }
    Ok(())
}

/// Writes `data` (each slice whole transfers of `unit`) to a stream device, one WRITE per transfer
/// (sent together where the device can, [`ScsiDevice::write_transfers`]). Early warning
/// (CHECK CONDITION with EOM and the data written) ends the copy: the drive is at the end of
/// its medium and the initiator must be told; that transfer's bytes were written and count
/// as done. `Err` carries the bytes written before the failure.
pub fn write_stream(
    endpoint: &Endpoint,
    unit: StreamUnit,
    data: &[&[u8]],
) -> Result<(), (Failure, u64)> {
    let transfer = unit.bytes().max(1);
    let cdb = unit.op(true, transfer).cdb();
    super::reservation::check_command(endpoint, Side::Destination, &cdb).map_err(|f| (f, 0))?;
    let total: u64 = data.iter().map(|d| d.len() as u64).sum();
    endpoint
        .throttle
        .take(Side::Destination, total)
        .map_err(|f| (f, 0))?;
    let (done, stopped) = endpoint.device.write_transfers(&cdb, data, transfer);
    stream_outcome(endpoint, done, stopped, transfer, total)
}

/// Copies `len` bytes of a disk in memory from `lba` to stream transfers of `unit` on
/// `dst`, the destination having the kernel copy them from the disk's file
/// ([`ScsiDevice::write_transfers_from_file`]): what [`read_blocks`] then [`write_stream`]
/// do, checks included, with no read into a buffer. `None`: not taken, nothing done
/// (no page-cache descriptor, a bandwidth limit to pace, or the device declines).
///
/// [`ScsiDevice::write_transfers_from_file`]: crate::device::ScsiDevice::write_transfers_from_file
pub fn copy_to_stream(
    src: &Endpoint,
    lba: u64,
    len: usize,
    dst: &Endpoint,
    unit: StreamUnit,
) -> Option<Result<(), (Failure, u64)>> {
    let backend = src.backend.as_ref()?;
    let file = backend.page_cache.as_deref()?;
    if src.throttle.is_limited() || dst.throttle.is_limited() {
        return None;
    }
    let transfer = unit.bytes().max(1);
    let cdb = unit.op(true, transfer).cdb();
    let checks = blocks_in(src, len).and_then(|blocks| {
        check_range(src, Side::Source, lba, blocks)?;
        super::reservation::check_io(src, Side::Source, false, lba, blocks)?;
        super::reservation::check_command(dst, Side::Destination, &cdb)
    });
    if let Err(f) = checks {
        return Some(Err((f, 0)));
    }
    let offset = backend.offset + lba * u64::from(backend.block_size);
    if file
        .metadata()
        .map_or(true, |m| m.len() < offset + len as u64)
    {
        // The disk's file was cut short under the disk: the read fails, as `read_blocks`
        // finds (a file cut while the kernel copies fails the tape's write instead).
        let e = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        return Some(Err((io_failure(src, Side::Source, &e, true), 0)));
    }
    let span = FileSpan {
        file,
        offset,
        len: len as u64,
    };
    let (done, stopped) = dst.device.write_transfers_from_file(&cdb, span, transfer)?;
    Some(stream_outcome(dst, done, stopped, transfer, len as u64))
}

/// What [`ScsiDevice::write_transfers`] answered for `total` bytes in `transfer`s, as
/// [`write_stream`] returns it.
///
/// [`ScsiDevice::write_transfers`]: crate::device::ScsiDevice::write_transfers
fn stream_outcome(
    endpoint: &Endpoint,
    done: usize,
    stopped: Option<Result<Completion, DeviceError>>,
    transfer: usize,
    total: u64,
) -> Result<(), (Failure, u64)> {
    let before = (done * transfer) as u64;
    match stopped {
        None => Ok(()),
        Some(Ok(c)) if c.is_good() => Err((
            Failure::of(Asc::COPY_TARGET_DEVICE_DATA_UNDERRUN, endpoint),
            before,
        )),
        Some(Ok(c)) => {
            // EOM with NO SENSE (early warning) means the data was written.
            let written = c
                .decoded_sense()
                .is_some_and(|s| s.eom && s.key == crate::scsi::SenseKey::NO_SENSE);
            let failure = Failure {
                asc: Asc::THIRD_PARTY_DEVICE_FAILURE,
                device: Some((Side::Destination, c.status, c.sense)),
                cscd: endpoint.cscd,
                field: None,
            };
            let piece = total.saturating_sub(before).min(transfer as u64);
            Err((failure, before + if written { piece } else { 0 }))
        }
        Some(Err(e)) => Err((unreachable(endpoint, &e), before)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::testing::MemoryDisk;
    use std::sync::Arc;

    fn through_cdbs(disk: &Arc<MemoryDisk>) -> Endpoint {
        Endpoint {
            device: Arc::clone(disk) as Arc<dyn crate::device::ScsiDevice>,
            cscd: Some(0),
            block_length: 512,
            blocks: 8192,
            backend: None,
            throttle: crate::copy::limit::Throttle::none(),
        }
    }

    /// Without a file fast path, a read or write longer than one CDB's worth (1 MiB) goes
    /// as consecutive READ(16)/WRITE(16)s, each at the LBA where the last one ended.
    #[test]
    fn blocks_past_one_cdb_go_in_consecutive_commands() {
        let disk = Arc::new(MemoryDisk::new("m", 512, 8192));
        let e = through_cdbs(&disk);
        // Every block different (a byte of the block number alone repeats every 128 KiB,
        // and a chunk read from the wrong 1 MiB would match).
        let data: Vec<u8> = (0..(2 << 20) + 1024u32)
            .map(|i| (i / 512).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ (i as u8))
            .collect();
        // Counted: 1 MiB, 1 MiB and 1 KiB, one command each way.
        let counted = Arc::new(crate::device::faults::FaultyDevice::new(Arc::clone(
            &e.device,
        )));
        let e = Endpoint {
            device: Arc::clone(&counted) as Arc<dyn crate::device::ScsiDevice>,
            ..e
        };
        write_blocks(&e, 7, &data).unwrap();
        assert_eq!(counted.commands_seen(), 3);
        let mut back = vec![0u8; data.len()];
        read_blocks(&e, Side::Source, 7, &mut back).unwrap();
        assert_eq!(counted.commands_seen(), 6);
        assert!(back == data, "what was written is what is read back");
        // Block by block, at the LBAs the data was meant for.
        let mut one = vec![0u8; 512];
        for k in [0usize, 2047, 2048, 4097] {
            read_blocks(&e, Side::Source, 7 + k as u64, &mut one).unwrap();
            assert!(one[..] == data[k * 512..(k + 1) * 512], "block {k}");
        }
    }

    /// A range that runs past the device's end is refused as the device would refuse it
    /// (its 05/21/00 forwarded), before any I/O: a file-backed disk's image must not grow
    /// under a write, nor a read run into its end.
    #[test]
    fn a_range_past_the_end_is_refused_before_any_io() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.img");
        let opts = crate::device::disk::DiskOptions {
            create_size: Some(64 * 512),
            ..crate::device::disk::DiskOptions::new(&path, 512)
        };
        let disk = Arc::new(crate::device::disk::EmulatedDisk::open("d", &opts).unwrap());
        let backend = crate::device::ScsiDevice::block_backend(&*disk);
        let e = Endpoint {
            device: disk,
            cscd: Some(1),
            block_length: 512,
            blocks: 64,
            backend,
            throttle: crate::copy::limit::Throttle::none(),
        };
        let want = crate::scsi::Sense::illegal_request(Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
        let refused = |f: Failure| {
            assert_eq!(f.asc, Asc::THIRD_PARTY_DEVICE_FAILURE);
            assert_eq!(f.cscd, Some(1));
            let (side, status, sense) = f.device.expect("the device's sense");
            assert_eq!((status, sense), (Status::CHECK_CONDITION, want.encode()));
            side
        };
        let f = write_blocks(&e, 62, &[7; 4 * 512]).unwrap_err();
        assert_eq!(refused(f), Side::Destination);
        let f = read_blocks(&e, Side::Source, 63, &mut [0; 2 * 512]).unwrap_err();
        assert_eq!(refused(f), Side::Source);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            64 * 512,
            "not grown"
        );
        assert!(
            std::fs::read(&path).unwrap().iter().all(|&b| b == 0),
            "nothing written"
        );
    }

    /// A length that is not whole blocks is refused before any command.
    #[test]
    fn a_length_of_part_of_a_block_is_refused() {
        let disk = Arc::new(MemoryDisk::new("m", 512, 64));
        let e = through_cdbs(&disk);
        let f = write_blocks(&e, 0, &[1; 700]).unwrap_err();
        assert_eq!(f.asc, Asc::INCORRECT_COPY_TARGET_DEVICE_TYPE);
        let f = read_blocks(&e, Side::Source, 0, &mut [0; 100]).unwrap_err();
        assert_eq!(f.asc, Asc::INCORRECT_COPY_TARGET_DEVICE_TYPE);
    }
}
