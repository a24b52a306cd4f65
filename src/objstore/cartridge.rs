//! A cartridge in the object store as a tape drive's medium ([`Backing`]).
//!
//! Writes go to the gateway's write-back cache on local disk: the open piece, a file
//! under the cache directory. When it reaches the piece size (at an object boundary, so
//! no record spans two pieces) it is sealed and handed to the uploaders (multipart, parts
//! of [`Params::part_size`], several pieces at once), which delete the file once the store
//! has it. The cache is bounded: an append that would take it past
//! [`Params::cache_bytes`] waits for uploads to finish first (the drive slows to the
//! store's pace, its memory and disk stay flat).
//!
//! [`Backing::sync`] (WRITE FILEMARKS, a flush, the end of an EXTENDED COPY list) seals
//! the open piece, waits for every piece to be in the store, then writes the index with
//! `If-Match` on the version this gateway last wrote: only then is the data committed.
//! A store that fails (timeouts, 500s, gone) fails the sync — the drive reports WRITE
//! ERROR — and keeps the pieces in the cache, to be tried again at the next sync: nothing
//! acknowledged is lost, and the store holds the last committed index, whole. A 412 on
//! the index means another gateway took the cartridge: this one is fenced, every later
//! write fails.
//!
//! Reads of a piece still in the cache come from the file; others are ranged GETs of
//! [`Params::read_ahead`] bytes, with the next windows fetched ahead on threads.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{self as channel, Receiver, Sender};

use super::client::{Client, Condition, StoreError};
use super::index::{Committed, PieceRef};
use super::Shared;
use crate::device::tape::image::{Object, BAD_RECORD};
use crate::device::tape::index::Index;
use crate::device::tape::Backing;

/// How a cartridge moves its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// A piece is sealed once it holds this many bytes.
    pub piece_size: u64,
    /// Multipart part size (S3: at least 5 MiB but the last).
    pub part_size: usize,
    /// Local bytes not yet in the store, at most (roughly: one append may pass it).
    pub cache_bytes: u64,
    /// Pieces uploading at once.
    pub uploaders: usize,
    /// Bytes of one read-ahead window, and windows fetched ahead.
    pub read_ahead: usize,
    pub read_ahead_windows: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            piece_size: 64 << 20,
            part_size: 16 << 20,
            cache_bytes: 1 << 30,
            uploaders: 4,
            read_ahead: 8 << 20,
            read_ahead_windows: 4,
        }
    }
}

/// A sealed piece.
#[derive(Debug)]
struct Piece {
    key: String,
    start: u64,
    len: u64,
    /// In the cache: not yet (known to be) in the store.
    local: Option<PathBuf>,
    /// Handed to an uploader, no answer yet.
    uploading: bool,
}

/// The piece being written.
#[derive(Debug)]
struct OpenPiece {
    key: String,
    start: u64,
    len: u64,
    path: PathBuf,
    file: File,
}

struct Upload {
    key: String,
    path: PathBuf,
    len: u64,
}

/// Fetched windows: ((piece key, window number), bytes or the fetch in flight).
type Window = ((String, u64), JoinHandle<Result<Vec<u8>, StoreError>>);

/// An open object-store cartridge.
pub struct ObjectCartridge {
    shared: Arc<Shared>,
    barcode: String,
    writable: bool,
    /// Unique to this open: piece keys never collide with another writer's.
    epoch: String,
    next_seq: u64,
    index: Index,
    end: u64,
    pieces: Vec<Piece>,
    open: Option<OpenPiece>,
    committed: Committed,
    committed_etag: String,
    jobs: Option<Sender<Upload>>,
    results: Receiver<(String, Result<(), StoreError>)>,
    workers: Vec<JoinHandle<()>>,
    /// Another gateway took the cartridge: nothing more is written.
    fenced: bool,
    /// Written or cut since the last commit.
    changed: bool,
    /// Pieces a rewrite dropped: deleted from the store once an index without them is.
    dropped: Vec<String>,
    ahead: VecDeque<Window>,
    window: Option<((String, u64), Vec<u8>)>,
}

impl std::fmt::Debug for ObjectCartridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCartridge")
            .field("barcode", &self.barcode)
            .field("objects", &self.index.objects())
            .field("end", &self.end)
            .field("committed", &self.committed.end)
            .finish_non_exhaustive()
    }
}

fn other(what: String) -> io::Error {
    io::Error::other(what)
}

impl ObjectCartridge {
    /// Opens cartridge `barcode` from its committed index. Writable: this gateway must hold
    /// the lease (the caller checked), and the index is written again at once with this
    /// gateway as writer, so a gateway that still thinks it owns the cartridge can no
    /// longer commit.
    pub(super) fn open(shared: Arc<Shared>, barcode: &str, writable: bool) -> io::Result<Self> {
        let key = shared.key(barcode, "index");
        let (bytes, etag) = shared.client.get(&key)?;
        let mut committed = Committed::decode(&bytes).map_err(|e| {
            tracing::error!(%barcode, reason = %e, "cartridge index refused");
            io::Error::new(io::ErrorKind::InvalidData, format!("{key}: {e}"))
        })?;
        let mut committed_etag = etag;
        let epoch = format!("{}-{:x}", shared.gateway, super::lease::now_ms());
        if writable {
            committed.writer = shared.gateway.clone();
            committed.generation += 1;
            committed_etag = shared
                .client
                .put(&key, &committed.encode(), Condition::Match(&committed_etag))
                .map_err(io::Error::from)?;
        }
        let pieces = committed
            .pieces
            .iter()
            .map(|p| Piece {
                key: p.key.clone(),
                start: p.start,
                len: p.len,
                local: None,
                uploading: false,
            })
            .collect();
        let (jobs, job_rx) = channel::unbounded::<Upload>();
        let (done_tx, results) = channel::unbounded();
        let workers = if writable {
            (0..shared.params.uploaders.max(1))
                .map(|_| {
                    let rx = job_rx.clone();
                    let tx = done_tx.clone();
                    let client = Arc::clone(&shared.client);
                    let part = shared.params.part_size;
                    thread::spawn(move || uploader(&client, part, &rx, &tx))
                })
                .collect()
        } else {
            Vec::new()
        };
        fs::create_dir_all(shared.cache_dir.join(barcode))?;
        if writable {
            // Fenced: pieces no index names (a dead writer's) can never be committed now.
            let named: std::collections::HashSet<&str> =
                committed.pieces.iter().map(|p| p.key.as_str()).collect();
            let orphans: Vec<String> = shared
                .client
                .list(&shared.key(barcode, "p/"))
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| !named.contains(k.as_str()))
                .collect();
            collect_garbage(&shared.client, barcode, orphans);
        }
        Ok(Self {
            barcode: barcode.to_string(),
            writable,
            epoch,
            next_seq: 0,
            index: committed.index(),
            end: committed.end,
            pieces,
            open: None,
            committed,
            committed_etag,
            jobs: Some(jobs),
            results,
            workers,
            fenced: false,
            changed: false,
            dropped: Vec::new(),
            ahead: VecDeque::new(),
            window: None,
            shared,
        })
    }

    /// What is committed now.
    pub fn committed(&self) -> &Committed {
        &self.committed
    }

    /// Bytes in the cache, not yet in the store.
    pub fn cached_bytes(&self) -> u64 {
        let sealed: u64 = self
            .pieces
            .iter()
            .filter_map(|p| p.local.as_ref().map(|_| p.len))
            .sum();
        sealed + self.open.as_ref().map_or(0, |o| o.len)
    }

    fn check_writable(&self) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "cartridge opened read-only",
            ));
        }
        if self.fenced {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "cartridge taken by another gateway",
            ));
        }
        Ok(())
    }

    /// Hands the open piece to the uploaders.
    fn seal(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        if open.len == 0 {
            let _ = fs::remove_file(&open.path);
            return;
        }
        self.pieces.push(Piece {
            key: open.key,
            start: open.start,
            len: open.len,
            local: Some(open.path),
            uploading: false,
        });
        self.submit();
    }

    /// Queues every cached piece no uploader has.
    fn submit(&mut self) {
        let Some(jobs) = &self.jobs else {
            return;
        };
        for p in self.pieces.iter_mut().filter(|p| !p.uploading) {
            if let Some(path) = &p.local {
                p.uploading = jobs
                    .send(Upload {
                        key: p.key.clone(),
                        path: path.clone(),
                        len: p.len,
                    })
                    .is_ok();
            }
        }
    }

    /// Waits for one upload's answer; false when none is in flight.
    fn wait_one(&mut self) -> io::Result<bool> {
        if !self.pieces.iter().any(|p| p.uploading) {
            return Ok(false);
        }
        let (key, result) = self
            .results
            .recv()
            .map_err(|_| other("uploaders gone".into()))?;
        if let Some(p) = self.pieces.iter_mut().find(|p| p.key == key) {
            p.uploading = false;
            match result {
                Ok(()) => {
                    if let Some(path) = p.local.take() {
                        let _ = fs::remove_file(path);
                    }
                }
                Err(e) => {
                    tracing::error!(barcode = %self.barcode, piece = %key, error = %e, "piece upload failed; kept in the cache");
                    return Err(e.into());
                }
            }
        }
        Ok(true)
    }

    /// Waits for every upload in flight; the first failure, after all have answered.
    fn drain(&mut self) -> io::Result<()> {
        let mut first = None;
        loop {
            match self.wait_one() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Makes room for `more` bytes in the cache: waits for uploads while it is over.
    fn make_room(&mut self, more: u64) -> io::Result<()> {
        while self.cached_bytes() + more > self.shared.params.cache_bytes {
            if !self.wait_one()? {
                // Nothing in flight: pieces that failed go again, once.
                if self.pieces.iter().any(|p| p.local.is_some()) {
                    self.submit();
                    if self.wait_one()? {
                        continue;
                    }
                }
                break;
            }
        }
        Ok(())
    }

    /// The open piece, opened if there is none.
    fn open_piece(&mut self) -> io::Result<&mut OpenPiece> {
        if self.open.is_none() {
            let key = self.shared.key(
                &self.barcode,
                &format!("p/{}-{:08}", self.epoch, self.next_seq),
            );
            let path = self
                .shared
                .cache_dir
                .join(&self.barcode)
                .join(format!("{}-{:08}", self.epoch, self.next_seq));
            self.next_seq += 1;
            let file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            self.open = Some(OpenPiece {
                key,
                start: self.end,
                len: 0,
                path,
                file,
            });
        }
        self.open
            .as_mut()
            .ok_or_else(|| other("no open piece".into()))
    }

    /// Appends `bytes` (whole objects) to the open piece; indexes them as `count` objects
    /// of `word`.
    fn stage(&mut self, bytes: &[u8], word: u32, count: u64) -> io::Result<()> {
        self.check_writable()?;
        self.make_room(bytes.len() as u64)?;
        let start = self.end;
        let open = self.open_piece()?;
        open.file.write_all_at(bytes, open.len)?;
        open.len += bytes.len() as u64;
        let full = open.len >= self.shared.params.piece_size;
        self.index
            .push(start, word, count)
            .map_err(|_| io::Error::new(io::ErrorKind::StorageFull, "tape index full"))?;
        self.end += bytes.len() as u64;
        self.changed = true;
        if full {
            self.seal();
        }
        Ok(())
    }

    /// Writes the index of everything written so far, If-Match the last one.
    fn commit(&mut self) -> io::Result<()> {
        if !self.shared.holds(&self.barcode) {
            self.fenced = true;
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "lease lost",
            ));
        }
        let next = Committed {
            writer: self.shared.gateway.clone(),
            generation: self.committed.generation + 1,
            end: self.end,
            pieces: self
                .pieces
                .iter()
                .map(|p| PieceRef {
                    key: p.key.clone(),
                    start: p.start,
                    len: p.len,
                })
                .collect(),
            runs: self.index.run_list().collect(),
        };
        let key = self.shared.key(&self.barcode, "index");
        match self
            .shared
            .client
            .put(&key, &next.encode(), Condition::Match(&self.committed_etag))
        {
            Ok(etag) => {
                let now: std::collections::HashSet<&str> =
                    next.pieces.iter().map(|p| p.key.as_str()).collect();
                let garbage: Vec<String> = self
                    .committed
                    .pieces
                    .iter()
                    .map(|p| p.key.clone())
                    .chain(self.dropped.drain(..))
                    .filter(|k| !now.contains(k.as_str()))
                    .collect();
                collect_garbage(&self.shared.client, &self.barcode, garbage);
                self.committed = next;
                self.committed_etag = etag;
                self.changed = false;
                Ok(())
            }
            Err(StoreError::Precondition) => {
                tracing::error!(barcode = %self.barcode, "index changed by another gateway: fenced");
                self.fenced = true;
                Err(StoreError::Precondition.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `buf.len()` stream bytes from `at`, all in one piece.
    fn read_stream(&mut self, at: u64, buf: &mut [u8]) -> io::Result<()> {
        if let Some(open) = self.open.as_ref().filter(|o| at >= o.start) {
            return open.file.read_exact_at(buf, at - open.start);
        }
        let i = self
            .pieces
            .partition_point(|p| p.start <= at)
            .wrapping_sub(1);
        let p = self
            .pieces
            .get(i)
            .ok_or_else(|| other(format!("no piece holds offset {at}")))?;
        if let Some(path) = &p.local {
            return File::open(path)?.read_exact_at(buf, at - p.start);
        }
        let (key, base, len) = (p.key.clone(), p.start, p.len);
        let w = self.shared.params.read_ahead.max(1) as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = at - base + done as u64;
            let n = pos / w;
            let window = self.window_bytes(i, &key, n, len)?;
            let from = (pos - n * w) as usize;
            let take = (buf.len() - done).min(window.len().saturating_sub(from));
            if take == 0 {
                return Err(other(format!("{key}: short window at {pos}")));
            }
            buf[done..done + take].copy_from_slice(&window[from..from + take]);
            done += take;
        }
        Ok(())
    }

    /// Window `n` of piece `i`, from what was fetched ahead or fetched now; queues the
    /// windows after it.
    fn window_bytes(&mut self, i: usize, key: &str, n: u64, len: u64) -> io::Result<&[u8]> {
        let id = (key.to_string(), n);
        if self.window.as_ref().is_none_or(|(k, _)| *k != id) {
            while let Some((k, _)) = self.ahead.front() {
                if *k == id {
                    break;
                }
                self.ahead.pop_front();
            }
            let bytes = match self.ahead.pop_front() {
                Some((_, h)) => h
                    .join()
                    .map_err(|_| other("read-ahead panicked".into()))??,
                None => self
                    .fetch(key.to_string(), n, len)
                    .join()
                    .map_err(|_| other("read panicked".into()))??,
            };
            self.window = Some((id, bytes));
        }
        self.read_ahead(i, key, n);
        Ok(self.window.as_ref().map_or(&[][..], |(_, b)| b.as_slice()))
    }

    /// Starts fetching the windows after window `n` of piece `i` (into the next pieces).
    fn read_ahead(&mut self, i: usize, key: &str, n: u64) {
        let w = self.shared.params.read_ahead.max(1) as u64;
        let (mut piece, mut next) = (i, n + 1);
        let mut key = key.to_string();
        for _ in 0..self.shared.params.read_ahead_windows {
            let Some(p) = self.pieces.get(piece) else {
                return;
            };
            if next * w >= p.len {
                piece += 1;
                next = 0;
                match self.pieces.get(piece) {
                    Some(q) if q.local.is_none() => key = q.key.clone(),
                    _ => return,
                }
                continue;
            }
            let id = (key.clone(), next);
            if !self.ahead.iter().any(|(k, _)| *k == id) {
                let h = self.fetch(key.clone(), next, p.len);
                self.ahead.push_back((id, h));
            }
            next += 1;
        }
    }

    fn fetch(&self, key: String, n: u64, len: u64) -> JoinHandle<Result<Vec<u8>, StoreError>> {
        let w = self.shared.params.read_ahead.max(1) as u64;
        let client = Arc::clone(&self.shared.client);
        let start = n * w;
        let size = w.min(len.saturating_sub(start));
        thread::spawn(move || client.get_range(&key, start, size))
    }
}

/// Deletes pieces no committed index names (best effort: one left behind is never read).
fn collect_garbage(client: &Client, barcode: &str, keys: Vec<String>) {
    for key in keys {
        match client.delete(&key) {
            Ok(()) => tracing::debug!(%barcode, piece = %key, "piece deleted"),
            Err(e) => {
                tracing::warn!(%barcode, piece = %key, error = %e, "unreferenced piece not deleted")
            }
        }
    }
}

/// An uploader thread: pieces from `jobs` into the store, answers on `done`.
fn uploader(
    client: &Client,
    part: usize,
    jobs: &Receiver<Upload>,
    done: &Sender<(String, Result<(), StoreError>)>,
) {
    for job in jobs {
        let result = upload(client, part, &job);
        if done.send((job.key, result)).is_err() {
            return;
        }
    }
}

fn upload(client: &Client, part: usize, job: &Upload) -> Result<(), StoreError> {
    let file = File::open(&job.path).map_err(|e| StoreError::Bad(format!("cache: {e}")))?;
    let part = part.max(5 << 20) as u64;
    let read = |at: u64, n: u64| -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0u8; n as usize];
        file.read_exact_at(&mut buf, at)
            .map_err(|e| StoreError::Bad(format!("cache: {e}")))?;
        Ok(buf)
    };
    if job.len <= part {
        client.put(&job.key, &read(0, job.len)?, Condition::None)?;
        return Ok(());
    }
    let id = client.create_multipart(&job.key)?;
    let mut etags = Vec::new();
    let mut at = 0;
    while at < job.len {
        let n = part.min(job.len - at);
        let number =
            u16::try_from(etags.len() + 1).map_err(|_| StoreError::Bad("too many parts".into()))?;
        match read(at, n).and_then(|b| client.upload_part(&job.key, &id, number, &b)) {
            Ok(etag) => etags.push(etag),
            Err(e) => {
                client.abort_multipart(&job.key, &id);
                return Err(e);
            }
        }
        at += n;
    }
    client
        .complete_multipart(&job.key, &id, &etags)
        .inspect_err(|_| client.abort_multipart(&job.key, &id))
}

impl Drop for ObjectCartridge {
    /// Uncommitted pieces stay in the cache directory only until the cartridge closes: what
    /// was not synced is not on the tape (a drive's buffer lost at power off).
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(o) = self.open.take() {
            let _ = fs::remove_file(o.path);
        }
        for p in &self.pieces {
            if let Some(path) = &p.local {
                let _ = fs::remove_file(path);
            }
        }
    }
}

impl Backing for ObjectCartridge {
    fn objects(&self) -> u64 {
        self.index.objects()
    }
    fn object(&self, n: u64) -> Option<Object> {
        self.index.entry(n).map(|(_, word)| Object::from_word(word))
    }
    fn offset_of(&self, n: u64) -> u64 {
        self.index.entry(n).map_or(self.end, |(offset, _)| offset)
    }
    fn end_of_data(&self) -> u64 {
        self.end
    }
    fn end_of_medium_marker(&self) -> bool {
        false
    }
    fn filemarks_before(&self, n: u64) -> u64 {
        self.index.filemarks_before(n)
    }
    fn filemark(&self, k: u64) -> Option<u64> {
        self.index.filemark(k)
    }
    fn filemark_count(&self) -> u64 {
        self.index.filemarks()
    }
    fn index_full(&self, word: u32) -> bool {
        self.index.would_overflow(word)
    }

    fn read_data(&mut self, n: u64, buf: &mut [u8]) -> io::Result<()> {
        let (offset, word) = self
            .index
            .entry(n)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such object"))?;
        if buf.len() as u64 > u64::from(word & !BAD_RECORD) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "read past the end of a record",
            ));
        }
        self.read_stream(offset + 4, buf)
    }

    fn truncate(&mut self, n: u64) -> io::Result<()> {
        if n >= self.index.objects() {
            return Ok(());
        }
        self.check_writable()?;
        // Pieces wholly past the cut go: none may be uploading then.
        self.drain()?;
        let cut = self.offset_of(n);
        self.index.truncate(n);
        self.end = cut;
        self.changed = true;
        if let Some(open) = self.open.as_mut() {
            if open.start >= cut {
                let _ = fs::remove_file(&open.path);
                self.open = None;
            } else {
                open.len = cut - open.start;
                open.file.set_len(open.len)?;
            }
        }
        let dropped = &mut self.dropped;
        self.pieces.retain(|p| {
            let keep = p.start < cut;
            if !keep {
                if let Some(path) = &p.local {
                    let _ = fs::remove_file(path);
                }
                dropped.push(p.key.clone());
            }
            keep
        });
        if let Some(last) = self.pieces.last_mut() {
            last.len = last.len.min(cut - last.start);
        }
        self.window = None;
        self.ahead.clear();
        Ok(())
    }

    fn append_records(&mut self, data: &[&[u8]], record_len: usize) -> io::Result<()> {
        let word = u32::try_from(record_len)
            .ok()
            .filter(|&w| {
                w != 0 && w & BAD_RECORD == 0 && data.iter().all(|d| d.len() % record_len == 0)
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad record length"))?;
        let odd = record_len % 2 == 1;
        let framed = 8 + record_len + usize::from(odd);
        // A batch of records at a time: memory stays at about a piece's worth.
        let per_batch = (self.shared.params.part_size / framed).max(1);
        let header = word.to_le_bytes();
        let mut records = data.iter().flat_map(|d| d.chunks(record_len)).peekable();
        let mut bytes = Vec::new();
        while records.peek().is_some() {
            bytes.clear();
            let mut count = 0;
            for rec in records.by_ref().take(per_batch) {
                bytes.extend_from_slice(&header);
                bytes.extend_from_slice(rec);
                if odd {
                    bytes.push(0);
                }
                bytes.extend_from_slice(&header);
                count += 1;
            }
            self.stage(&bytes, word, count)?;
        }
        Ok(())
    }

    fn append_filemarks(&mut self, count: u64) -> io::Result<()> {
        let mut left = count;
        while left > 0 {
            let n = left.min(1 << 16);
            self.stage(&vec![0u8; (n * 4) as usize], 0, n)?;
            left -= n;
        }
        Ok(())
    }

    fn settle(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Everything written is in the store and the index says so, or an error.
    fn sync(&mut self) -> io::Result<()> {
        self.check_writable()?;
        self.seal();
        // Uploads under way answer first; those that failed (the store was away) go again.
        let _ = self.drain();
        if self.pieces.iter().any(|p| p.local.is_some()) {
            self.submit();
            self.drain()?;
        }
        if !self.changed {
            return Ok(());
        }
        self.commit()
    }

    /// A list that wrote is committed before it is acknowledged; a list that only read
    /// (or a cartridge opened read-only) commits nothing.
    fn end_list(&mut self) -> io::Result<()> {
        if self.changed {
            self.sync()
        } else {
            Ok(())
        }
    }
}
