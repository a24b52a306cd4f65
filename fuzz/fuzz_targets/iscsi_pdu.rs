//! iSCSI PDUs (RFC 7143 11) and login/text key=value lists. The first byte picks the
//! digests and the data segment limit; the rest is the wire. A decoded PDU must re-encode
//! to as many bytes as it used and decode back to itself; a decoded key list must do the
//! same, and login negotiation and SendTargets must answer any list without panicking.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

use xcopyd::frontend::iscsi::auth::{Chap, Credentials, Initiators};
use xcopyd::frontend::iscsi::login::{
    stage, text_keys, Negotiation, TARGET_MAX_RECV_DATA_SEGMENT_LENGTH,
};
use xcopyd::iscsi::pdu::{Digests, Opcode, Pdu};
use xcopyd::iscsi::text::TextKeys;
use xcopyd::scsi::sbc::DiskCommand;

const TARGET: &str = "iqn.2024-01.org.xcopyd:disk0";

fn text(bytes: &[u8], chap: bool) {
    let Ok(keys) = TextKeys::decode(bytes) else {
        return;
    };
    assert_eq!(TextKeys::decode(&keys.encode()).as_ref(), Ok(&keys));
    let initiators = if chap {
        // The names the seeds use, both with CHAP (one also with mutual CHAP).
        let entry = |user: &str, mutual: bool| Credentials {
            chap: Chap {
                user: user.into(),
                secret: b"secret-secret".to_vec(),
            },
            mutual: mutual.then(|| Chap {
                user: "target".into(),
                secret: b"target-secret".to_vec(),
            }),
        };
        Initiators::listed([
            (
                "iqn.1994-05.com.redhat:client".to_string(),
                entry("user", true),
            ),
            ("i".to_string(), entry("u", false)),
        ])
        .expect("a valid table")
    } else {
        Initiators::anonymous()
    };
    let mut login = Negotiation::new(TARGET, Arc::new(initiators));
    for csg in [stage::SECURITY, stage::OPERATIONAL, stage::FULL_FEATURE] {
        if let Ok(reply) = login.login_keys(csg, &keys) {
            assert_eq!(TextKeys::decode(&reply.encode()).as_ref(), Ok(&reply));
        }
        let _ = (login.may_leave_security(), login.chap_pending());
    }
    let targets = BTreeMap::from([(TARGET.to_string(), "192.0.2.1:3260,1".to_string())]);
    let _ = text_keys(&keys, &targets);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, wire)) = data.split_first() else {
        return;
    };
    let digests = Digests {
        header: sel & 1 != 0,
        data: sel & 2 != 0,
    };
    let max_data = match (sel >> 2) & 3 {
        0 => 0,
        1 => 8192,
        2 => TARGET_MAX_RECV_DATA_SEGMENT_LENGTH as usize,
        _ => 0xff_ffff,
    };
    let chap = sel & 0x10 != 0;

    if let Ok((pdu, used)) = Pdu::decode(wire, digests, max_data) {
        assert!(used <= wire.len());
        assert!(pdu.data.len() <= max_data);
        assert_eq!(Pdu::wire_len(&pdu.bhs, digests, max_data), Ok(used));
        let bytes = pdu.encode(digests);
        assert_eq!(bytes.len(), used, "encoded length");
        assert_eq!(bytes[..48], wire[..48], "BHS");
        assert_eq!(
            Pdu::decode(&bytes, digests, max_data),
            Ok((pdu.clone(), used))
        );
        let _ = format!("{:?}", pdu.bhs);
        match pdu.bhs.opcode() {
            Opcode::SCSI_COMMAND => drop(DiskCommand::decode(pdu.bhs.cdb())),
            Opcode::LOGIN_REQUEST | Opcode::TEXT_REQUEST => text(&pdu.data, chap),
            _ => {}
        }
    }
    text(wire, chap);
});
