//! The NDMP v4 message header and RPC record marking (RFC 5531 11: each record is a run of
//! fragments, each led by a 4-byte word whose top bit marks the last fragment and whose
//! low 31 bits give its length).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

use super::xdr::{DecodeError, Put, Reader};

/// Most bytes one NDMP message (header + body) may hold: a TAPE_WRITE of the largest record
/// ndmjob writes (256 KiB) fits with room to spare; anything bigger closes the connection.
pub const MAX_MESSAGE: usize = 4 << 20;

/// Bytes of the fixed message header.
pub const HEADER_LEN: usize = 24;

const LAST_FRAGMENT: u32 = 0x8000_0000;

/// One fragment header word: (last fragment, length).
pub fn fragment(word: u32) -> (bool, usize) {
    (word & LAST_FRAGMENT != 0, (word & !LAST_FRAGMENT) as usize)
}

/// `message` as one record of one fragment.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 4);
    out.put_u32(LAST_FRAGMENT | (message.len() as u32 & !LAST_FRAGMENT));
    out.extend_from_slice(message);
    out
}

/// `ndmp4_header_message_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    Request,
    Reply,
}

/// `ndmp4_header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub sequence: u32,
    pub time_stamp: u32,
    pub message_type: MessageType,
    pub message: u32,
    pub reply_sequence: u32,
    pub error: u32,
}

impl Header {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let sequence = r.u32()?;
        let time_stamp = r.u32()?;
        let at = r.offset();
        let message_type = match r.u32()? {
            0 => MessageType::Request,
            1 => MessageType::Reply,
            _ => {
                return Err(DecodeError {
                    offset: at,
                    reason: "message type neither request nor reply",
                })
            }
        };
        Ok(Self {
            sequence,
            time_stamp,
            message_type,
            message: r.u32()?,
            reply_sequence: r.u32()?,
            error: r.u32()?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.sequence);
        out.put_u32(self.time_stamp);
        out.put_u32(match self.message_type {
            MessageType::Request => 0,
            MessageType::Reply => 1,
        });
        out.put_u32(self.message);
        out.put_u32(self.reply_sequence);
        out.put_u32(self.error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_mark_golden_bytes() {
        // CONNECT_OPEN request #1 at t=0x5f5e1000, then its one-fragment record.
        let h = Header {
            sequence: 1,
            time_stamp: 0x5f5e_1000,
            message_type: MessageType::Request,
            message: 0x900,
            reply_sequence: 0,
            error: 0,
        };
        let mut b = Vec::new();
        h.encode(&mut b);
        assert_eq!(
            hex::encode(&b),
            "00000001".to_owned() + "5f5e1000" + "00000000" + "00000900" + "00000000" + "00000000"
        );
        assert_eq!(Header::decode(&mut Reader::new(&b)).unwrap(), h);
        let framed = frame(&b);
        assert_eq!(&framed[..4], &[0x80, 0, 0, 24]);
        assert_eq!(fragment(0x8000_0018), (true, 24));
        assert_eq!(fragment(0x0000_0010), (false, 16));
        assert_eq!(
            Header::decode(&mut Reader::new(&b[..20]))
                .unwrap_err()
                .reason,
            "truncated"
        );
        b[11] = 2;
        assert_eq!(
            Header::decode(&mut Reader::new(&b)).unwrap_err(),
            DecodeError {
                offset: 8,
                reason: "message type neither request nor reply"
            }
        );
    }
}
