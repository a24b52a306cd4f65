use super::*;
use crate::daemon::default_state_dir;
use crate::frontend::iscsi::auth::Admission;

#[test]
fn embedded_default_is_the_design_contract() {
    let dir = tempfile::tempdir().unwrap();
    let c = DaemonConfig::embedded(dir.path()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:3260");
    assert_eq!(c.target, "iqn.2026-11.org.xcopyd:mover");
    assert_eq!(c.luns, ["disk0", "tape0"]);
    assert_eq!(c.inventory.devices[0].path, dir.path().join("disk0.img"));
    assert_eq!(c.inventory.devices[0].size, Some(64 << 20));
    assert_eq!(
        c.inventory.devices[1].designators[0].to_string(),
        "naa.5001405a1b2c3d02"
    );
    assert!(dir.path().join("tape0.tap").exists());
    assert_eq!(c.state_dir.as_deref(), Some(dir.path()));
}

#[test]
fn config_keys_limits_and_errors() {
    let base = Path::new("/srv");
    let c = DaemonConfig::parse(
        "[iscsi]\nlisten = \"0.0.0.0:3261\"\nallow_anonymous = true\n\
         [limits]\nmax_segment_descriptors = 8\n\
         [daemon]\nshutdown_grace_secs = 2\n\
         [[device]]\nname = \"d\"\nkind = \"disk\"\npath = \"d.img\"\n[[lun]]\ndevice = \"d\"\n",
        base,
    )
    .unwrap();
    assert_eq!(c.listen, "0.0.0.0:3261");
    assert_eq!(c.target, DEFAULT_TARGET);
    assert_eq!(c.limits.max_segment_descriptors, 8);
    assert_eq!(
        c.limits.max_cscd_descriptors,
        Limits::default().max_cscd_descriptors
    );
    assert_eq!(c.shutdown_grace, Duration::from_secs(2));
    assert_eq!(c.copy_buffers, engine::BUFFERS);
    let b = DaemonConfig::parse("[daemon]\ncopy_buffers = 64\n", base).unwrap();
    assert_eq!(b.copy_buffers, 64);
    assert_eq!(b.state_dir, None);
    let b = DaemonConfig::parse("[daemon]\nstate_dir = \"st\"\n", base).unwrap();
    assert_eq!(b.state_dir, Some(base.join("st")));
    let e = DaemonConfig::parse("[daemon]\ncopy_buffers = 3\n", base).unwrap_err();
    assert!(e.to_string().contains("copy_buffers = 3"), "{e}");
    assert_eq!(c.inventory.devices[0].path, base.join("d.img"));
    assert_eq!(c.tcmu, None);
    let t = DaemonConfig::parse("[tcmu]\n", base).unwrap();
    assert_eq!(t.tcmu.unwrap().subtype, "xcopyd");
    let t = DaemonConfig::parse("[tcmu]\nsubtype = \"mover\"\n", base).unwrap();
    assert_eq!(t.tcmu.unwrap().subtype, "mover");
    for bad in [
        "[[lun]]\ndevice = \"nope\"\n",
        "[iscsi]\nlisten = 1\n",
        "[iscsi]\nlisen = \"x\"\n",
        "[limits]\nmax_segments = 1\n",
        "[isci]\n",
        "[tcmu]\nsubtipe = \"x\"\n",
    ] {
        assert!(DaemonConfig::parse(bad, base).is_err(), "{bad}");
    }
}

#[test]
fn anonymous_logins_only_on_loopback_unless_allowed() {
    let base = Path::new("/srv");
    let e = DaemonConfig::parse("[iscsi]\nlisten = \"0.0.0.0:3260\"\n", base).unwrap_err();
    assert!(e.to_string().contains("allow_anonymous"), "{e}");
    let e = DaemonConfig::parse("[iscsi]\nlisten = \"192.0.2.1:3260\"\n", base).unwrap_err();
    assert!(e.to_string().contains("not a loopback address"), "{e}");
    for ok in ["127.0.0.1:3260", "[::1]:3260", "localhost:3260"] {
        let c = DaemonConfig::parse(&format!("[iscsi]\nlisten = \"{ok}\"\n"), base).unwrap();
        assert!(c.initiators.is_anonymous(), "{ok}");
    }
    let c = DaemonConfig::parse(
        "[iscsi]\nlisten = \"0.0.0.0:3260\"\n\
         [[initiator]]\nname = \"iqn.a\"\nchap_user = \"a\"\nchap_secret = \"twelve-chars\"\n",
        base,
    )
    .unwrap();
    assert_eq!(c.initiators.admit("iqn.b"), Admission::Refused);
    assert!(matches!(c.initiators.admit("IQN.A"), Admission::Chap(_)));
    assert_eq!(
        c.target_config().initiators.admit("iqn.b"),
        Admission::Refused
    );
}

#[test]
fn initiator_entries_and_secret_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.secret");
    std::fs::write(&file, "from-a-file-123\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = "[[initiator]]\nname = \"iqn.a\"\nchap_user = \"a\"\n\
                chap_secret_file = \"a.secret\"\nmutual_chap_user = \"t\"\n\
                mutual_chap_secret = \"another-12-chars\"\n";
    let e = DaemonConfig::parse(text, dir.path()).unwrap_err();
    assert!(
        e.to_string()
            .contains("readable or writable by group or others"),
        "{e}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let c = DaemonConfig::parse(text, dir.path()).unwrap();
    let Admission::Chap(creds) = c.initiators.admit("iqn.a") else {
        panic!("iqn.a not admitted");
    };
    assert_eq!(creds.chap.secret, b"from-a-file-123");
    assert_eq!(creds.mutual.unwrap().user, "t");
    for bad in [
        "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\n",
        "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\nchap_secret = \"short\"\n",
        "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\nchap_secret = \"twelve-chars\"\n\
         mutual_chap_user = \"t\"\n",
        "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\nchap_secret = \"twelve-chars\"\n\
         chap_secret_file = \"a.secret\"\n",
        "[[initiator]]\nname = \"x\"\nchap_user = \"a\"\nchap_secret = \"twelve-chars\"\n\
         chap_sekret = \"x\"\n",
        "[iscsi]\nidle_timeout_secs = 0\n",
        "[iscsi]\nmax_command_bytes = 1048576\nmax_data_out_bytes = 65536\n",
        "[iscsi]\nqueue_depth = 5000\n",
    ] {
        assert!(DaemonConfig::parse(bad, dir.path()).is_err(), "{bad}");
    }
    let c = DaemonConfig::parse(
        "[iscsi]\nmax_connections = 4\nmax_sessions_per_initiator = 2\nlogin_timeout_secs = 3\n\
         idle_timeout_secs = 9\nmax_data_out_bytes = 33554432\ndata_out_timeout_secs = 7\n",
        dir.path(),
    )
    .unwrap();
    let t = c.target_config();
    assert_eq!((t.max_connections, t.max_sessions_per_initiator), (4, 2));
    assert_eq!(
        (t.login_timeout, t.idle_timeout, t.data_out_timeout),
        (
            Duration::from_secs(3),
            Duration::from_secs(9),
            Duration::from_secs(7)
        )
    );
    assert_eq!(t.max_data_out, 32 << 20);
}

#[test]
fn state_dir_rules() {
    let p = |x, h, r| default_state_dir(x, h, r);
    assert_eq!(p(Some("/x"), Some("/h"), true), Path::new("/x/xcopyd"));
    assert_eq!(p(None, Some("/h"), true), Path::new("/var/lib/xcopyd"));
    assert_eq!(
        p(None, Some("/h"), false),
        Path::new("/h/.local/state/xcopyd")
    );
    assert_eq!(
        p(Some(""), Some("/h"), false),
        Path::new("/h/.local/state/xcopyd")
    );
}

#[test]
fn copy_limit_is_a_rate() {
    let base = Path::new("/etc/xcopyd");
    let c = DaemonConfig::parse("[daemon]\ncopy_limit = \"100MiB\"\n", base).unwrap();
    assert_eq!(c.copy_limit, Some(100 << 20));
    let c = DaemonConfig::parse("[daemon]\ncopy_limit = 5000\n", base).unwrap();
    assert_eq!(c.copy_limit, Some(5000));
    assert_eq!(DaemonConfig::parse("", base).unwrap().copy_limit, None);
    for bad in [
        "copy_limit = 0",
        "copy_limit = \"lots\"",
        "copy_limit = true",
    ] {
        let e = DaemonConfig::parse(&format!("[daemon]\n{bad}\n"), base).unwrap_err();
        assert!(e.to_string().contains("[daemon] copy_limit"), "{bad}: {e}");
    }
}
