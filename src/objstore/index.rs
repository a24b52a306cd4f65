//! A cartridge's index object `BARCODE/index`: what is committed. The cartridge is a SIMH
//! byte stream cut into pieces (immutable objects, each holding whole objects of the
//! stream); the index lists the pieces in order (`key`, the stream offset of its first
//! byte, the bytes of it that count — a rewrite from a position keeps a piece's head) and
//! the runs of the tape index (image offset, SIMH word, count), from which LOCATE, SPACE
//! and READ POSITION are answered without reading data. Anything in the store that no
//! index names (a dead writer's pieces) is not on the tape.
//!
//! Read from the store, an index is checked before use: pieces contiguous from 0 to `end`,
//! runs contiguous over the same bytes, at most [`MAX_RUNS`] runs and [`MAX_PIECES`] pieces.

use serde::{Deserialize, Serialize};

use crate::device::tape::image::TAPE_MARK;
use crate::device::tape::index::{Index, MAX_RUNS};

/// Pieces one cartridge may have (64 MiB pieces: 64 TiB).
pub const MAX_PIECES: usize = 1 << 20;

/// One piece of the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceRef {
    pub key: String,
    pub start: u64,
    pub len: u64,
}

/// The committed state of a cartridge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The gateway that wrote it, and the count of its commits: every write changes the
    /// bytes, so every version has its own ETag.
    pub writer: String,
    pub generation: u64,
    /// Stream bytes (end of data).
    pub end: u64,
    pub pieces: Vec<PieceRef>,
    /// (image offset, SIMH word, count)
    pub runs: Vec<(u64, u32, u64)>,
}

/// Bytes an object with SIMH word `word` takes in the stream.
fn object_len(word: u32) -> u64 {
    if word == TAPE_MARK {
        4
    } else {
        let len = u64::from(word & 0x7fff_ffff);
        8 + len + (len & 1)
    }
}

impl Committed {
    /// Parses and checks an index object; the reason when it is not one.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let c: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if c.pieces.len() > MAX_PIECES || c.runs.len() > MAX_RUNS {
            return Err("too many pieces or runs".into());
        }
        let mut at = 0u64;
        for p in &c.pieces {
            if p.start != at || p.len == 0 {
                return Err(format!(
                    "piece {} at {} does not follow {at}",
                    p.key, p.start
                ));
            }
            at = at.checked_add(p.len).ok_or("piece length overflows")?;
        }
        if at != c.end {
            return Err(format!("pieces end at {at}, index at {}", c.end));
        }
        let mut at = 0u64;
        for &(offset, word, count) in &c.runs {
            if offset != at || count == 0 {
                return Err(format!("run at {offset} does not follow {at}"));
            }
            let bytes = object_len(word)
                .checked_mul(count)
                .ok_or("run length overflows")?;
            at = at.checked_add(bytes).ok_or("run length overflows")?;
        }
        if at != c.end {
            return Err(format!("runs end at {at}, index at {}", c.end));
        }
        Ok(c)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The tape index of the committed objects.
    pub fn index(&self) -> Index {
        let mut index = Index::default();
        for &(offset, word, count) in &self.runs {
            // decode() bounded the runs by MAX_RUNS.
            let _ = index.push(offset, word, count);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// An index object is input from the store: any bytes decode or are refused.
        #[test]
        fn any_bytes_are_an_index_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Committed::decode(&bytes);
        }

        /// Any sequence of appends, cut into pieces anywhere, round-trips and answers
        /// like the index it was made from.
        #[test]
        fn appended_objects_round_trip(
            appends in proptest::collection::vec((0u32..70_000, 1u64..5), 0..20),
            cuts in proptest::collection::vec(1u64..100_000, 0..5),
        ) {
            let mut index = Index::default();
            let mut end = 0u64;
            for (word, count) in appends {
                index.push(end, word, count).unwrap();
                end += object_len(word) * count;
            }
            let mut pieces = Vec::new();
            let mut at = 0u64;
            for (i, cut) in cuts.into_iter().enumerate() {
                if at + cut >= end {
                    break;
                }
                pieces.push(PieceRef { key: format!("p{i}"), start: at, len: cut });
                at += cut;
            }
            if end > at {
                pieces.push(PieceRef { key: "last".into(), start: at, len: end - at });
            }
            let c = Committed { writer: "w".into(), generation: 1, end, pieces, runs: index.run_list().collect() };
            let back = Committed::decode(&c.encode()).unwrap();
            prop_assert_eq!(&back, &c);
            prop_assert_eq!(back.index(), index);
        }
    }

    #[test]
    fn a_consistent_index_round_trips_and_an_inconsistent_one_is_refused() {
        let c = Committed {
            writer: "gw-a".into(),
            generation: 3,
            end: 2 * 18 + 4,
            pieces: vec![
                PieceRef {
                    key: "p/a-0".into(),
                    start: 0,
                    len: 18,
                },
                PieceRef {
                    key: "p/a-1".into(),
                    start: 18,
                    len: 22,
                },
            ],
            runs: vec![(0, 10, 2), (36, 0, 1)],
        };
        let back = Committed::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        let index = back.index();
        assert_eq!(index.objects(), 3);
        assert_eq!(index.entry(1), Some((18, 10)));
        assert_eq!(index.filemark(0), Some(2));
        let mut holed = c.clone();
        holed.pieces[1].start = 20;
        assert!(Committed::decode(&holed.encode())
            .unwrap_err()
            .contains("does not follow"));
        let mut short = c.clone();
        short.runs.pop();
        assert!(Committed::decode(&short.encode())
            .unwrap_err()
            .contains("runs end at 36"));
        assert!(Committed::decode(b"{").is_err());
    }
}
