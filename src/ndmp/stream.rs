//! The data connection between a DATA and a MOVER: a TCP socket (three-way, or a DMA's
//! own agent), or, when both are this session's (ADDR_LOCAL), an in-process pipe of owned
//! buffers: no socket and no copy beyond handing the buffer over.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// Buffers in flight on a local pipe.
const LOCAL_DEPTH: usize = 8;

/// One end of a data connection.
pub enum Stream {
    Tcp(TcpStream),
    Local(LocalEnd),
}

pub struct LocalEnd {
    tx: Option<SyncSender<Vec<u8>>>,
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    pos: usize,
    /// Set when the connection is aborted: a blocked read returns an error.
    aborted: Arc<AtomicBool>,
}

/// Two connected local ends.
pub fn local_pair() -> (Stream, Stream, Arc<AtomicBool>) {
    let (tx_a, rx_b) = sync_channel(LOCAL_DEPTH);
    let (tx_b, rx_a) = sync_channel(LOCAL_DEPTH);
    let aborted = Arc::new(AtomicBool::new(false));
    let end = |tx, rx| {
        Stream::Local(LocalEnd {
            tx: Some(tx),
            rx,
            pending: Vec::new(),
            pos: 0,
            aborted: aborted.clone(),
        })
    };
    (end(tx_a, rx_a), end(tx_b, rx_b), aborted)
}

/// What aborts a connection from another thread.
#[derive(Clone)]
pub enum AbortHandle {
    Tcp(Arc<TcpStream>),
    Local(Arc<AtomicBool>),
}

impl AbortHandle {
    pub fn abort(&self) {
        match self {
            Self::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Self::Local(flag) => flag.store(true, Ordering::Relaxed),
        }
    }
}

impl Stream {
    pub fn abort_handle(&self) -> io::Result<AbortHandle> {
        Ok(match self {
            Self::Tcp(s) => AbortHandle::Tcp(Arc::new(s.try_clone()?)),
            Self::Local(l) => AbortHandle::Local(l.aborted.clone()),
        })
    }

    /// Sends a whole buffer (a local pipe takes ownership: no copy).
    pub fn send(&mut self, buf: Vec<u8>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.write_all(&buf),
            Self::Local(l) => match &l.tx {
                Some(tx) => tx.send(buf).map_err(|_| closed()),
                None => Err(closed()),
            },
        }
    }

    /// Ends the sending direction: the peer reads end of stream.
    pub fn finish(&mut self) {
        match self {
            Self::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Write);
            }
            Self::Local(l) => l.tx = None,
        }
    }

    /// Fills `buf` unless the stream ends first; returns the bytes read (less than
    /// `buf.len()` only at end of stream).
    pub fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "data connection closed")
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Local(l) => {
                while l.pos >= l.pending.len() {
                    if l.aborted.load(Ordering::Relaxed) {
                        return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "aborted"));
                    }
                    match l.rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(b) => {
                            l.pending = b;
                            l.pos = 0;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return Ok(0),
                    }
                }
                let n = buf.len().min(l.pending.len() - l.pos);
                buf[..n].copy_from_slice(&l.pending[l.pos..l.pos + n]);
                l.pos += n;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_pipe_moves_buffers_and_ends() {
        let (mut a, mut b, abort) = local_pair();
        a.send(vec![1, 2, 3]).unwrap();
        a.send(vec![4]).unwrap();
        a.finish();
        let mut buf = [0u8; 8];
        assert_eq!(b.fill(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], &[1, 2, 3, 4]);
        assert!(a.send(vec![5]).is_err());
        // An abort wakes a reader that would otherwise wait for data.
        b.send(vec![9]).unwrap();
        let mut one = [0u8; 1];
        assert_eq!(a.fill(&mut one).unwrap(), 1);
        AbortHandle::Local(abort).abort();
        assert_eq!(
            a.read(&mut one).unwrap_err().kind(),
            io::ErrorKind::ConnectionAborted
        );
    }
}
