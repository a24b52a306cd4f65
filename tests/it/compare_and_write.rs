//! COMPARE AND WRITE (VMware's ATS) from 16 iSCSI sessions racing on one block of the
//! daemon's disk: every round each session asks to replace the block's current contents
//! with its own; exactly one wins (GOOD), the others get MISCOMPARE (0E/1D/00), and the
//! block then holds the winner's data. CDBs are built here from SBC-3 5.2.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::Initiator;
use xcopyd::daemon::{Daemon, DaemonConfig};

const TARGET: &str = "iqn.2026-11.org.xcopyd:mover";
const SESSIONS: usize = 16;
const ROUNDS: usize = 25;
const LBA: u8 = 5;

fn config(dir: &Path) -> DaemonConfig {
    let text = format!(
        r#"
[iscsi]
listen = "127.0.0.1:0"
target = "{TARGET}"
[daemon]
shutdown_grace_secs = 1
state_dir = "state"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "1MiB"
designator = "naa.5001405a1b2c3d01"
[[lun]]
device = "disk0"
"#
    );
    DaemonConfig::parse(&text, dir).unwrap()
}

/// The block session `s` writes in round `r`.
fn block_of(s: usize, r: usize) -> Vec<u8> {
    (0..512).map(|i| (s * 31 + r * 7 + i) as u8).collect()
}

fn caw_cdb() -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x89;
    c[9] = LBA;
    c[13] = 1;
    c
}

#[test]
fn sixteen_sessions_race_and_one_wins_each_round() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(config(dir.path())).unwrap();
    let addr = daemon.local_addr();
    let barrier = Arc::new(Barrier::new(SESSIONS));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    for s in 0..SESSIONS {
        let (barrier, tx) = (Arc::clone(&barrier), tx.clone());
        threads.push(std::thread::spawn(move || {
            let name = format!("iqn.2026-11.org.example:host-{s}");
            let mut i = Initiator::logged_in_to(addr, TARGET, &name);
            assert_eq!(
                Initiator::sense(&i.command(0, &[0; 6], &[], 0)),
                (6, 0x29, 0)
            );
            // Everyone starts from the block as it is (zeros).
            let mut current = vec![0u8; 512];
            for r in 0..ROUNDS {
                let mut data = current.clone();
                data.extend_from_slice(&block_of(s, r));
                barrier.wait();
                let reply = i.command(0, &caw_cdb(), &data, 0);
                let won = match reply.status {
                    0 => true,
                    2 => {
                        assert_eq!(Initiator::sense(&reply), (0x0e, 0x1d, 0x00));
                        false
                    }
                    other => panic!("status {other:#x}"),
                };
                tx.send((r, s, won)).unwrap();
                // All have tried: read what the block holds now for the next round.
                barrier.wait();
                let read = i.command(0, &[0x28, 0, 0, 0, 0, LBA, 0, 0, 1, 0], &[], 512);
                assert_eq!(read.status, 0);
                current = read.data;
                barrier.wait();
            }
            i.logout();
            current
        }));
    }
    drop(tx);
    let results: Vec<Vec<u8>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut winners = vec![Vec::new(); ROUNDS];
    for (r, s, won) in rx {
        if won {
            winners[r].push(s);
        }
    }
    for (r, w) in winners.iter().enumerate() {
        assert_eq!(w.len(), 1, "round {r}: winners {w:?}");
    }
    // The block holds the last round's winner's data, as every session last read it.
    let last = block_of(winners[ROUNDS - 1][0], ROUNDS - 1);
    assert!(results.iter().all(|b| *b == last));
    let image = std::fs::read(dir.path().join("disk0.img")).unwrap();
    assert_eq!(
        image[usize::from(LBA) * 512..usize::from(LBA) * 512 + 512],
        last[..]
    );
    daemon.shutdown(Duration::from_secs(1));
}
