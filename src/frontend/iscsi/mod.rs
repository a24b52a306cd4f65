//! iSCSI target (RFC 7143): who may log in ([`auth`]), login and text negotiation
//! ([`login`]), and the TCP server ([`target`]) that feeds SCSI commands to the
//! [`Dispatcher`](crate::frontend::Dispatcher). The protocol it shares with the initiator
//! (PDUs, text keys, CHAP) is [`crate::iscsi`].

pub mod auth;
pub mod login;
pub mod target;

pub use target::{start, Target, TargetConfig};
