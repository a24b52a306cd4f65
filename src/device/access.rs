//! Who may reach a device: the one rule every path applies (the dispatcher for a LUN and
//! every command to it, the copy manager for every CSCD including FFFFh, the local CLI).
//!
//! A device's `allow` list names the initiators that may use it; an absent or empty list
//! lets any initiator that reaches the daemon in (DESIGN.md "Device inventory"). Names
//! compare ASCII case-insensitively (iSCSI names are case-folded, RFC 3722). The local
//! command line is the initiator [`LOCAL`], TCMU nexuses `tcmu:<n>`, NDMP users their
//! configured initiator name.
//!
//! This is the post-CVE-2020-28374 rule LIO adopted: a copy may touch only what the
//! initiator could reach itself.

/// The initiator name of the local command line.
pub const LOCAL: &str = crate::command::LOCAL_INITIATOR;

/// Whether `initiator` may use a device whose `allow` list is `allow`.
pub fn permits(allow: &[String], initiator: &str) -> bool {
    allow.is_empty() || allow.iter().any(|a| a.eq_ignore_ascii_case(initiator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_as_a_table() {
        let list = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let open = list(&[]);
        let one = list(&["iqn.1993-08.org.debian:01:backup01"]);
        let two = list(&["tcmu:1", LOCAL]);
        // (allow list, initiator, permitted)
        let table: [(&[String], &str, bool); 10] = [
            (&open, "iqn.anyone", true),
            (&open, LOCAL, true),
            (&one, "iqn.1993-08.org.debian:01:backup01", true),
            (&one, "IQN.1993-08.ORG.DEBIAN:01:BACKUP01", true),
            (&one, "iqn.1993-08.org.debian:01:backup02", false),
            (&one, "iqn.1993-08.org.debian:01:backup01 ", false),
            (&one, LOCAL, false),
            (&two, "tcmu:1", true),
            (&two, "tcmu:2", false),
            (&two, "LOCAL", true),
        ];
        for (allow, initiator, want) in table {
            assert_eq!(permits(allow, initiator), want, "{allow:?} {initiator:?}");
        }
    }
}
