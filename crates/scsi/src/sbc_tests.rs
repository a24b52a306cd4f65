//! CDB decoding and parameter data of [`super`], by SBC-3/SPC-3 clause.
use super::*;
use crate::SenseKeySpecific;

fn err(cdb: &[u8]) -> (usize, Option<u8>) {
    let e = DiskCommand::decode(cdb).unwrap_err();
    assert_eq!(e.reason, Reason::InvalidFieldInCdb, "{cdb:02x?}");
    (e.offset, e.bit)
}

#[test]
fn read_write_forms_sbc3_5_7_to_5_10_and_5_25_to_5_28() {
    // READ(6): 21-bit LBA, transfer length 0 means 256 blocks (SBC-3 5.9).
    let r = ReadWriteCdb::decode(&[0x08, 0xff, 0x12, 0x34, 0, 0]).unwrap();
    assert_eq!(
        (r.write, r.lba, r.blocks, r.length_offset),
        (false, 0x1f1234, 256, 4)
    );
    let w = ReadWriteCdb::decode(&[0x0a, 0, 0, 9, 3, 0]).unwrap();
    assert_eq!((w.write, w.lba, w.blocks), (true, 9, 3));
    // READ(10) with DPO and FUA; transfer length 0 is legal.
    let r = ReadWriteCdb::decode(&[0x28, 0x18, 0, 0, 1, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!((r.lba, r.blocks, r.fua, r.dpo), (256, 0, true, true));
    let r = ReadWriteCdb::decode(&[0xaa, 0, 0, 0, 0, 7, 0, 1, 0, 0, 0, 0]).unwrap();
    assert_eq!(
        (r.write, r.lba, r.blocks, r.length_offset),
        (true, 7, 65536, 6)
    );
    let cdb = ReadWriteCdb::write_16(0x1_0000_0000, 2048, true);
    let r = ReadWriteCdb::decode(&cdb).unwrap();
    assert_eq!(
        (r.write, r.lba, r.blocks, r.fua),
        (true, 0x1_0000_0000, 2048, true)
    );
    assert_eq!(
        ReadWriteCdb::read_16(5, 8),
        [0x88, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0]
    );
    assert_eq!(
        ReadWriteCdb::decode(&ReadWriteCdb::read_10(0x0102_0304, 9))
            .unwrap()
            .lba,
        0x0102_0304
    );
    assert_eq!(
        ReadWriteCdb::decode(&ReadWriteCdb::write_10(1, 2))
            .unwrap()
            .blocks,
        2
    );
}

#[test]
fn bad_cdb_fields_point_at_the_byte() {
    // RDPROTECT without protection information (SBC-3 Table 33).
    assert_eq!(err(&[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0]), (1, Some(7)));
    // NACA and LINK in the CONTROL byte (SAM-4 5.2).
    assert_eq!(
        err(&[0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 4]),
        (15, Some(2))
    );
    assert_eq!(err(&[0x00, 0, 0, 0, 0, 1]), (5, Some(0)));
    // Truncated CDBs and an empty one.
    assert_eq!(err(&[0x88, 0, 0]), (0, None));
    assert_eq!(err(&[]), (0, None));
    // READ CAPACITY(10) with PMI 0 and LBA != 0 (SBC-3 5.10.1).
    assert_eq!(err(&[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0]), (2, None));
    assert!(DiskCommand::decode(&[0x25, 0, 0, 0, 0, 1, 0, 0, 1, 0]).is_ok());
    // SERVICE ACTION IN(16) with an unknown service action.
    let mut rc16 = [0u8; 16];
    rc16[0] = 0x9e;
    rc16[1] = 0x11;
    assert_eq!(err(&rc16), (1, Some(4)));
    rc16[1] = 0x10;
    rc16[13] = 32;
    assert_eq!(
        DiskCommand::decode(&rc16).unwrap(),
        DiskCommand::ReadCapacity16 {
            allocation_length: 32
        }
    );
    // VERIFY with BYTCHK 10b/11b.
    assert_eq!(err(&[0x2f, 0x04, 0, 0, 0, 0, 0, 0, 1, 0]), (1, Some(2)));
    // INQUIRY page code without EVPD.
    assert_eq!(err(&[0x12, 0, 0x80, 0, 0xff, 0]), (2, None));
    // The sense built from it carries C/D = 1.
    let sense = Sense::from(DiskCommand::decode(&[0x12, 0, 0x80, 0, 0xff, 0]).unwrap_err());
    assert_eq!(sense.asc, Asc::INVALID_FIELD_IN_CDB);
    assert_eq!(
        sense.sense_key_specific,
        Some(SenseKeySpecific::Field {
            command: true,
            bit: None,
            pointer: 2
        })
    );
}

#[test]
fn write_and_verify_10_12_16() {
    let w = WriteVerifyCdb::decode(&[0x2e, 0x12, 0, 0, 1, 0, 0, 0, 8, 0]).unwrap();
    assert_eq!(
        w,
        WriteVerifyCdb {
            lba: 256,
            blocks: 8,
            byte_check: ByteCheck::Compare,
            dpo: true,
            length_offset: 7
        }
    );
    let w = WriteVerifyCdb::decode(&[0xae, 0, 0, 0, 0, 3, 0, 1, 0, 0, 0, 0]).unwrap();
    assert_eq!(
        (w.lba, w.blocks, w.byte_check, w.length_offset),
        (3, 65536, ByteCheck::Medium, 6)
    );
    let mut w16 = [0u8; 16];
    w16[0] = 0x8e;
    w16[2] = 0x01;
    w16[13] = 2;
    let w = WriteVerifyCdb::decode(&w16).unwrap();
    assert_eq!((w.lba, w.blocks, w.length_offset), (1 << 56, 2, 10));
    assert_eq!(w.write().lba, 1 << 56);
    // Reserved BYTCHK values, WRPROTECT, NACA, a short CDB.
    let err = |cdb: &[u8]| {
        let e = WriteVerifyCdb::decode(cdb).unwrap_err();
        (e.offset, e.bit)
    };
    assert_eq!(err(&[0x2e, 0x04, 0, 0, 0, 0, 0, 0, 1, 0]), (1, Some(2)));
    assert_eq!(err(&[0x2e, 0x06, 0, 0, 0, 0, 0, 0, 1, 0]), (1, Some(2)));
    assert_eq!(err(&[0x2e, 0x80, 0, 0, 0, 0, 0, 0, 1, 0]), (1, Some(7)));
    assert_eq!(err(&[0x2e, 0, 0, 0, 0, 0, 0, 0, 1, 0x04]), (9, Some(2)));
    assert_eq!(err(&[0x2e, 0, 0]), (0, None));
    assert!(matches!(
        DiskCommand::decode(&w16),
        Ok(DiskCommand::WriteAndVerify(_))
    ));
}

#[test]
fn verify_and_synchronize_cache() {
    let v = VerifyCdb::decode(&[0x2f, 0x02, 0, 0, 0, 4, 0, 0, 2, 0]).unwrap();
    assert_eq!(
        v,
        VerifyCdb {
            lba: 4,
            blocks: 2,
            byte_check: ByteCheck::Compare,
            length_offset: 7
        }
    );
    let v = VerifyCdb::decode(&[0xaf, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0]).unwrap();
    assert_eq!((v.lba, v.blocks, v.byte_check), (1, 3, ByteCheck::Medium));
    let mut v16 = [0u8; 16];
    v16[0] = 0x8f;
    v16[9] = 9;
    v16[13] = 1;
    assert_eq!(VerifyCdb::decode(&v16).unwrap().lba, 9);
    let s = SynchronizeCacheCdb::decode(&[0x35, 0x02, 0, 0, 0, 8, 0, 0, 0, 0]).unwrap();
    assert_eq!(
        s,
        SynchronizeCacheCdb {
            lba: 8,
            blocks: 0,
            immed: true
        }
    );
}

#[test]
fn range_check_sbc3_4_5() {
    assert!(check_range(0, 8, 8).is_ok());
    assert!(check_range(8, 0, 8).is_ok());
    let e = check_range(7, 2, 8).unwrap_err();
    assert_eq!(e.asc, Asc::LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    assert!(check_range(u64::MAX, 2, u64::MAX).is_err());
}

#[test]
fn read_capacity_data() {
    assert_eq!(read_capacity_10_data(8, 512), [0, 0, 0, 7, 0, 0, 2, 0]);
    assert_eq!(
        read_capacity_10_data(0x1_0000_0001, 4096),
        [0xff, 0xff, 0xff, 0xff, 0, 0, 0x10, 0]
    );
    let d = read_capacity_16_data(0x1_0000_0001, 4096, 0, None);
    assert_eq!(d.len(), 32);
    assert_eq!(d[..16], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0]);
    let thin = crate::sbc_provisioning::Provisioned {
        unmap: true,
        write_same_unmap: true,
        reads_zeros: true,
    };
    let d = read_capacity_16_data(64, 512, 3, Some(thin));
    assert_eq!(d[8..16], [0, 0, 2, 0, 0, 3, 0xc0, 0]);
}

#[test]
fn mode_sense_pages() {
    let params = DiskModeParameters {
        blocks: 0x1_0000_0000,
        block_size: 512,
        write_protect: true,
        write_cache: true,
        software_write_protect: false,
    };
    let cdb = ModeSenseCdb::decode(&[0x1a, 0, 0x3f, 0, 0xff, 0]).unwrap();
    let d = mode_sense_data(&cdb, &params).unwrap();
    assert_eq!(d.len(), 4 + 8 + 20 + 12);
    assert_eq!(d[..4], [43, 0, 0x90, 8]);
    assert_eq!(d[4..12], [0xff, 0xff, 0xff, 0xff, 0, 0, 2, 0]);
    assert_eq!(d[12..15], [0x08, 0x12, 0x04]);
    assert_eq!(d[32..36], [0x0a, 0x0a, 0x02, 0x10]);
    let cdb = ModeSenseCdb::decode(&[0x5a, 0x10, 0x0a, 0, 0, 0, 0, 0, 0xff, 0]).unwrap();
    let d = mode_sense_data(&cdb, &params).unwrap();
    assert_eq!(d[..8], [0, 34, 0, 0x90, 1, 0, 0, 16]);
    assert_eq!(d[8..24], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
    assert_eq!(d[24], 0x0a);
    let cdb = ModeSenseCdb::decode(&[0x1a, 0x08, 0x48, 0, 0xff, 0]).unwrap();
    assert_eq!(cdb.encode6(), [0x1a, 0x08, 0x48, 0, 0xff, 0]);
    let long = ModeSenseCdb {
        allocation_length: 0x1234,
        subpage_code: 0xff,
        ..cdb
    };
    assert_eq!(long.encode6(), [0x1a, 0x08, 0x48, 0xff, 0xff, 0]);
    let d = mode_sense_data(&cdb, &params).unwrap();
    assert_eq!(
        d,
        [23, 0, 0x90, 0, 0x08, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let saved = ModeSenseCdb::decode(&[0x1a, 0, 0xc8, 0, 0xff, 0]).unwrap();
    assert_eq!(
        mode_sense_data(&saved, &params).unwrap_err().asc,
        Asc::SAVING_PARAMETERS_NOT_SUPPORTED
    );
    let bad = ModeSenseCdb::decode(&[0x1a, 0, 0x1c, 0, 0xff, 0]).unwrap();
    assert_eq!(
        mode_sense_data(&bad, &params).unwrap_err().field_pointer(),
        Some(2)
    );
    let bad = ModeSenseCdb::decode(&[0x1a, 0, 0x08, 1, 0xff, 0]).unwrap();
    assert_eq!(
        mode_sense_data(&bad, &params).unwrap_err().field_pointer(),
        Some(3)
    );
}

#[test]
fn report_supported_operation_codes_spc3_6_23() {
    let rsoc = |opts: u8, op: u8, sa: u16| {
        let [s0, s1] = sa.to_be_bytes();
        let cdb = [0xa3, 0x0c, opts, op, s0, s1, 0, 0, 0x10, 0, 0, 0];
        ReportOpcodesCdb::decode(&cdb).and_then(|c| c.response(DISK_COMMANDS))
    };
    let all = rsoc(0, 0, 0).unwrap();
    assert_eq!(all.len(), 4 + 8 * DISK_COMMANDS.len());
    assert_eq!(all[..4], (8 * DISK_COMMANDS.len() as u32).to_be_bytes());
    assert_eq!(all[4..12], [0x00, 0, 0, 0, 0, 0, 0, 6]);
    let rc16 = all[4..].chunks(8).find(|d| d[0] == 0x9e).unwrap().to_vec();
    assert_eq!(rc16, [0x9e, 0, 0, 0x10, 0, 1, 0, 16]);
    let one = rsoc(1, 0x28, 0).unwrap();
    assert_eq!(one[..4], [0, 3, 0, 10]);
    assert_eq!(
        one[4..],
        [0x28, 0xfa, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0]
    );
    assert_eq!(rsoc(1, 0x83, 0).unwrap(), [0, 1, 0, 0]);
    assert_eq!(rsoc(1, 0x9e, 0).unwrap_err().offset, 2);
    let one = rsoc(2, 0x9e, 0x10).unwrap();
    assert_eq!(one[..6], [0, 3, 0, 16, 0x9e, 0x10]);
    assert_eq!(rsoc(2, 0x9e, 0x11).unwrap(), [0, 1, 0, 0]);
    assert_eq!(rsoc(2, 0x28, 0).unwrap_err().offset, 2);
    assert_eq!(rsoc(3, 0, 0).unwrap_err().offset, 2);
    // RCTD (SPC-4): CTDP in every descriptor, each followed by a 12-byte command timeouts
    // descriptor of length 0Ah.
    let timed = rsoc(0x80, 0, 0).unwrap();
    assert_eq!(timed.len(), 4 + 20 * DISK_COMMANDS.len());
    assert_eq!(timed[..4], (20 * DISK_COMMANDS.len() as u32).to_be_bytes());
    for (d, c) in timed[4..].chunks(20).zip(DISK_COMMANDS) {
        assert_eq!(d[0], c.opcode);
        assert_eq!(d[5], 0x02 | u8::from(c.service_action.is_some()));
        assert_eq!(d[8..20], COMMAND_TIMEOUTS);
        assert_eq!(d[8..10], [0, 0x0a]);
    }
    let one = rsoc(0x81, 0x28, 0).unwrap();
    assert_eq!(one[..4], [0, 0x83, 0, 10]);
    assert_eq!(one.len(), 4 + 10 + 12);
    assert_eq!(one[14..], COMMAND_TIMEOUTS);
    // Unsupported: no CTDP, no timeouts descriptor.
    assert_eq!(rsoc(0x81, 0x83, 0).unwrap(), [0, 1, 0, 0]);
    assert_eq!(rsoc(0x40, 0, 0).unwrap_err().offset, 2);
    // Every listed usage decodes as a CDB of its own kind (bits set where evaluated,
    // except where a set bit is itself an error).
    for c in DISK_COMMANDS {
        let mut cdb = vec![0u8; c.usage.len()];
        cdb[0] = c.opcode;
        if let Some(sa) = c.service_action {
            cdb[1] = sa as u8;
        }
        if c.opcode == 0xa3 {
            cdb[2] = 0;
        }
        let decoded = DiskCommand::decode(&cdb).unwrap();
        assert_ne!(decoded, DiskCommand::Unsupported(c.opcode));
        assert_eq!(c.usage[0], c.opcode);
    }
    let mut sorted = DISK_COMMANDS.to_vec();
    sorted.sort_by_key(|c| (c.opcode, c.service_action));
    assert_eq!(sorted, DISK_COMMANDS);
}

#[test]
fn unknown_opcode_is_unsupported_and_junk_never_panics() {
    assert_eq!(
        DiskCommand::decode(&[0xc0, 0, 0, 0, 0, 0]).unwrap(),
        DiskCommand::Unsupported(0xc0)
    );
    for len in 0..20 {
        for op in 0..=255u8 {
            let cdb: Vec<u8> = (0..len)
                .map(|i| {
                    if i == 0 {
                        op
                    } else {
                        (i as u8).wrapping_mul(0x5b)
                    }
                })
                .collect();
            let _ = DiskCommand::decode(&cdb);
        }
    }
}

#[test]
fn read_capacity_16_data_decodes_what_it_encodes() {
    let data = read_capacity_16_data(131_072, 512, 0, None);
    assert_eq!(decode_read_capacity_16_data(&data), Some((131_072, 512)));
    assert_eq!(decode_read_capacity_16_data(&data[..11]), None);
    assert_eq!(decode_read_capacity_16_data(&[0xff; 12]), None);
}

/// FUA is byte 1 bit 3 and DPO bit 4 in READ/WRITE(10/12/16) (SBC-3 5.7-5.10, 5.25-5.28),
/// in COMPARE AND WRITE and ORWRITE(16); each is read alone.
#[test]
fn fua_and_dpo_are_their_own_bits() {
    for (b1, fua, dpo) in [
        (0x00, false, false),
        (0x08, true, false),
        (0x10, false, true),
    ] {
        let rw = ReadWriteCdb::decode(&[0x28, b1, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap();
        assert_eq!((rw.fua, rw.dpo), (fua, dpo), "READ(10) {b1:02x}");
        let mut cdb = [0u8; 16];
        cdb[0] = 0x89;
        cdb[1] = b1;
        cdb[13] = 1;
        let c = crate::sbc_extra::CompareAndWriteCdb::decode(&cdb).unwrap();
        assert_eq!((c.fua, c.dpo), (fua, dpo), "COMPARE AND WRITE {b1:02x}");
        cdb[0] = 0x8b;
        let o = crate::sbc_extra::decode_orwrite_16(&cdb).unwrap();
        assert_eq!((o.fua, o.dpo), (fua, dpo), "ORWRITE(16) {b1:02x}");
    }
    let w = WriteVerifyCdb::decode(&[0x2e, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap();
    assert!(!w.dpo);
}

/// SYNCHRONIZE CACHE: IMMED is byte 1 bit 1 in both forms; the whole-medium form is all
/// zeros but its opcode.
#[test]
fn synchronize_cache_immed() {
    assert_eq!(
        SynchronizeCacheCdb::whole_10(),
        [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert!(
        !SynchronizeCacheCdb::decode(&SynchronizeCacheCdb::whole_10())
            .unwrap()
            .immed
    );
    assert!(
        SynchronizeCacheCdb::decode(&[0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0])
            .unwrap()
            .immed
    );
    let mut c16 = [0u8; 16];
    c16[0] = 0x91;
    assert!(!SynchronizeCacheCdb::decode(&c16).unwrap().immed);
    c16[1] = 0x02;
    assert!(SynchronizeCacheCdb::decode(&c16).unwrap().immed);
}

/// READ CAPACITY(16) with PMI 0 needs LBA 0 (SBC-3 5.16.1): 24/00 at byte 2 otherwise;
/// with PMI (byte 14 bit 0) any LBA is fine.
#[test]
fn read_capacity_16_pmi() {
    let mut cdb = READ_CAPACITY_16_CDB;
    assert_eq!(decode_read_capacity_16(&cdb), Ok(32));
    cdb[9] = 5;
    assert_eq!(decode_read_capacity_16(&cdb).unwrap_err().offset, 2);
    cdb[14] = 0x01;
    assert_eq!(decode_read_capacity_16(&cdb), Ok(32));
    cdb[14] = 0x02;
    assert!(decode_read_capacity_16(&cdb).is_err());
}

/// MODE SENSE(10): DBD byte 1 bit 3, LLBAA bit 4, PAGE CONTROL the top two bits of byte 2;
/// without LLBAA the block descriptor is the short one (8 bytes).
#[test]
fn mode_sense_10_fields_and_short_descriptor() {
    let params = DiskModeParameters {
        blocks: 16,
        block_size: 512,
        write_protect: false,
        write_cache: false,
        software_write_protect: false,
    };
    let c = ModeSenseCdb::decode(&[0x5a, 0x08, 0x48, 0, 0, 0, 0, 0, 0xff, 0]).unwrap();
    assert_eq!(
        (c.dbd, c.llbaa, c.page_control, c.page_code),
        (true, false, 1, 0x08)
    );
    let c = ModeSenseCdb::decode(&[0x5a, 0x00, 0x08, 0, 0, 0, 0, 0, 0xff, 0]).unwrap();
    let d = mode_sense_data(&c, &params).unwrap();
    // BLOCK DESCRIPTOR LENGTH (bytes 6-7) 8, LONGLBA (byte 4 bit 0) clear.
    assert_eq!((d[4], d[6], d[7]), (0, 0, 8));
}

/// PAGE CONTROL 00b reports current values, 10b defaults: SWP, set by MODE SELECT, is
/// current only.
#[test]
fn current_and_default_values_differ_by_what_was_selected() {
    let params = DiskModeParameters {
        blocks: 16,
        block_size: 512,
        write_protect: false,
        write_cache: false,
        software_write_protect: true,
    };
    let current = ModeSenseCdb::decode(&[0x1a, 0x08, 0x0a, 0, 0xff, 0]).unwrap();
    let default = ModeSenseCdb::decode(&[0x1a, 0x08, 0x8a, 0, 0xff, 0]).unwrap();
    // Header (4), no block descriptor, then the Control page: byte 4 bit 3 is SWP.
    let swp = |cdb: &ModeSenseCdb| mode_sense_data(cdb, &params).unwrap()[4 + 4] & 0x08;
    assert_eq!((swp(&current), swp(&default)), (0x08, 0));
}

/// REQUEST SENSE's DESC (byte 1 bit 0) asks for descriptor-format sense.
#[test]
fn request_sense_desc_bit() {
    for (b1, desc) in [(0x00, false), (0x01, true)] {
        match DiskCommand::decode(&[0x03, b1, 0, 0, 252, 0]).unwrap() {
            DiskCommand::RequestSense {
                descriptor_format, ..
            } => assert_eq!(descriptor_format, desc),
            other => panic!("{other:?}"),
        }
    }
}
