//! iSCSI target (RFC 7143).
