//! One NDMP connection's wire: reading whole records (fragments reassembled, bounded by
//! [`MAX_MESSAGE`]) and sending replies and posts, each with the next sequence number.
//! Replies (from the session thread) and posts (from the MOVER and DATA threads) share the
//! socket's write half behind a lock, so messages never interleave.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::header::{fragment, frame, Header, MessageType, HEADER_LEN, MAX_MESSAGE};
use super::message::Error;

/// The sending half of a connection.
pub struct Conn {
    writer: Mutex<TcpStream>,
    sequence: AtomicU32,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            writer: Mutex::new(stream),
            sequence: AtomicU32::new(1),
        }
    }

    fn send(&self, header: Header, body: &[u8]) -> io::Result<()> {
        let mut message = Vec::with_capacity(HEADER_LEN + body.len());
        header.encode(&mut message);
        message.extend_from_slice(body);
        let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        w.write_all(&frame(&message))
    }

    fn header(
        &self,
        message_type: MessageType,
        message: u32,
        reply_to: u32,
        error: Error,
    ) -> Header {
        Header {
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed),
            time_stamp: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32),
            message_type,
            message,
            reply_sequence: reply_to,
            error: error.0,
        }
    }

    /// The reply to `request`; a header `error` other than NO_ERR goes with no body.
    pub fn reply(&self, request: &Header, error: Error, body: &[u8]) -> io::Result<()> {
        let h = self.header(MessageType::Reply, request.message, request.sequence, error);
        self.send(h, if error == Error::NO_ERR { body } else { &[] })
    }

    /// A post (NOTIFY, LOG) or a request of ours.
    pub fn post(&self, message: u32, body: &[u8]) -> io::Result<u32> {
        let h = self.header(MessageType::Request, message, 0, Error::NO_ERR);
        self.send(h, body)?;
        Ok(h.sequence)
    }

    /// Closes both directions (wakes the reader).
    pub fn shutdown(&self) {
        let w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = w.shutdown(std::net::Shutdown::Both);
    }
}

/// Reads one record. `Ok(None)`: the peer closed the connection between records. A record
/// over `MAX_MESSAGE` bytes is an error (the connection is then closed): nothing is
/// allocated beyond what has been checked.
pub fn read_record(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    loop {
        let mut word = [0u8; 4];
        match r.read_exact(&mut word) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && message.is_empty() => {
                return Ok(None)
            }
            other => other?,
        }
        let (last, len) = fragment(u32::from_be_bytes(word));
        if message.len() + len > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("record over {MAX_MESSAGE} bytes"),
            ));
        }
        let start = message.len();
        message.resize(start + len, 0);
        r.read_exact(&mut message[start..])?;
        if last {
            return Ok(Some(message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_reassemble_and_are_bounded() {
        let mut wire = vec![0, 0, 0, 2, b'a', b'b', 0x80, 0, 0, 1, b'c'];
        assert_eq!(read_record(&mut &wire[..]).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_record(&mut &[][..]).unwrap(), None);
        // Truncated inside a fragment.
        wire.truncate(9);
        assert_eq!(
            read_record(&mut &wire[..]).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // A 2 GiB fragment is refused before anything is allocated for it.
        let e = read_record(&mut &[0xff, 0xff, 0xff, 0xff][..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // Many small fragments that add up past the limit are refused too.
        let mut many = Vec::new();
        for _ in 0..=(MAX_MESSAGE / 65536) {
            many.extend_from_slice(&[0, 1, 0, 0]);
            many.extend(std::iter::repeat_n(0u8, 65536));
        }
        assert_eq!(
            read_record(&mut &many[..]).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
