//! The iSCSI protocol (RFC 7143) as both ends speak it: PDU framing ([`pdu`]), text keys
//! ([`text`]) and CHAP ([`chap`]), and the initiator ([`initiator`]) the command line uses.
//! The target is [`crate::frontend::iscsi`]; it and the initiator share these, neither
//! imports the other.

pub mod chap;
pub mod initiator;
pub mod pdu;
pub mod text;
