//! The login phase on the wire (RFC 7143 6.3): stages, transitions, text continuation and
//! the TSIH; the keys themselves are negotiated by [`crate::frontend::iscsi::login`].

use std::io::{self, Read};
use std::sync::atomic::Ordering;

use super::writer::{read_pdu, Writer};
use super::Shared;
use crate::frontend::iscsi::login::{stage, LoginStatus, Negotiation, Params, TextKeys};
use crate::frontend::iscsi::pdu::{reject, Bhs, Digests, Opcode, Pdu};

/// The login phase (RFC 7143 6.3). Returns the negotiated parameters, ISID and TSIH, or
/// None when the login failed (a Login Response with the failure status was sent).
pub(super) fn login(
    reader: &mut impl Read,
    w: &mut Writer,
    shared: &Shared,
) -> io::Result<Option<(Params, [u8; 6], u16)>> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ u64::from(shared.next_conn.load(Ordering::Relaxed)).rotate_left(32);
    let mut neg = Negotiation::new(&shared.config.target_name, shared.config.chap.clone(), seed);
    let mut current = stage::SECURITY;
    let mut text = Vec::new();
    let mut first = true;
    loop {
        let req = match read_pdu(reader, Digests::default(), 8192) {
            Ok(p) => p,
            Err(_) => return Ok(None),
        };
        let b = req.bhs;
        if b.opcode() != Opcode::LOGIN_REQUEST {
            // Anything but a Login Request before full feature phase: protocol error.
            let _ = w.reject(reject::PROTOCOL_ERROR, &b);
            return Ok(None);
        }
        if first {
            first = false;
            w.window.exp_cmd_sn.store(b.cmd_sn(), Ordering::Release);
            w.stat_sn = b.exp_stat_sn();
        }
        let isid = b.isid();
        let flags = b.flags();
        let transit = flags & 0x80 != 0;
        let cont = flags & 0x40 != 0;
        let csg = (flags >> 2) & 3;
        let nsg = flags & 3;
        let respond = |w: &mut Writer, flags: u8, tsih: u16, status: LoginStatus, data: Vec<u8>| {
            let mut r = Bhs::new(Opcode::LOGIN_RESPONSE);
            r.set_flags(flags)
                .set_isid(isid)
                .set_tsih(tsih)
                .set_itt(b.itt())
                .set_byte(36, status.0)
                .set_byte(37, status.1);
            w.send(Pdu::with_data(r, data), true)
        };
        let fail = |w: &mut Writer, status: LoginStatus| -> io::Result<Option<_>> {
            respond(w, 0, 0, status, Vec::new())?;
            Ok(None)
        };
        // Version-max/min (bytes 2, 3): we speak version 0.
        if b.byte(3) != 0 {
            return fail(w, LoginStatus::UNSUPPORTED_VERSION);
        }
        if b.tsih() != 0 {
            // MaxConnections=1: no connection may join an existing session.
            return fail(w, LoginStatus::SESSION_DOES_NOT_EXIST);
        }
        if csg == 2 || csg < current || (transit && (nsg == 2 || nsg <= csg)) || (transit && cont) {
            return fail(w, LoginStatus::INITIATOR_ERROR);
        }
        if csg == stage::OPERATIONAL && !neg.may_leave_security() {
            return fail(w, LoginStatus::AUTHENTICATION_FAILURE);
        }
        current = csg;
        text.extend_from_slice(&req.data);
        if text.len() > 65536 {
            return fail(w, LoginStatus::INITIATOR_ERROR);
        }
        if cont {
            // Text continues in the next PDU (RFC 7143 6.2): acknowledge with nothing.
            respond(w, csg << 2, 0, LoginStatus::SUCCESS, Vec::new())?;
            continue;
        }
        let keys = match TextKeys::decode(&text) {
            Ok(k) => k,
            Err(_) => return fail(w, LoginStatus::INITIATOR_ERROR),
        };
        text.clear();
        let answer = match neg.login_keys(csg, &keys) {
            Ok(a) => a,
            Err(status) => return fail(w, status),
        };
        let may_transit = transit
            && !(csg == stage::SECURITY && (!neg.may_leave_security() || neg.chap_pending()));
        if may_transit && nsg == stage::FULL_FEATURE {
            let tsih = match shared.next_tsih.fetch_add(1, Ordering::AcqRel) {
                0 => shared.next_tsih.fetch_add(1, Ordering::AcqRel),
                t => t,
            };
            let tsih = tsih.max(1);
            respond(
                w,
                0x80 | (csg << 2) | nsg,
                tsih,
                LoginStatus::SUCCESS,
                answer.encode(),
            )?;
            return Ok(Some((neg.params, isid, tsih)));
        }
        let flags = if may_transit {
            0x80 | (csg << 2) | nsg
        } else {
            csg << 2
        };
        if may_transit {
            current = nsg;
        }
        respond(w, flags, 0, LoginStatus::SUCCESS, answer.encode())?;
    }
}
