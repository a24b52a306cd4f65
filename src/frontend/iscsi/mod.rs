//! iSCSI target (RFC 7143): a pure PDU codec ([`pdu`]), login and text negotiation
//! ([`login`]), and the TCP server ([`target`]) that feeds SCSI commands to the
//! [`Dispatcher`](crate::frontend::Dispatcher).

pub mod auth;
pub mod initiator;
pub mod login;
pub mod pdu;
pub mod target;

pub use target::{start, Target, TargetConfig};
