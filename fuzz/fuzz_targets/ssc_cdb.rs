//! Stream (SSC-3) CDBs and the MODE SELECT parameter list of the emulated tape drive. Every
//! CDB decoder runs over the input; those with an encoder must decode their own encoding
//! back, MODE SENSE data must carry consistent lengths, and whatever MODE SELECT accepts,
//! the MODE SENSE data of the new state must select again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::scsi::ssc::{
    decode_prevent_allow, decode_read_block_limits, decode_rewind, mode_select, mode_sense_data,
    page, Erase6, LoadUnload, Locate, LocateDestination, ModeSelect, ModeSense, ModeState,
    PageControl, Read6, ReadPosition, RequestSense, Space6, Write6, WriteFilemarks6,
    MAX_BLOCK_LENGTH_LIMIT,
};
use xcopyd::scsi::{DecodeError, Sense};

/// Every decode error must become a sense that encodes.
fn sense<T>(r: Result<T, DecodeError>) -> Option<T> {
    r.map_err(|e| Sense::from(e).encode()).ok()
}

fn cdbs(cdb: &[u8]) {
    if let Some(c) = sense(Read6::decode(cdb)) {
        assert_eq!(Read6::decode(&c.encode()), Ok(c));
    }
    if let Some(c) = sense(Write6::decode(cdb)) {
        assert_eq!(Write6::decode(&c.encode()), Ok(c));
    }
    if let Some(c) = sense(WriteFilemarks6::decode(cdb)) {
        assert_eq!(WriteFilemarks6::decode(&c.encode()), Ok(c));
    }
    if let Some(c) = sense(Space6::decode(cdb)) {
        assert_eq!(Space6::decode(&c.encode()), Ok(c));
        assert!((-(1 << 23)..1 << 23).contains(&c.count));
    }
    if let Some(c) = sense(Locate::decode10(cdb)) {
        let LocateDestination::Object(object) = c.destination else {
            panic!("LOCATE(10) to {:?}", c.destination);
        };
        let plain = Locate::decode10(&Locate::encode10(u32::try_from(object).unwrap()));
        assert_eq!(plain.map(|l| l.destination), Ok(c.destination));
    }
    sense(Locate::decode16(cdb));
    if let Some(c) = sense(ReadPosition::decode(cdb)) {
        assert!(matches!(c.data_length(), 20 | 32));
    }
    sense(decode_read_block_limits(cdb));
    sense(decode_rewind(cdb));
    sense(Erase6::decode(cdb));
    if let Some(c) = sense(LoadUnload::decode(cdb)) {
        assert!(!(c.load && c.eot));
    }
    sense(decode_prevent_allow(cdb));
    sense(RequestSense::decode(cdb));
    sense(ModeSelect::decode6(cdb));
    sense(ModeSelect::decode10(cdb));
    for c in [ModeSense::decode6(cdb), ModeSense::decode10(cdb)] {
        let Some(c) = sense(c) else { continue };
        let state = ModeState {
            density_code: cdb.get(5).copied().unwrap_or(0),
            block_length: u32::from_be_bytes([0, 0, cdb[4], cdb[5]]),
            buffered_mode: 1,
            write_protect: cdb[0] & 1 != 0,
        };
        let data = mode_sense_data(&c, &state, &state);
        let (length, header, bdl) = if c.ten {
            let bdl = u16::from_be_bytes([data[6], data[7]]);
            let length = u16::from_be_bytes([data[0], data[1]]);
            (usize::from(length) + 2, 8, usize::from(bdl))
        } else {
            (usize::from(data[0]) + 1, 4, usize::from(data[3]))
        };
        assert_eq!(length, data.len(), "MODE DATA LENGTH");
        assert_eq!(bdl, if c.disable_block_descriptors { 0 } else { 8 });
        assert_eq!((data.len() - header - bdl) % 16, 0, "whole pages");
    }
}

fuzz_target!(|data: &[u8]| {
    cdbs(data);

    // MODE SELECT: the first byte picks the form and the drive's state, the rest is the
    // parameter list.
    let Some((&sel, params)) = data.split_first() else {
        return;
    };
    let ten = sel & 1 != 0;
    let current = ModeState {
        density_code: if sel & 2 != 0 { 0x44 } else { 0 },
        block_length: if sel & 4 != 0 { 512 } else { 0 },
        buffered_mode: (sel >> 3) & 1,
        write_protect: sel & 0x10 != 0,
    };
    let max = if sel & 0x20 != 0 {
        MAX_BLOCK_LENGTH_LIMIT
    } else {
        64 * 1024
    };
    let Some(next) = sense(mode_select(params, ten, &current, max)) else {
        return;
    };
    assert!(next.block_length <= max && next.buffered_mode <= 1);
    assert_eq!(
        (next.density_code, next.write_protect),
        (current.density_code, current.write_protect)
    );
    let all = ModeSense {
        ten,
        disable_block_descriptors: false,
        page_control: PageControl::Current,
        page_code: page::ALL,
        subpage_code: 0,
        allocation_length: u16::MAX,
    };
    let echoed = mode_sense_data(&all, &next, &next);
    assert_eq!(mode_select(&echoed, ten, &next, max), Ok(next));
});
