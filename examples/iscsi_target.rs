//! Serves an in-memory disk (LUN 0) and an emulated tape (LUN 1) over iSCSI, for running
//! libiscsi's iscsi-test-cu against the target:
//!
//! ```text
//! cargo run --example iscsi_target -- 127.0.0.1:3260 /tmp/tape.tap
//! iscsi-test-cu --dataloss -t 'iSCSI.*' iscsi://127.0.0.1:3260/iqn.2026-11.org.xcopyd:test/0
//! ```

use std::sync::Arc;

use xcopyd::device::tape::{EmulatedTape, TapeConfig};
use xcopyd::device::ScsiDevice;
use xcopyd::frontend::iscsi::{self, TargetConfig};
use xcopyd::frontend::testing::{MemoryDisk, RecordingCopyService};
use xcopyd::frontend::Dispatcher;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3260".into());
    let tape_path = args
        .next()
        .unwrap_or_else(|| "/tmp/xcopyd-example.tap".into());
    let (tape, _) = EmulatedTape::open("tape0", &tape_path, TapeConfig::default())?;
    let luns: Vec<Arc<dyn ScsiDevice>> = vec![
        Arc::new(MemoryDisk::new("disk0", 512, 64 * 2048)),
        Arc::new(tape),
    ];
    let dispatcher = Arc::new(Dispatcher::new(luns, RecordingCopyService::new()));
    let target = iscsi::start(
        TargetConfig::new(&listen, "iqn.2026-11.org.xcopyd:test"),
        dispatcher,
    )?;
    eprintln!("serving on {}", target.local_addr());
    loop {
        std::thread::park();
    }
}
