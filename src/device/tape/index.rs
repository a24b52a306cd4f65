//! The index of a tape image: where each logical object starts, as runs of objects of one
//! kind laid end to end (a run of 256 KiB records, a run of filemarks). A backup writes a
//! handful of runs whatever its size, and WRITE FILEMARKS of FFFFFFh filemarks is one run,
//! so memory follows the number of changes in record length, not the number of objects;
//! lookups are binary searches. At most [`MAX_RUNS`] runs: past that the tape is full.

/// The most runs an index holds (40 bytes each: 40 MiB). A writer alternating record
/// lengths on every record reaches it after a million records; backups never do.
pub const MAX_RUNS: usize = 1 << 20;

/// The 4-byte SIMH word of a filemark.
const TAPE_MARK: u32 = 0;

/// `count` objects with the same SIMH word, one after another in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    /// Logical object number of the first.
    first: u64,
    count: u64,
    /// Image offset of the first.
    offset: u64,
    word: u32,
    /// Filemarks before the run.
    marks_before: u64,
}

impl Run {
    fn len(&self) -> u64 {
        image_len(self.word)
    }

    fn is_filemark(&self) -> bool {
        self.word == TAPE_MARK
    }

    fn end(&self) -> u64 {
        self.first + self.count
    }
}

/// Bytes an object with SIMH word `word` occupies: 4 for a filemark, else both length
/// words, the data and a pad byte to even.
fn image_len(word: u32) -> u64 {
    if word == TAPE_MARK {
        4
    } else {
        let len = u64::from(word & 0x7fff_ffff);
        8 + len + (len & 1)
    }
}

/// Objects of a tape image, by logical object number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    runs: Vec<Run>,
}

/// The index is full ([`MAX_RUNS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl Index {
    /// Logical objects: end of data is at this object number.
    pub fn objects(&self) -> u64 {
        self.runs.last().map_or(0, Run::end)
    }

    /// Filemarks on the tape.
    pub fn filemarks(&self) -> u64 {
        self.runs.last().map_or(0, |r| {
            r.marks_before + if r.is_filemark() { r.count } else { 0 }
        })
    }

    /// Runs held now (what [`MAX_RUNS`] bounds).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// The runs as (image offset of the first, SIMH word, count), in tape order: what
    /// [`Index::push`] rebuilds the index from (an object store cartridge's index object).
    pub fn run_list(&self) -> impl Iterator<Item = (u64, u32, u64)> + '_ {
        self.runs.iter().map(|r| (r.offset, r.word, r.count))
    }

    /// Whether `count` more objects with `word` at end of data would need a run past
    /// [`MAX_RUNS`].
    pub fn would_overflow(&self, word: u32) -> bool {
        self.runs.len() >= MAX_RUNS && self.runs.last().is_none_or(|r| r.word != word)
    }

    /// Appends `count` objects with SIMH word `word`, the first at image `offset` (the
    /// others follow it without gaps).
    pub fn push(&mut self, offset: u64, word: u32, count: u64) -> Result<(), Full> {
        if count == 0 {
            return Ok(());
        }
        let first = self.objects();
        let marks_before = self.filemarks();
        if let Some(last) = self.runs.last_mut() {
            if last.word == word && last.offset + last.count * last.len() == offset {
                last.count += count;
                return Ok(());
            }
        }
        if self.runs.len() >= MAX_RUNS {
            return Err(Full);
        }
        self.runs.push(Run {
            first,
            count,
            offset,
            word,
            marks_before,
        });
        Ok(())
    }

    /// The run holding object `n`.
    fn run(&self, n: u64) -> Option<&Run> {
        let i = self.runs.partition_point(|r| r.first <= n).checked_sub(1)?;
        self.runs.get(i).filter(|r| n < r.end())
    }

    /// Image offset and SIMH word of object `n`, or None at or past end of data.
    pub fn entry(&self, n: u64) -> Option<(u64, u32)> {
        let r = self.run(n)?;
        Some((r.offset + (n - r.first) * r.len(), r.word))
    }

    /// Filemarks before object `n`: the logical file identifier at `n`.
    pub fn filemarks_before(&self, n: u64) -> u64 {
        match self.run(n) {
            Some(r) if r.is_filemark() => r.marks_before + (n - r.first),
            Some(r) => r.marks_before,
            None => self.filemarks(),
        }
    }

    /// The object number of the `k`-th filemark (0-based).
    pub fn filemark(&self, k: u64) -> Option<u64> {
        let i = self
            .runs
            .partition_point(|r| r.marks_before <= k)
            .checked_sub(1)?;
        // The last run with no more than k filemarks before it holds the k-th, if any run
        // does: a data run there can only be the last run (the next one would have as
        // many filemarks before it).
        self.runs
            .get(i)
            .filter(|r| r.is_filemark() && k < r.marks_before + r.count)
            .map(|r| r.first + (k - r.marks_before))
    }

    /// Drops object `n` and every object after it.
    pub fn truncate(&mut self, n: u64) {
        let keep = self.runs.partition_point(|r| r.first < n);
        self.runs.truncate(keep);
        if let Some(last) = self.runs.last_mut() {
            last.count = last.count.min(n - last.first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same answers as a plain per-object list, written out here.
    fn model(objects: &[(u64, u32)]) -> impl Fn(&Index) {
        let objects = objects.to_vec();
        move |ix: &Index| {
            assert_eq!(ix.objects(), objects.len() as u64);
            let marks: Vec<u64> = (0..objects.len() as u64)
                .filter(|&i| objects[i as usize].1 == TAPE_MARK)
                .collect();
            assert_eq!(ix.filemarks(), marks.len() as u64);
            for (i, &(offset, word)) in objects.iter().enumerate() {
                let n = i as u64;
                assert_eq!(ix.entry(n), Some((offset, word)), "object {n}");
                assert_eq!(
                    ix.filemarks_before(n),
                    marks.iter().filter(|&&m| m < n).count() as u64,
                    "filemarks before {n}"
                );
            }
            assert_eq!(ix.entry(objects.len() as u64), None);
            assert_eq!(
                ix.filemarks_before(objects.len() as u64),
                marks.len() as u64
            );
            for (k, &m) in marks.iter().enumerate() {
                assert_eq!(ix.filemark(k as u64), Some(m), "filemark {k}");
            }
            assert_eq!(ix.filemark(marks.len() as u64), None);
        }
    }

    #[test]
    fn runs_answer_like_a_list_of_objects() {
        let mut ix = Index::default();
        let mut list = Vec::new();
        let mut at = 0u64;
        let mut add = |ix: &mut Index, list: &mut Vec<(u64, u32)>, word: u32, count: u64| {
            ix.push(at, word, count).unwrap();
            for _ in 0..count {
                list.push((at, word));
                at += image_len(word);
            }
        };
        add(&mut ix, &mut list, 512, 3);
        add(&mut ix, &mut list, 512, 2); // joins the run
        add(&mut ix, &mut list, 101, 1); // odd: padded
        add(&mut ix, &mut list, TAPE_MARK, 1);
        add(&mut ix, &mut list, TAPE_MARK, 2);
        add(&mut ix, &mut list, 0x8000_0010, 1); // a bad record
        add(&mut ix, &mut list, 512, 4);
        add(&mut ix, &mut list, TAPE_MARK, 1);
        assert_eq!(ix.runs(), 6);
        model(&list)(&ix);
        for n in [13, 12, 9, 6, 5, 3, 0] {
            ix.truncate(n);
            list.truncate(n as usize);
            model(&list)(&ix);
        }
    }

    #[test]
    fn a_million_filemarks_are_one_run() {
        let mut ix = Index::default();
        ix.push(0, 1000, 1).unwrap();
        ix.push(1008, TAPE_MARK, 0xff_ffff).unwrap();
        assert_eq!(ix.runs(), 2);
        assert_eq!(ix.objects(), 0x100_0000);
        assert_eq!(ix.filemark(0xff_fffe), Some(0xff_ffff));
        assert_eq!(ix.entry(0xff_ffff), Some((1008 + 0xff_fffe * 4, TAPE_MARK)));
        assert_eq!(ix.filemarks_before(500), 499);
    }

    #[test]
    fn the_index_is_bounded() {
        let mut ix = Index::default();
        let mut at = 0;
        for i in 0..MAX_RUNS as u32 {
            let word = 2 + (i % 2);
            ix.push(at, word, 1).unwrap();
            at += image_len(word);
        }
        let next = 2 + (MAX_RUNS as u32 % 2);
        assert!(ix.would_overflow(next));
        assert_eq!(ix.push(at, next, 1), Err(Full));
        // The same length as the last run still fits: it joins the run.
        let last = 2 + ((MAX_RUNS as u32 - 1) % 2);
        assert!(!ix.would_overflow(last));
        assert_eq!(ix.push(at, last, 1), Ok(()));
    }
}
