//! Where on a tape a backup goes, and where a restore starts: tapes keep what they hold.
//!
//! `xcopy backup` appends at end of data by default, as `mt eod` and a write would; only
//! `--overwrite` (from the beginning) or `--position FILE` (from the start of tape file FILE,
//! which drops it and every later file, as a tape does) write over data. Each backup is its
//! own tape file: when the data before end of data is not closed by a filemark, the list
//! writes one first. `xcopy restore --file N` reads tape file N.
//!
//! The positioning is in the EXTENDED COPY list itself (segments 12h LOCATE, 11h SPACE, 10h
//! WRITE FILEMARKS), so the copy manager does it whoever runs the list. Where the CLI can
//! reach the tape itself (a local device, or a LUN of the remote target), it first moves
//! the tape the same way and reads the position (READ POSITION, long form), to tell the
//! user which tape file and block the backup starts at.

use anyhow::{bail, Result};

use crate::scsi::segment_descriptor::{CscdId, Segment, SegmentDescriptor};
use crate::scsi::ssc::{Position, ReadPosition, ReadPositionForm, Space6, SpaceCode};
use crate::scsi::Sense;

/// GOOD and CHECK CONDITION.
const GOOD: u8 = 0x00;
const CHECK_CONDITION: u8 = 0x02;

/// Where a backup writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// After the last data on the tape (the default).
    Append,
    /// From the beginning of the tape: everything on it is lost.
    Overwrite,
    /// From the start of tape file N: it and every later file are lost.
    File(u32),
}

/// Where a restore reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Wherever the tape is positioned now.
    Current,
    /// The start of tape file N (0: the beginning of the tape).
    File(u32),
}

/// A tape's answer to one command.
pub struct Reply {
    pub status: u8,
    pub sense: Vec<u8>,
    pub data: Vec<u8>,
}

/// Something the CLI can send tape commands to: a local device, or a LUN of a remote target.
pub trait TapeCommands {
    /// Sends `cdb` accepting up to `len` bytes of data-in.
    fn send(&self, cdb: &[u8], len: usize) -> Result<Reply>;
}

/// Where a backup starts, as READ POSITION reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    /// The tape file the backup becomes (filemarks before it); [`UNKNOWN`] from a drive
    /// without READ POSITION's long form.
    pub file: u64,
    /// The logical object (block) number its first record gets.
    pub block: u64,
    /// The data before end of data is not closed by a filemark: the list writes one first.
    pub close_previous: bool,
}

fn space(tape: &dyn TapeCommands, code: SpaceCode, count: i32) -> Result<Reply> {
    tape.send(&Space6 { code, count }.encode(), 0)
}

/// READ POSITION, long form (logical object and file); a drive that only has the short form
/// gives the logical object, and the file number is left unknown ([`UNKNOWN`]).
fn read_position(tape: &dyn TapeCommands) -> Result<Position> {
    let long = ReadPosition {
        form: ReadPositionForm::Long,
        allocation_length: 32,
    };
    let r = tape.send(&long.encode(), 32)?;
    if let (GOOD, Some(p)) = (r.status, Position::decode_long(&r.data)) {
        return Ok(p);
    }
    let short = ReadPosition {
        form: ReadPositionForm::Short,
        allocation_length: 20,
    };
    let s = tape.send(&short.encode(), 20)?;
    match s.data.get(..8) {
        Some(&[flags, partition, _, _, a, b, c, d]) if s.status == GOOD && flags & 0x04 == 0 => {
            Ok(Position {
                bop: flags & 0x80 != 0,
                eop: flags & 0x40 != 0,
                partition: u32::from(partition),
                object: u64::from(u32::from_be_bytes([a, b, c, d])),
                file: UNKNOWN,
            })
        }
        _ => bail!("the tape does not answer READ POSITION{}", sense_text(&s)),
    }
}

/// A file number READ POSITION's short form could not give.
pub const UNKNOWN: u64 = u64::MAX;

fn sense_text(r: &Reply) -> String {
    match Sense::decode(&r.sense) {
        Ok(s) => format!(": {}", crate::scsi::dump::render_sense(&s).trim_end()),
        Err(_) if r.status != GOOD => format!(": SCSI status {:#04x}", r.status),
        Err(_) => String::new(),
    }
}

fn must(r: Reply, what: &str) -> Result<()> {
    if r.status == GOOD {
        Ok(())
    } else {
        bail!("{what} failed{}", sense_text(&r))
    }
}

/// Moves the tape where a backup with `placement` starts and reports that place. The list
/// ([`backup_positioning`]) moves it the same way again when it runs.
pub fn locate_backup(tape: &dyn TapeCommands, placement: Placement) -> Result<Start> {
    match placement {
        Placement::Overwrite => {
            must(tape.send(&rewind_cdb(), 0)?, "rewinding the tape")?;
            Ok(Start {
                file: 0,
                block: 0,
                close_previous: false,
            })
        }
        Placement::File(n) => {
            let p = locate_file(tape, n)?;
            Ok(Start {
                file: p.file,
                block: p.object,
                close_previous: false,
            })
        }
        Placement::Append => {
            must(
                space(tape, SpaceCode::EndOfData, 0)?,
                "SPACE to end of data",
            )?;
            let end = read_position(tape)?;
            if end.object == 0 {
                return Ok(Start {
                    file: 0,
                    block: 0,
                    close_previous: false,
                });
            }
            // One block back: a filemark there stops the SPACE with FILEMARK set.
            let back = space(tape, SpaceCode::Blocks, -1)?;
            let after_filemark = back.status == CHECK_CONDITION
                && Sense::decode(&back.sense).is_ok_and(|s| s.filemark);
            if back.status != GOOD && !after_filemark {
                bail!(
                    "SPACE back one block from end of data failed{}",
                    sense_text(&back)
                );
            }
            must(
                space(tape, SpaceCode::EndOfData, 0)?,
                "SPACE to end of data",
            )?;
            Ok(if after_filemark {
                Start {
                    file: end.file,
                    block: end.object,
                    close_previous: false,
                }
            } else {
                Start {
                    file: end.file.checked_add(1).unwrap_or(UNKNOWN),
                    block: end.object + 1,
                    close_previous: true,
                }
            })
        }
    }
}

/// Moves the tape to the start of tape file `n` (rewind, then space over `n` filemarks) and
/// reports the position; a tape with fewer files is an error that says how many it has.
pub fn locate_file(tape: &dyn TapeCommands, n: u32) -> Result<Position> {
    must(tape.send(&rewind_cdb(), 0)?, "rewinding the tape")?;
    if n > 0 {
        let r = space(tape, SpaceCode::Filemarks, filemark_count(n)?)?;
        if r.status != GOOD {
            bail!(
                "there is no tape file {n}: SPACE over {n} filemarks from the beginning stopped{}",
                sense_text(&r)
            );
        }
    }
    read_position(tape)
}

fn filemark_count(n: u32) -> Result<i32> {
    i32::try_from(n)
        .ok()
        .filter(|&c| c <= 0x7f_ffff)
        .ok_or_else(|| anyhow::anyhow!("tape file {n} is past what SPACE can count (8388607)"))
}

/// LOCATE(10) to logical object 0.
fn rewind_cdb() -> [u8; 10] {
    crate::scsi::ssc::Locate::encode10(0)
}

/// The segments that put the tape (CSCD `tape`) where a backup with `placement` writes,
/// before its data: `close_previous` (from [`locate_backup`]; unknown = false) adds the
/// filemark that ends the data already there.
pub fn backup_positioning(
    tape: CscdId,
    placement: Placement,
    close_previous: bool,
) -> Result<Vec<SegmentDescriptor>> {
    let seg = |body| SegmentDescriptor { cat: false, body };
    Ok(match placement {
        Placement::Overwrite => vec![seg(locate(tape, 0))],
        Placement::File(n) => file_segments(tape, n)?,
        Placement::Append => {
            let mut out = vec![seg(Segment::Space {
                destination: tape,
                code: 3,
                count: 0,
            })];
            if close_previous {
                out.push(seg(Segment::WriteFilemarks {
                    destination: tape,
                    immed: false,
                    count: 1,
                }));
            }
            out
        }
    })
}

/// The segments that put the tape where a restore from `source` reads.
pub fn restore_positioning(tape: CscdId, source: Source) -> Result<Vec<SegmentDescriptor>> {
    match source {
        Source::Current => Ok(Vec::new()),
        Source::File(n) => file_segments(tape, n),
    }
}

/// LOCATE to the beginning, then SPACE over `n` filemarks.
fn file_segments(tape: CscdId, n: u32) -> Result<Vec<SegmentDescriptor>> {
    let seg = |body| SegmentDescriptor { cat: false, body };
    let mut out = vec![seg(locate(tape, 0))];
    if n > 0 {
        out.push(seg(Segment::Space {
            destination: tape,
            code: 1,
            count: filemark_count(n)?,
        }));
    }
    Ok(out)
}

fn locate(tape: CscdId, object: u32) -> Segment {
    Segment::Locate {
        destination: tape,
        logical_object_id: object,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::tape::{EmulatedTape, TapeConfig};
    use crate::device::{DataDirection, ScsiDevice};

    struct Local(EmulatedTape);

    impl TapeCommands for Local {
        fn send(&self, cdb: &[u8], len: usize) -> Result<Reply> {
            let mut data = vec![0u8; len];
            let dir = if len == 0 {
                DataDirection::None
            } else {
                DataDirection::FromDevice(&mut data)
            };
            let c = self.0.execute(cdb, dir)?;
            Ok(Reply {
                status: c.status.0,
                sense: c.sense,
                data,
            })
        }
    }

    fn write(t: &EmulatedTape, record: &[u8]) {
        let [_, a, b, c] = (record.len() as u32).to_be_bytes();
        let c = t
            .execute(&[0x0a, 0, a, b, c, 0], DataDirection::ToDevice(record))
            .unwrap();
        assert!(c.is_good());
    }

    fn filemark(t: &EmulatedTape) {
        assert!(t
            .execute(&[0x10, 0, 0, 0, 1, 0], DataDirection::None)
            .unwrap()
            .is_good());
    }

    #[test]
    fn appends_start_after_the_last_data_in_a_new_tape_file() {
        let dir = tempfile::tempdir().unwrap();
        let (tape, _) =
            EmulatedTape::open("t", dir.path().join("t.tap"), TapeConfig::default()).unwrap();
        let t = Local(tape);
        let start = |p| locate_backup(&t, p).unwrap();
        let at = |file, block, close_previous| Start {
            file,
            block,
            close_previous,
        };
        assert_eq!(start(Placement::Append), at(0, 0, false), "blank tape");
        write(&t.0, b"one");
        write(&t.0, b"two");
        assert_eq!(start(Placement::Append), at(1, 3, true), "data not closed");
        filemark(&t.0);
        assert_eq!(
            start(Placement::Append),
            at(1, 3, false),
            "closed by a filemark"
        );
        write(&t.0, b"three");
        filemark(&t.0);
        assert_eq!(start(Placement::File(1)), at(1, 3, false));
        assert_eq!(
            start(Placement::File(2)),
            at(2, 5, false),
            "the end, after file 1"
        );
        let e = locate_backup(&t, Placement::File(3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no tape file 3"), "{e}");
        assert_eq!(start(Placement::Overwrite), at(0, 0, false));
        // The tape is left where the list will start writing.
        assert_eq!(locate_file(&t, 2).unwrap().object, 5);
    }

    #[test]
    fn positioning_segments_are_exactly_the_placement() {
        let t = CscdId(1);
        let seg = |body| SegmentDescriptor { cat: false, body };
        let space = |code, count| {
            seg(Segment::Space {
                destination: t,
                code,
                count,
            })
        };
        let locate0 = seg(Segment::Locate {
            destination: t,
            logical_object_id: 0,
        });
        let fm = seg(Segment::WriteFilemarks {
            destination: t,
            immed: false,
            count: 1,
        });
        let p = |placement, close| backup_positioning(t, placement, close).unwrap();
        assert_eq!(p(Placement::Append, false), vec![space(3, 0)]);
        assert_eq!(p(Placement::Append, true), vec![space(3, 0), fm]);
        assert_eq!(p(Placement::Overwrite, false), vec![locate0.clone()]);
        assert_eq!(p(Placement::File(0), false), vec![locate0.clone()]);
        assert_eq!(
            p(Placement::File(4), false),
            vec![locate0.clone(), space(1, 4)]
        );
        assert_eq!(restore_positioning(t, Source::Current).unwrap(), vec![]);
        assert_eq!(
            restore_positioning(t, Source::File(2)).unwrap(),
            vec![locate0, space(1, 2)]
        );
        assert!(backup_positioning(t, Placement::File(0x80_0000), false).is_err());
    }
}
