//! The iSCSI target as a hostile initiator meets it: one target (a 1 MiB memory disk and a
//! recording copy manager) serves every input; each input is sent on a new connection —
//! after a valid login when the first byte is odd, raw from the first byte otherwise — and
//! whatever comes back is read until the target closes or goes quiet. Any panic in any of
//! the target's threads aborts the process (cargo fuzz builds with panic=abort), so the
//! target's reader, login, Data-Out collection, task management and executor all meet
//! arbitrary PDUs here, not only the codec.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use xcopyd::device::ScsiDevice;
use xcopyd::frontend::iscsi::{self, TargetConfig};
use xcopyd::frontend::testing::{MemoryDisk, RecordingCopyService};
use xcopyd::frontend::Dispatcher;
use xcopyd::iscsi::pdu::{Bhs, Digests, Opcode, Pdu};

const TARGET: &str = "iqn.2026-11.org.xcopyd:fuzz";

fn target() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let luns: Vec<Arc<dyn ScsiDevice>> = vec![Arc::new(MemoryDisk::new("d", 512, 2048))];
        let d = Arc::new(Dispatcher::new(luns, RecordingCopyService::new()));
        let mut config = TargetConfig::new("127.0.0.1:0", TARGET);
        config.login_timeout = Duration::from_secs(1);
        config.data_out_timeout = Duration::from_secs(1);
        let t = iscsi::start(config, d).expect("target");
        let addr = t.local_addr();
        std::mem::forget(t);
        addr
    })
}

/// A login that reaches full feature phase at once (no CHAP, CSG 1 -> NSG 3).
fn login() -> Vec<u8> {
    let mut b = Bhs::new(Opcode::LOGIN_REQUEST);
    b.set_immediate(true)
        .set_flags(0x87)
        .set_isid([0x80, 0, 0, 0, 0, 1])
        .set_itt(0)
        .set_cmd_sn(1);
    let keys = format!(
        "InitiatorName=iqn.fuzz\0TargetName={TARGET}\0ImmediateData=Yes\0InitialR2T=No\0\
         FirstBurstLength=65536\0MaxRecvDataSegmentLength=65536\0"
    );
    Pdu::with_data(b, keys.into_bytes()).encode(Digests::default())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, wire)) = data.split_first() else {
        return;
    };
    let Ok(mut s) = TcpStream::connect(target()) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    if mode & 1 == 1 {
        let _ = s.write_all(&login());
    }
    let _ = s.write_all(wire);
    let _ = s.shutdown(Shutdown::Write);
    let mut sink = [0u8; 65536];
    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
});
