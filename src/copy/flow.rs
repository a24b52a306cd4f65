//! The destination side of a segment's transfer: where its data goes ([`Sink`]: blocks,
//! stream transfers, or nowhere), the [`Flow`] that turns data in into whole destination
//! units out (leftover destination data pending, held data kept, a [`Tap`] fed), and what
//! reached the destination ([`Moved`]). Below both the segment runner (`segment`) and the
//! engine that reads for it (`engine`), which push into a `Flow`: neither imports the other
//! for it.

use super::io::{self, Endpoint, Failure, StreamUnit};

use super::CHUNK;

/// Where a segment's destination data goes.
pub enum Sink<'a> {
    /// Consecutive blocks from `lba`.
    Blocks { endpoint: &'a Endpoint, lba: u64 },
    /// Stream transfers of one unit each.
    Stream {
        endpoint: &'a Endpoint,
        unit: StreamUnit,
        /// Sees each byte that lands, in order (the list's [`super::run::Progress::tap`]).
        tap: Option<&'a Tap>,
    },
    /// Dropped (06h/0Fh).
    Discard,
}

/// A copy of every byte a list writes to its stream destinations (a tape), in the order
/// the records land: what reached the medium and nothing else (at end of medium, the bytes
/// of the records before the failing one, and of that one where the device says it was
/// written). NDMP computes its image digest from it, so the disk is read once.
#[derive(Clone)]
pub struct Tap(std::sync::Arc<TapFn>);

type TapFn = dyn Fn(&[u8]) + Send + Sync;

impl Tap {
    pub fn new(f: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }

    /// Hands over the first `landed` bytes of `data` (the slices in order).
    fn feed(&self, data: &[&[u8]], mut landed: u64) {
        for d in data {
            if landed == 0 {
                break;
            }
            let n = d.len().min(usize::try_from(landed).unwrap_or(usize::MAX));
            (self.0)(&d[..n]);
            landed -= n as u64;
        }
    }
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

impl Sink<'_> {
    /// Bytes in one destination write unit (a disk block, a stream transfer).
    pub(super) fn unit(&self) -> usize {
        match self {
            Self::Blocks { endpoint, .. } => endpoint.block_length as usize,
            Self::Stream { unit, .. } => unit.bytes(),
            Self::Discard => 1,
        }
    }

    /// Writes `data` (each slice whole units). On failure, returns how many of its bytes
    /// reached the medium before (or, at tape early warning, including) the failing command.
    pub(super) fn write(&mut self, data: &[&[u8]]) -> Result<(), (Failure, u64)> {
        let mut done = 0u64;
        match self {
            Self::Blocks { endpoint, lba } => {
                for chunk in data.iter().flat_map(|d| d.chunks(CHUNK)) {
                    io::write_blocks(endpoint, *lba, chunk).map_err(|f| (f, done))?;
                    *lba += (chunk.len() / endpoint.block_length as usize) as u64;
                    done += chunk.len() as u64;
                }
                Ok(())
            }
            Self::Stream {
                endpoint,
                unit,
                tap,
            } => {
                let result = io::write_stream(endpoint, *unit, data);
                if let Some(tap) = tap {
                    tap.feed(
                        data,
                        result.as_ref().err().map_or(u64::MAX, |(_, done)| *done),
                    );
                }
                result
            }
            Self::Discard => Ok(()),
        }
    }
}

/// What happened to the destination in a segment, for RECEIVE COPY RESULTS and the residue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Bytes written to the destination (or discarded/held) by this segment.
    pub written: u64,
    /// Bytes the segment would have written had every command succeeded.
    pub expected: u64,
}

/// The destination side of a transfer: data in, whole units out.
pub(super) struct Flow<'s, 'a> {
    pub(super) sink: &'s mut Sink<'a>,
    /// Destination data not yet a whole unit.
    pub(super) pending: Vec<u8>,
    pub(super) moved: Moved,
    pub(super) out_unit: usize,
    pub(super) hold: Option<&'s mut Held>,
}

impl Flow<'_, '_> {
    /// Appends processed data (the slices in order) and writes every whole unit: straight
    /// from `data` when nothing is pending and each slice is whole units (no copy on the
    /// fast path), else through the pending buffer.
    pub(super) fn push(&mut self, data: &[&[u8]]) -> Result<(), Failure> {
        if let Some(h) = self.hold.as_deref_mut() {
            for d in data {
                h.keep(d);
            }
        }
        let out_unit = self.out_unit;
        let result = if self.pending.is_empty() && data.iter().all(|d| d.len() % out_unit == 0) {
            let n: usize = data.iter().map(|d| d.len()).sum();
            self.sink.write(data).map(|()| n as u64)
        } else {
            for d in data {
                self.pending.extend_from_slice(d);
            }
            let whole = self.pending.len() / self.out_unit * self.out_unit;
            let r = self
                .sink
                .write(&[&self.pending[..whole]])
                .map(|()| whole as u64);
            if r.is_ok() {
                self.pending.drain(..whole);
            }
            r
        };
        match result {
            Ok(n) => {
                self.moved.written += n;
                Ok(())
            }
            Err((f, done)) => {
                self.moved.written += done;
                Err(f)
            }
        }
    }
}

impl Flow<'_, '_> {
    /// [`Flow::push`] of `len` bytes of `source` from `lba`, copied to the destination in
    /// the kernel ([`io::copy_to_stream`]) when it all goes straight to a stream device's
    /// records: nothing pending, nothing held or tapped (those need the bytes), whole
    /// transfers. `None`: not taken, nothing done.
    pub(super) fn push_from_file(
        &mut self,
        source: &Endpoint,
        lba: u64,
        len: usize,
    ) -> Option<Result<(), Failure>> {
        let Sink::Stream {
            endpoint,
            unit,
            tap: None,
        } = &*self.sink
        else {
            return None;
        };
        if self.hold.is_some() || !self.pending.is_empty() || !len.is_multiple_of(self.out_unit) {
            return None;
        }
        let result = io::copy_to_stream(source, lba, len, endpoint, *unit)?;
        Some(match result {
            Ok(()) => {
                self.moved.written += len as u64;
                Ok(())
            }
            Err((f, done)) => {
                self.moved.written += done;
                Err(f)
            }
        })
    }
}

/// Data held for RECEIVE DATA (segments 0Bh-0Fh), bounded by HELD DATA LIMIT.
#[derive(Debug, Default)]
pub struct Held {
    pub data: Vec<u8>,
    pub limit: usize,
    /// Some held data had to be discarded (HDD in COPY STATUS).
    pub discarded: bool,
}

impl Held {
    pub(super) fn keep(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.data.len());
        if bytes.len() > room {
            self.discarded = true;
        }
        self.data.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

#[cfg(test)]
mod tests {
    use super::Tap;

    /// A tap is a closure: its Debug form (in a `Sink`'s) names it and nothing of it.
    #[test]
    fn a_tap_debugs_as_its_name() {
        assert_eq!(format!("{:?}", Tap::new(|_| {})), "Tap");
    }
}
