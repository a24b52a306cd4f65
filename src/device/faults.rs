//! Fault injection for the copy engine's tests (cargo feature `testing`):
//! [`FaultyDevice`] wraps any [`ScsiDevice`] and, by deterministic rules, fails commands
//! with a chosen status and sense, shortens transfers, or stops answering.
//!
//! Counting: every `execute` call is numbered from 1 in arrival order (under one mutex, so
//! the numbering is well defined when threads race, and exact for one thread). Rules see
//! the command before the wrapped device does; a failed command never reaches it.
//!
//! | rule | fires on | effect |
//! |---|---|---|
//! | [`Fault::NthCommand`] | the Nth command (of one opcode if given) | status + sense |
//! | [`Fault::LbaRange`] | every READ/WRITE (6/10/12/16) touching the range | sense, INFORMATION = first bad LBA if unset |
//! | [`Fault::TapeCommand`] | the Nth WRITE(6) or READ(6) ("the Nth write") | status + sense |
//! | [`Fault::ShortTransfer`] | the Nth command (of one opcode if given) | GOOD with a residual |
//! | [`Fault::StopAnswering`] | the Nth command and every one after | `Err(NotResponding)` / `Err(Timeout)` |
//! | [`Fault::Settle`] | the end of a list's writing (`settle`) | status + sense |
//!
//! [`FaultyDevice::block_backend`] returns `None` unless enabled with
//! [`FaultyDevice::with_block_backend`]: the engine's fast path would bypass the rules.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{BlockBackend, Completion, DataDirection, DeviceError, ScsiDevice};
use crate::scsi::sbc::ReadWriteCdb;
use crate::scsi::{Opcode, Sense, Status};

/// How a failed command ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: Status,
    /// Sense returned with the status (encoded when the fault fires).
    pub sense: Option<Sense>,
}

impl Failure {
    /// CHECK CONDITION with `sense`.
    pub fn check_condition(sense: Sense) -> Self {
        Self {
            status: Status::CHECK_CONDITION,
            sense: Some(sense),
        }
    }

    /// A status without sense (BUSY, TASK SET FULL, RESERVATION CONFLICT, ...).
    pub fn status(status: Status) -> Self {
        Self {
            status,
            sense: None,
        }
    }

    fn completion(&self, residual: usize, lba: Option<u64>) -> Completion {
        let sense = self.sense.as_ref().map(|s| {
            let mut s = s.clone();
            if s.information.is_none() {
                s.information = lba;
            }
            s.encode()
        });
        Completion {
            status: self.status,
            sense: sense.unwrap_or_default(),
            residual,
            overflow: 0,
        }
    }
}

/// Which tape data command a [`Fault::TapeCommand`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapeOp {
    /// WRITE(6), 0Ah.
    Write,
    /// READ(6), 08h.
    Read,
}

/// How a device that stopped answering fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    NotResponding,
    /// `DeviceError::Timeout` with this many milliseconds.
    Timeout(u32),
}

/// One fault rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fail the `n`th command (from 1), counting only `opcode` commands when given.
    NthCommand {
        n: u64,
        opcode: Option<u8>,
        failure: Failure,
    },
    /// Fail every READ/WRITE (6/10/12/16) whose blocks overlap `first..first + count`.
    /// CDBs are read in their SBC layout: meant for block devices (on a tape, READ(6) and
    /// WRITE(6) carry no LBA; use [`Fault::TapeCommand`]).
    LbaRange {
        first: u64,
        count: u64,
        failure: Failure,
    },
    /// Fail the `n`th WRITE(6) or READ(6) (a tape's logical position in records).
    TapeCommand {
        op: TapeOp,
        n: u64,
        failure: Failure,
    },
    /// Complete the `n`th command (of `opcode` if given) GOOD with `residual` bytes not
    /// transferred. Data-in: the wrapped device fills only the first `len - residual`
    /// bytes. Data-out: the wrapped device receives all of it; the residual is claimed.
    ShortTransfer {
        n: u64,
        opcode: Option<u8>,
        residual: usize,
    },
    /// From the `from`th command on, every command fails with `silence`.
    StopAnswering { from: u64, silence: Silence },
    /// The end of a list's writing ([`ScsiDevice::settle`]) fails with `failure` (a
    /// cartridge whose store cannot take what was written).
    Settle { failure: Failure },
}

#[derive(Debug, Default)]
struct Counters {
    commands: u64,
    by_opcode: HashMap<u8, u64>,
    tape_writes: u64,
    tape_reads: u64,
    silent: Option<Silence>,
}

/// What a rule decided for one command.
enum Verdict {
    Pass,
    Fail(Completion),
    Short(usize),
    Silent(Silence),
}

/// A device wrapper that injects faults by rule. Thread-safe and deterministic.
pub struct FaultyDevice {
    inner: Arc<dyn ScsiDevice>,
    rules: Mutex<Vec<Fault>>,
    counters: Mutex<Counters>,
    pass_backend: bool,
}

impl FaultyDevice {
    pub fn new(inner: Arc<dyn ScsiDevice>) -> Self {
        Self {
            inner,
            rules: Mutex::new(Vec::new()),
            counters: Mutex::new(Counters::default()),
            pass_backend: false,
        }
    }

    /// Adds a rule (builder form).
    pub fn with(self, fault: Fault) -> Self {
        self.add(fault);
        self
    }

    /// Exposes the wrapped device's block backend (faults then apply only to CDBs).
    pub fn with_block_backend(mut self) -> Self {
        self.pass_backend = true;
        self
    }

    /// Adds a rule while the device is in use.
    pub fn add(&self, fault: Fault) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(fault);
    }

    /// Removes every rule and un-silences the device; counters keep counting.
    pub fn clear(&self) {
        self.rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .silent = None;
    }

    /// Commands seen so far.
    pub fn commands_seen(&self) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .commands
    }

    fn judge(&self, cdb: &[u8]) -> Verdict {
        let rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        let mut c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let opcode = cdb.first().copied().unwrap_or(0);
        c.commands += 1;
        let nth = c.commands;
        let nth_of_opcode = {
            let n = c.by_opcode.entry(opcode).or_default();
            *n += 1;
            *n
        };
        let tape = match Opcode(opcode) {
            Opcode::WRITE_6 => {
                c.tape_writes += 1;
                Some((TapeOp::Write, c.tape_writes))
            }
            Opcode::READ_6 => {
                c.tape_reads += 1;
                Some((TapeOp::Read, c.tape_reads))
            }
            _ => None,
        };
        if let Some(silence) = c.silent {
            return Verdict::Silent(silence);
        }
        let matches_nth = |n: u64, op: Option<u8>| match op {
            Some(op) => op == opcode && n == nth_of_opcode,
            None => n == nth,
        };
        let io = ReadWriteCdb::decode(cdb).ok();
        for rule in rules.iter() {
            let verdict = match rule {
                Fault::StopAnswering { from, silence } if nth >= *from => {
                    c.silent = Some(*silence);
                    Verdict::Silent(*silence)
                }
                Fault::NthCommand { n, opcode, failure } if matches_nth(*n, *opcode) => {
                    Verdict::Fail(failure.completion(0, None))
                }
                Fault::LbaRange {
                    first,
                    count,
                    failure,
                } => {
                    let end = first.saturating_add(*count);
                    match io.filter(|rw| rw.blocks > 0) {
                        Some(rw)
                            if rw.lba < end
                                && *first < rw.lba.saturating_add(u64::from(rw.blocks)) =>
                        {
                            Verdict::Fail(failure.completion(0, Some(rw.lba.max(*first))))
                        }
                        _ => continue,
                    }
                }
                Fault::TapeCommand { op, n, failure } if tape == Some((*op, *n)) => {
                    Verdict::Fail(failure.completion(0, None))
                }
                Fault::ShortTransfer {
                    n,
                    opcode,
                    residual,
                } if matches_nth(*n, *opcode) => Verdict::Short(*residual),
                _ => continue,
            };
            return verdict;
        }
        Verdict::Pass
    }
}

impl ScsiDevice for FaultyDevice {
    fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
        let offered = data.len();
        match self.judge(cdb) {
            Verdict::Pass => self.inner.execute(cdb, data),
            Verdict::Fail(mut completion) => {
                completion.residual = offered;
                Ok(completion)
            }
            Verdict::Silent(Silence::NotResponding) => Err(DeviceError::NotResponding),
            Verdict::Silent(Silence::Timeout(ms)) => Err(DeviceError::Timeout(ms)),
            Verdict::Short(residual) => {
                let residual = residual.min(offered);
                let data = match data {
                    DataDirection::FromDevice(buf) => {
                        let keep = buf.len() - residual;
                        DataDirection::FromDevice(&mut buf[..keep])
                    }
                    other => other,
                };
                let mut c = self.inner.execute(cdb, data)?;
                if c.is_good() {
                    c.residual = c.residual.max(residual);
                }
                Ok(c)
            }
        }
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn settle(&self) -> Result<(), Completion> {
        let rules = self.rules.lock().unwrap_or_else(PoisonError::into_inner);
        for rule in rules.iter() {
            if let Fault::Settle { failure } = rule {
                return Err(failure.completion(0, None));
            }
        }
        drop(rules);
        self.inner.settle()
    }

    // `write_transfers` stays the default, one command at a time, so every WRITE meets the
    // faults.

    fn supported_commands(&self) -> Option<&'static [crate::scsi::sbc::CommandUsage]> {
        self.inner.supported_commands()
    }

    fn reservations(&self) -> Option<&super::reservation::Reservations> {
        self.inner.reservations()
    }

    fn block_backend(&self) -> Option<BlockBackend> {
        if self.pass_backend {
            self.inner.block_backend()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::{Asc, SenseKey};

    /// A device that answers GOOD, fills data-in with 0xAB and records the CDBs it saw.
    #[derive(Default)]
    struct Echo {
        seen: Mutex<Vec<Vec<u8>>>,
    }

    impl ScsiDevice for Echo {
        fn execute(&self, cdb: &[u8], data: DataDirection<'_>) -> Result<Completion, DeviceError> {
            self.seen.lock().unwrap().push(cdb.to_vec());
            if let DataDirection::FromDevice(buf) = data {
                buf.fill(0xab);
            }
            Ok(Completion::good(0))
        }
        fn name(&self) -> &str {
            "echo"
        }
    }

    fn wrap() -> (Arc<Echo>, FaultyDevice) {
        let echo = Arc::new(Echo::default());
        let dev = FaultyDevice::new(echo.clone());
        (echo, dev)
    }

    const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];
    const INQ: [u8; 6] = [0x12, 0, 0, 0, 36, 0];

    fn medium() -> Sense {
        Sense::new(SenseKey::MEDIUM_ERROR, Asc::UNRECOVERED_READ_ERROR)
    }

    #[test]
    fn nth_command_fails_once() {
        let (echo, dev) = wrap();
        let dev = dev.with(Fault::NthCommand {
            n: 3,
            opcode: None,
            failure: Failure::check_condition(medium()),
        });
        let mut results = Vec::new();
        for _ in 0..5 {
            results.push(dev.execute(&TUR, DataDirection::None).unwrap());
        }
        assert!(results[..2].iter().all(Completion::is_good));
        assert_eq!(results[2].status, Status::CHECK_CONDITION);
        let s = results[2].decoded_sense().unwrap();
        assert_eq!(
            (s.key, s.asc),
            (SenseKey::MEDIUM_ERROR, Asc::UNRECOVERED_READ_ERROR)
        );
        assert!(results[3..].iter().all(Completion::is_good));
        assert_eq!(
            echo.seen.lock().unwrap().len(),
            4,
            "the failed one never reached it"
        );
        assert_eq!(dev.commands_seen(), 5);
    }

    #[test]
    fn nth_command_of_one_opcode_with_a_bare_status() {
        let (_, dev) = wrap();
        dev.add(Fault::NthCommand {
            n: 2,
            opcode: Some(0x12),
            failure: Failure::status(Status::BUSY),
        });
        let mut buf = [0u8; 36];
        let statuses: Vec<Status> = [&INQ[..], &TUR, &INQ, &TUR, &INQ]
            .iter()
            .map(|cdb| {
                dev.execute(cdb, DataDirection::FromDevice(&mut buf))
                    .unwrap()
                    .status
            })
            .collect();
        assert_eq!(
            statuses,
            [
                Status::GOOD,
                Status::GOOD,
                Status::BUSY,
                Status::GOOD,
                Status::GOOD
            ]
        );
        let busy = dev.execute(&TUR, DataDirection::None).unwrap();
        assert!(busy.sense.is_empty());
    }

    #[test]
    fn lba_range_fails_every_overlapping_read_and_write() {
        let (_, dev) = wrap();
        dev.add(Fault::LbaRange {
            first: 100,
            count: 10,
            failure: Failure::check_condition(medium()),
        });
        let mut buf = vec![0u8; 8 * 512];
        let mut read = |lba: u64, blocks: u32| {
            dev.execute(
                &ReadWriteCdb::read_16(lba, blocks),
                DataDirection::FromDevice(&mut buf),
            )
            .unwrap()
        };
        assert!(read(92, 8).is_good(), "ends at 99");
        let c = read(95, 8);
        assert_eq!(c.decoded_sense().unwrap().information, Some(100));
        assert_eq!(c.residual, 8 * 512);
        assert_eq!(read(105, 8).decoded_sense().unwrap().information, Some(105));
        assert!(read(110, 8).is_good(), "starts after 109");
        assert!(read(105, 0).is_good(), "no blocks touched");
        let w = dev
            .execute(
                &ReadWriteCdb::write_10(109, 1),
                DataDirection::ToDevice(&[0; 512]),
            )
            .unwrap();
        assert_eq!(w.status, Status::CHECK_CONDITION);
        // Keeps failing: a bad range is persistent.
        assert!(!read(100, 1).is_good());
        assert!(dev.execute(&TUR, DataDirection::None).unwrap().is_good());
    }

    #[test]
    fn tape_nth_write_fails() {
        let (_, dev) = wrap();
        let eom = Sense {
            eom: true,
            ..Sense::new(
                SenseKey::VOLUME_OVERFLOW,
                Asc::END_OF_PARTITION_MEDIUM_DETECTED,
            )
        };
        dev.add(Fault::TapeCommand {
            op: TapeOp::Write,
            n: 3,
            failure: Failure::check_condition(eom),
        });
        let write = [0x0a, 0, 0, 0x02, 0, 0];
        let read = [0x08, 0, 0, 0x02, 0, 0];
        let data = [0u8; 512];
        let mut buf = [0u8; 512];
        let mut outcomes = Vec::new();
        for i in 0..5 {
            outcomes.push(
                dev.execute(&write, DataDirection::ToDevice(&data))
                    .unwrap()
                    .is_good(),
            );
            if i == 1 {
                // READs don't move the write count.
                assert!(dev
                    .execute(&read, DataDirection::FromDevice(&mut buf))
                    .unwrap()
                    .is_good());
            }
        }
        assert_eq!(outcomes, [true, true, false, true, true]);
    }

    #[test]
    fn short_transfer_reports_a_residual() {
        let (_, dev) = wrap();
        dev.add(Fault::ShortTransfer {
            n: 1,
            opcode: Some(0x88),
            residual: 1000,
        });
        let mut buf = vec![0u8; 4096];
        let c = dev
            .execute(
                &ReadWriteCdb::read_16(0, 8),
                DataDirection::FromDevice(&mut buf),
            )
            .unwrap();
        assert_eq!(c, Completion::good(1000));
        assert!(buf[..3096].iter().all(|&b| b == 0xab));
        assert!(buf[3096..].iter().all(|&b| b == 0), "tail untouched");
        let c = dev
            .execute(
                &ReadWriteCdb::read_16(0, 8),
                DataDirection::FromDevice(&mut buf),
            )
            .unwrap();
        assert_eq!(c, Completion::good(0));
    }

    #[test]
    fn stop_answering_from_the_nth_command_on() {
        let (_, dev) = wrap();
        dev.add(Fault::StopAnswering {
            from: 2,
            silence: Silence::Timeout(30_000),
        });
        assert!(dev.execute(&TUR, DataDirection::None).is_ok());
        for _ in 0..3 {
            assert!(matches!(
                dev.execute(&TUR, DataDirection::None),
                Err(DeviceError::Timeout(30_000))
            ));
        }
        dev.clear();
        assert!(dev.execute(&TUR, DataDirection::None).is_ok());
        dev.add(Fault::StopAnswering {
            from: 1,
            silence: Silence::NotResponding,
        });
        assert!(matches!(
            dev.execute(&TUR, DataDirection::None),
            Err(DeviceError::NotResponding)
        ));
    }

    #[test]
    fn counting_is_exact_across_threads() {
        let (echo, dev) = wrap();
        dev.add(Fault::NthCommand {
            n: 50,
            opcode: None,
            failure: Failure::status(Status::TASK_SET_FULL),
        });
        let dev = Arc::new(dev);
        let failed: usize = (0..4)
            .map(|_| {
                let dev = Arc::clone(&dev);
                std::thread::spawn(move || {
                    (0..25)
                        .filter(|_| !dev.execute(&TUR, DataDirection::None).unwrap().is_good())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(failed, 1);
        assert_eq!(echo.seen.lock().unwrap().len(), 99);
        assert!(dev.block_backend().is_none());
    }
}
