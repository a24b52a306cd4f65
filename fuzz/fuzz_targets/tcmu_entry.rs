//! A TCMU map (mailbox, command ring, data area) as the kernel might leave it, however
//! broken: walking the ring from tail to head, decoding every entry, gathering a command's
//! data-out and completing at the tail must never panic, and what decodes must lie inside
//! the ring and the map.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::frontend::tcmu::ring::{self, Entry, Mailbox, MemMap, Response, SharedMap};

fuzz_target!(|data: &[u8]| {
    let map = MemMap::new(data.to_vec());
    let Ok(mb) = Mailbox::read(&map) else {
        return;
    };
    assert!(mb.cmdr_off as u64 + mb.cmdr_size as u64 <= data.len() as u64);
    let Ok(tail) = mb.check_offset(map.cmd_tail()) else {
        return;
    };
    let head = map.cmd_head();
    let mut at = tail;
    for _ in 0..1024 {
        if at == head {
            break;
        }
        let Ok((entry, len)) = mb.entry(&map, at) else {
            break;
        };
        assert!(len > 0 && len % 8 == 0 && at as u64 + len as u64 <= mb.cmdr_size as u64);
        if let Entry::Cmd(c) = &entry {
            if c.bad.is_none() {
                assert!(!c.cdb.is_empty());
                for iov in &c.iovs {
                    assert!(iov.base as u64 + iov.len as u64 <= data.len() as u64);
                }
                let out = ring::gather(&map, &c.iovs).expect("checked iovecs gather");
                assert_eq!(out.len(), c.data_len());
                let _ = ring::scatter(&map, &c.iovs, &out);
            }
        }
        at = mb.advance(at, len);
    }
    let rsp = Response {
        cmd_id: 1,
        scsi_status: 2,
        sense: vec![0x70; 200],
        read_len: Some(4),
    };
    if let Ok(new_tail) = ring::complete(&mb, &map, tail, at, &rsp) {
        assert!(mb.check_offset(new_tail).is_ok());
    }
});
