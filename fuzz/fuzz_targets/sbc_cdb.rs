//! Block (SBC-3) CDBs of the emulated disk, and the parameter data built from them. Every
//! decoder runs over the input; `DiskCommand::decode` must agree with the per-command
//! decoders, READ/WRITE must survive re-encoding as (16), field offsets must lie in the
//! CDB, and MODE SENSE / REPORT SUPPORTED OPERATION CODES data must carry consistent
//! lengths. The same bytes are also an UNMAP parameter list, a SANITIZE OVERWRITE list,
//! and the body of a Block Limits page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::scsi::inquiry::InquiryCdb;
use xcopyd::scsi::sbc::{
    check_range, decode_read_capacity_10, decode_read_capacity_16, mode_sense_data, DiskCommand,
    DiskModeParameters, ModeSenseCdb, ReadWriteCdb, ReportOpcodesCdb, SynchronizeCacheCdb,
    VerifyCdb, WriteVerifyCdb, DISK_COMMANDS,
};
use xcopyd::scsi::sbc_extra::{
    decode_orwrite_16, decode_prevent_allow, decode_write_atomic_16, CompareAndWriteCdb,
    OverwriteParameters, PrefetchCdb, ReadDefectDataCdb, SanitizeCdb, StartStopUnitCdb,
};
use xcopyd::scsi::sbc_provisioning::{GetLbaStatusCdb, UnmapCdb, UnmapList, WriteSameCdb};
use xcopyd::scsi::{DecodeError, Sense};

/// Every decode error must become a sense that encodes.
fn sense<T>(r: Result<T, DecodeError>) -> Option<T> {
    r.map_err(|e| Sense::from(e).encode()).ok()
}

fuzz_target!(|cdb: &[u8]| {
    let rw = sense(ReadWriteCdb::decode(cdb));
    if let Some(c) = rw {
        assert!(usize::from(c.length_offset) < cdb.len());
        let sixteen = if c.write {
            ReadWriteCdb::write_16(c.lba, c.blocks, c.fua)
        } else {
            ReadWriteCdb::read_16(c.lba, c.blocks)
        };
        let again = ReadWriteCdb::decode(&sixteen).expect("READ/WRITE(16) of a decoded CDB");
        assert_eq!(
            (again.write, again.lba, again.blocks),
            (c.write, c.lba, c.blocks)
        );
        assert!(!c.write || again.fua == c.fua);
        for capacity in [0, c.lba, u64::MAX] {
            let _ = check_range(c.lba, u64::from(c.blocks), capacity);
        }
    }
    let verify = sense(VerifyCdb::decode(cdb));
    if let Some(c) = verify {
        assert!(usize::from(c.length_offset) < cdb.len());
    }
    let write_verify = sense(WriteVerifyCdb::decode(cdb));
    if let Some(c) = write_verify {
        assert!(usize::from(c.length_offset) < cdb.len());
        assert_eq!((c.write().lba, c.write().blocks), (c.lba, c.blocks));
    }
    let sync = sense(SynchronizeCacheCdb::decode(cdb));
    let capacity_10 = sense(decode_read_capacity_10(cdb));
    let capacity_16 = sense(decode_read_capacity_16(cdb));
    let mode_sense = sense(ModeSenseCdb::decode(cdb));
    let opcodes = sense(ReportOpcodesCdb::decode(cdb));
    let compare = sense(CompareAndWriteCdb::decode(cdb));
    let orwrite = sense(decode_orwrite_16(cdb));
    let atomic = sense(decode_write_atomic_16(cdb));
    let write_same = sense(WriteSameCdb::decode(cdb));
    if let Some(c) = write_same {
        assert!(usize::from(c.length_offset) < cdb.len());
    }
    let unmap = sense(UnmapCdb::decode(cdb));
    let lba_status = sense(GetLbaStatusCdb::decode(cdb));
    let prefetch = sense(PrefetchCdb::decode(cdb));
    let start_stop = sense(StartStopUnitCdb::decode(cdb));
    let prevent = sense(decode_prevent_allow(cdb));
    let defects = sense(ReadDefectDataCdb::decode(cdb));
    if let Some(c) = defects {
        assert_eq!(c.empty_list().len(), if c.twelve { 8 } else { 4 });
    }
    for block_size in [512, 4096] {
        let _ = sense(SanitizeCdb::decode(cdb, block_size));
        let len = cdb.len().min(usize::from(u16::MAX)) as u16;
        if let Some(p) = sense(OverwriteParameters::decode(cdb, len, block_size)) {
            assert!(p.count > 0 && !p.pattern.is_empty());
            assert!(p.pattern.len() <= block_size as usize);
        }
    }
    for max in [0, 1, 256] {
        let len = cdb.len().min(usize::from(u16::MAX)) as u16;
        if let Some(list) = sense(UnmapList::decode(cdb, len, max)) {
            assert!(list.ranges.len() <= max as usize);
            for capacity in [0, 1 << 20, u64::MAX] {
                let _ = list.check(capacity, 1 << 20).map_err(|s| s.encode());
            }
        }
    }

    if let Some(c) = mode_sense {
        for params in [
            DiskModeParameters {
                blocks: 1 << 21,
                block_size: 512,
                write_protect: false,
                write_cache: true,
                software_write_protect: false,
            },
            DiskModeParameters {
                blocks: u64::MAX,
                block_size: u32::MAX,
                write_protect: true,
                write_cache: false,
                software_write_protect: true,
            },
        ] {
            let Ok(data) = mode_sense_data(&c, &params) else {
                continue;
            };
            let (length, bdl) = if c.ten {
                (
                    usize::from(u16::from_be_bytes([data[0], data[1]])) + 2,
                    usize::from(u16::from_be_bytes([data[6], data[7]])),
                )
            } else {
                (usize::from(data[0]) + 1, usize::from(data[3]))
            };
            assert_eq!(length, data.len(), "MODE DATA LENGTH");
            let want = match (c.dbd, c.ten && c.llbaa) {
                (true, _) => 0,
                (false, false) => 8,
                (false, true) => 16,
            };
            assert_eq!(bdl, want, "BLOCK DESCRIPTOR LENGTH");
        }
    }
    if let Some(c) = opcodes {
        if let Some(data) = sense(c.response(DISK_COMMANDS)) {
            // With RCTD every command descriptor carries CTDP and a 12-byte command
            // timeouts descriptor (SPC-4 6.35).
            let timeouts = if c.rctd { 12 } else { 0 };
            if c.reporting_options == 0 {
                let n = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
                assert_eq!(n, data.len() - 4);
                assert_eq!(n, (8 + timeouts) * DISK_COMMANDS.len());
            } else {
                // The one-command form: a timeouts descriptor only for a supported command.
                let n = usize::from(u16::from_be_bytes([data[2], data[3]]));
                let ctdp = data[1] & 0x80 != 0;
                assert!(matches!(data[1] & 0x7f, 0x01 | 0x03));
                assert_eq!(ctdp, c.rctd && data[1] & 0x7f == 0x03, "CTDP");
                assert_eq!(n + if ctdp { timeouts } else { 0 }, data.len() - 4);
            }
        }
    }

    // The dispatcher's decode agrees with the decoder of the command it names.
    match sense(DiskCommand::decode(cdb)) {
        Some(DiskCommand::Read(c)) => assert_eq!(rw, Some(c)),
        Some(DiskCommand::Write(c)) => assert_eq!(rw, Some(c)),
        Some(DiskCommand::Verify(c)) => assert_eq!(verify, Some(c)),
        Some(DiskCommand::WriteAndVerify(c)) => assert_eq!(write_verify, Some(c)),
        Some(DiskCommand::SynchronizeCache(c)) => assert_eq!(sync, Some(c)),
        Some(DiskCommand::ReadCapacity10) => assert_eq!(capacity_10, Some(())),
        Some(DiskCommand::ReadCapacity16 { allocation_length }) => {
            assert_eq!(capacity_16, Some(allocation_length))
        }
        Some(DiskCommand::ModeSense(c)) => assert_eq!(mode_sense, Some(c)),
        Some(DiskCommand::ModeSelect(c)) => {
            // MODE SELECT(6) 15h or (10) 55h; PF 0 only with no parameter list.
            assert_eq!(cdb.first(), Some(if c.ten { &0x55 } else { &0x15 }));
            assert!(c.page_format || c.parameter_list_length == 0);
        }
        Some(DiskCommand::ReportSupportedOperationCodes(c)) => assert_eq!(opcodes, Some(c)),
        Some(DiskCommand::Inquiry(c)) => assert_eq!(sense(InquiryCdb::decode(cdb)), Some(c)),
        Some(DiskCommand::CompareAndWrite(c)) => assert_eq!(compare, Some(c)),
        Some(DiskCommand::OrWrite(c)) => assert_eq!(orwrite, Some(c)),
        Some(DiskCommand::WriteAtomic(c)) => assert_eq!(atomic, Some(c)),
        Some(DiskCommand::WriteSame(c)) => assert_eq!(write_same, Some(c)),
        Some(DiskCommand::Unmap(c)) => assert_eq!(unmap, Some(c)),
        Some(DiskCommand::GetLbaStatus(c)) => assert_eq!(lba_status, Some(c)),
        Some(DiskCommand::Prefetch(c)) => assert_eq!(prefetch, Some(c)),
        Some(DiskCommand::StartStopUnit(c)) => assert_eq!(start_stop, Some(c)),
        Some(DiskCommand::PreventAllow(p)) => assert_eq!(prevent, Some(p)),
        Some(DiskCommand::ReadDefectData(c)) => assert_eq!(defects, Some(c)),
        Some(DiskCommand::Unsupported(op) | DiskCommand::Reservation(op)) => {
            assert_eq!(cdb.first(), Some(&op))
        }
        Some(
            DiskCommand::TestUnitReady | DiskCommand::RequestSense { .. } | DiskCommand::Sanitize,
        )
        | None => {}
    }
});
