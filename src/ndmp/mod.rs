//! NDMP v4: the protocol backup applications (DMAs: NetBackup, Commvault, Amanda, Bareos)
//! use to drive a remote tape service, robot and data mover. xcopyd serves its inventory
//! over it, beside iSCSI and TCMU, with the same devices and the same `allow` lists.
//!
//! ```text
//! xdr.rs      XDR primitives, bounded (pure)
//! header.rs   record marking and the message header (pure)
//! codes.rs    message and error codes; message.rs requests and shared structures (pure)
//! reply.rs    replies and posts (pure)
//! auth.rs     the MD5 challenge digest
//! conn.rs     records on a socket; replies and posts
//! config.rs   the daemon's [ndmp] table
//! server.rs   the listener; services.rs what its sessions share
//! session.rs  CONNECT, authentication, routing; config_service.rs CONFIG
//! lu.rs       a device opened through the dispatcher; tape.rs NDMP tape semantics on SSC
//! agents.rs   MOVER and DATA requests and their connection; mover.rs, data.rs, stream.rs
//! ```

pub mod agents;
pub mod auth;
pub mod client;
pub mod codes;
pub mod config;
pub mod config_service;
pub mod conn;
pub mod data;
pub mod digest;
pub mod header;
pub mod local;
pub mod lu;
pub mod message;
pub mod mover;
pub mod reply;
pub mod server;
pub mod services;
pub mod session;
pub mod stream;
pub mod tape;
pub mod xdr;

pub use config::NdmpConfig;
pub use server::NdmpServer;
pub use services::Services;

/// Runs the request decoder over `data` as the body of every message code, and re-encodes
/// what decodes: the result must decode to the same request (the fuzz target's hook).
#[cfg(any(test, fuzzing))]
pub fn fuzz_decode(data: &[u8]) {
    use message::Request;
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let codes = [
        0x900, 0x901, 0x902, 0x903, 0x100, 0x102, 0x103, 0x104, 0x105, 0x106, 0x107, 0x108, 0x109,
        0x10a, 0x200, 0x201, 0x202, 0x204, 0x206, 0x300, 0x301, 0x302, 0x303, 0x304, 0x305, 0x307,
        0x400, 0x401, 0x402, 0x403, 0x404, 0x407, 0x409, 0x40a, 0x40b, 0xa00, 0xa01, 0xa02, 0xa03,
        0xa04, 0xa05, 0xa06, 0xa07, 0xa08, 0xa09,
    ];
    let code = codes[usize::from(selector) % codes.len()];
    if let Ok(Some(r)) = Request::decode(code, body) {
        let (c, b) = r.encode();
        assert_eq!(c, code);
        assert_eq!(Request::decode(c, &b), Ok(Some(r)));
    }
    let mut r = xdr::Reader::new(data);
    let _ = header::Header::decode(&mut r);
    let _ = reply::MoverState::decode(data);
    let _ = reply::decode_env_reply(data);
}
