//! iSCSI PDU framing (RFC 7143 11.2): the 48-byte Basic Header Segment, Additional Header
//! Segments, optional header digest, the data segment padded to 4 bytes, and optional data
//! digest (CRC32C, RFC 7143 13.1 / RFC 3385). Pure: bytes in, bytes out; decoding never
//! panics and never allocates more than the caller's data segment limit.
//!
//! The BHS is kept as its 48 bytes with named accessors for each field (11.2.1 and the
//! per-opcode layouts of 11.3-11.18), rather than one struct per opcode: every opcode
//! shares the framing fields, and the target copies most fields from request to response.

use std::fmt;

/// Length of the Basic Header Segment.
pub const BHS_LEN: usize = 48;

/// Opcodes (RFC 7143 11.2.1.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Opcode(pub u8);

impl Opcode {
    pub const NOP_OUT: Self = Self(0x00);
    pub const SCSI_COMMAND: Self = Self(0x01);
    pub const TASK_MANAGEMENT_REQUEST: Self = Self(0x02);
    pub const LOGIN_REQUEST: Self = Self(0x03);
    pub const TEXT_REQUEST: Self = Self(0x04);
    pub const DATA_OUT: Self = Self(0x05);
    pub const LOGOUT_REQUEST: Self = Self(0x06);
    pub const SNACK_REQUEST: Self = Self(0x10);
    pub const NOP_IN: Self = Self(0x20);
    pub const SCSI_RESPONSE: Self = Self(0x21);
    pub const TASK_MANAGEMENT_RESPONSE: Self = Self(0x22);
    pub const LOGIN_RESPONSE: Self = Self(0x23);
    pub const TEXT_RESPONSE: Self = Self(0x24);
    pub const DATA_IN: Self = Self(0x25);
    pub const LOGOUT_RESPONSE: Self = Self(0x26);
    pub const R2T: Self = Self(0x31);
    pub const ASYNC_MESSAGE: Self = Self(0x32);
    pub const REJECT: Self = Self(0x3f);
}

impl fmt::Debug for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Opcode({:#04x})", self.0)
    }
}

/// Reject reasons (RFC 7143 11.17.1).
pub mod reject {
    pub const DATA_DIGEST_ERROR: u8 = 0x02;
    pub const SNACK_REJECT: u8 = 0x03;
    pub const PROTOCOL_ERROR: u8 = 0x04;
    pub const COMMAND_NOT_SUPPORTED: u8 = 0x05;
    pub const IMMEDIATE_COMMAND_REJECT: u8 = 0x06;
    pub const TASK_IN_PROGRESS: u8 = 0x07;
    pub const INVALID_DATA_ACK: u8 = 0x08;
    pub const INVALID_PDU_FIELD: u8 = 0x09;
    pub const OUT_OF_RESOURCES: u8 = 0x0a;
    pub const NEGOTIATION_RESET: u8 = 0x0b;
    pub const WAITING_FOR_LOGOUT: u8 = 0x0c;
}

/// The 48-byte Basic Header Segment with field accessors (offsets from RFC 7143 11.2.1
/// and the per-opcode sections). Setters take the same names with `set_`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bhs(pub [u8; BHS_LEN]);

macro_rules! field_u32 {
    ($($get:ident / $set:ident @ $off:expr;)*) => {$(
        pub fn $get(&self) -> u32 {
            self.u32_at($off)
        }
        pub fn $set(&mut self, v: u32) -> &mut Self {
            self.put_u32_at($off, v);
            self
        }
    )*};
}

impl Bhs {
    /// A zeroed header with `opcode`.
    pub fn new(opcode: Opcode) -> Self {
        let mut b = [0u8; BHS_LEN];
        b[0] = opcode.0 & 0x3f;
        Self(b)
    }

    pub fn opcode(&self) -> Opcode {
        Opcode(self.0[0] & 0x3f)
    }

    /// The I bit: an immediate request (11.2.1.1).
    pub fn immediate(&self) -> bool {
        self.0[0] & 0x40 != 0
    }

    pub fn set_immediate(&mut self, v: bool) -> &mut Self {
        self.0[0] = (self.0[0] & !0x40) | (u8::from(v) << 6);
        self
    }

    /// Byte 1: the F bit and opcode-specific flags.
    pub fn flags(&self) -> u8 {
        self.0[1]
    }

    pub fn set_flags(&mut self, v: u8) -> &mut Self {
        self.0[1] = v;
        self
    }

    /// The F (final) bit.
    pub fn final_bit(&self) -> bool {
        self.0[1] & 0x80 != 0
    }

    /// Bytes 2 and 3 (response, status, version, reason... per opcode).
    pub fn byte(&self, i: usize) -> u8 {
        self.0.get(i).copied().unwrap_or(0)
    }

    pub fn set_byte(&mut self, i: usize, v: u8) -> &mut Self {
        if let Some(b) = self.0.get_mut(i) {
            *b = v;
        }
        self
    }

    /// TotalAHSLength in bytes (the field counts 4-byte words).
    pub fn total_ahs_len(&self) -> usize {
        usize::from(self.0[4]) * 4
    }

    pub fn data_segment_len(&self) -> usize {
        (usize::from(self.0[5]) << 16) | (usize::from(self.0[6]) << 8) | usize::from(self.0[7])
    }

    fn set_data_segment_len(&mut self, n: usize) {
        self.0[5] = (n >> 16) as u8;
        self.0[6] = (n >> 8) as u8;
        self.0[7] = n as u8;
    }

    /// Bytes 8-15: LUN (SCSI Command, Data, TMF, NOP, R2T) or ISID+TSIH (Login, Logout).
    pub fn lun(&self) -> [u8; 8] {
        let mut l = [0u8; 8];
        l.copy_from_slice(&self.0[8..16]);
        l
    }

    pub fn set_lun(&mut self, lun: [u8; 8]) -> &mut Self {
        self.0[8..16].copy_from_slice(&lun);
        self
    }

    /// Login/Logout: ISID (6 bytes) at 8.
    pub fn isid(&self) -> [u8; 6] {
        let mut i = [0u8; 6];
        i.copy_from_slice(&self.0[8..14]);
        i
    }

    pub fn set_isid(&mut self, isid: [u8; 6]) -> &mut Self {
        self.0[8..14].copy_from_slice(&isid);
        self
    }

    /// Login: TSIH at 14.
    pub fn tsih(&self) -> u16 {
        u16::from_be_bytes([self.0[14], self.0[15]])
    }

    pub fn set_tsih(&mut self, v: u16) -> &mut Self {
        self.0[14..16].copy_from_slice(&v.to_be_bytes());
        self
    }

    /// Login/Logout request: CID at 20.
    pub fn cid(&self) -> u16 {
        u16::from_be_bytes([self.0[20], self.0[21]])
    }

    pub fn set_cid(&mut self, v: u16) -> &mut Self {
        self.0[20..22].copy_from_slice(&v.to_be_bytes());
        self
    }

    fn u32_at(&self, off: usize) -> u32 {
        let mut w = [0u8; 4];
        if let Some(s) = self.0.get(off..off + 4) {
            w.copy_from_slice(s);
        }
        u32::from_be_bytes(w)
    }

    fn put_u32_at(&mut self, off: usize, v: u32) {
        if let Some(s) = self.0.get_mut(off..off + 4) {
            s.copy_from_slice(&v.to_be_bytes());
        }
    }

    field_u32! {
        itt / set_itt @ 16;
        // Requests
        ttt / set_ttt @ 20;
        cmd_sn / set_cmd_sn @ 24;
        exp_stat_sn / set_exp_stat_sn @ 28;
        // SCSI Command: Expected Data Transfer Length
        expected_data_transfer_len / set_expected_data_transfer_len @ 20;
        // TMF request: Referenced Task Tag, RefCmdSN
        referenced_task_tag / set_referenced_task_tag @ 20;
        ref_cmd_sn / set_ref_cmd_sn @ 32;
        // Responses
        stat_sn / set_stat_sn @ 24;
        exp_cmd_sn / set_exp_cmd_sn @ 28;
        max_cmd_sn / set_max_cmd_sn @ 32;
        // Data-In/Out, R2T
        data_sn / set_data_sn @ 36;
        buffer_offset / set_buffer_offset @ 40;
        desired_data_transfer_len / set_desired_data_transfer_len @ 44;
        // SCSI Response: residual count; Data-In: residual count
        residual_count / set_residual_count @ 44;
        exp_data_sn / set_exp_data_sn @ 36;
        bidi_residual_count / set_bidi_residual_count @ 40;
    }

    /// SCSI Command: the CDB (bytes 32-47).
    pub fn cdb(&self) -> &[u8] {
        &self.0[32..48]
    }

    pub fn set_cdb(&mut self, cdb: &[u8]) -> &mut Self {
        let n = cdb.len().min(16);
        self.0[32..48].fill(0);
        self.0[32..32 + n].copy_from_slice(&cdb[..n]);
        self
    }
}

impl fmt::Debug for Bhs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bhs({:?}, ", self.opcode())?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Whether header and data digests are in use on a connection (negotiated at login).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    pub header: bool,
    pub data: bool,
}

/// One PDU: header, AHS bytes (whole 4-byte words) and the data segment (unpadded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub bhs: Bhs,
    pub ahs: Vec<u8>,
    pub data: Vec<u8>,
}

/// Why bytes are not a PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PduError {
    /// More bytes are needed: at least this many in total.
    #[error("truncated PDU: {0} bytes needed")]
    Truncated(usize),
    /// DataSegmentLength exceeds what this side declared it can receive.
    #[error("data segment of {len} bytes exceeds the limit of {limit}")]
    DataSegmentTooLong { len: usize, limit: usize },
    #[error("header digest mismatch")]
    HeaderDigest,
    #[error("data digest mismatch")]
    DataDigest,
}

impl Pdu {
    pub fn new(bhs: Bhs) -> Self {
        Self {
            bhs,
            ahs: Vec::new(),
            data: Vec::new(),
        }
    }

    pub fn with_data(bhs: Bhs, data: Vec<u8>) -> Self {
        Self {
            bhs,
            ahs: Vec::new(),
            data,
        }
    }

    /// Encodes with the length fields set from `ahs` and `data` (AHS is padded to a word,
    /// data to 4 bytes; at most 16 MiB - 1 bytes of data are sent).
    pub fn encode(&self, digests: Digests) -> Vec<u8> {
        let mut bhs = self.bhs;
        let ahs_len = self.ahs.len().next_multiple_of(4).min(255 * 4);
        bhs.0[4] = (ahs_len / 4) as u8;
        let data = self.data.get(..0xff_ffff).unwrap_or(&self.data);
        bhs.set_data_segment_len(data.len());
        let mut out = Vec::with_capacity(BHS_LEN + ahs_len + data.len() + 12);
        out.extend_from_slice(&bhs.0);
        out.extend_from_slice(self.ahs.get(..ahs_len).unwrap_or(&self.ahs));
        out.resize(BHS_LEN + ahs_len, 0);
        if digests.header {
            let d = crc32c(&out);
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(data);
        let (tail, tail_len) = data_tail(data, digests.data);
        out.extend_from_slice(tail.get(..tail_len).unwrap_or_default());
        out
    }

    /// The total length of the PDU whose BHS is `bhs`, or an error if its data segment is
    /// over `max_data`. Lets a reader fetch the rest with one read.
    pub fn wire_len(bhs: &Bhs, digests: Digests, max_data: usize) -> Result<usize, PduError> {
        let len = bhs.data_segment_len();
        if len > max_data {
            return Err(PduError::DataSegmentTooLong {
                len,
                limit: max_data,
            });
        }
        let mut n = BHS_LEN + bhs.total_ahs_len();
        if digests.header {
            n += 4;
        }
        if len > 0 {
            n += len.next_multiple_of(4);
            if digests.data {
                n += 4;
            }
        }
        Ok(n)
    }

    /// Decodes one PDU from the start of `buf`; returns it and the bytes it used.
    pub fn decode(
        buf: &[u8],
        digests: Digests,
        max_data: usize,
    ) -> Result<(Self, usize), PduError> {
        let head: [u8; BHS_LEN] = buf
            .get(..BHS_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(PduError::Truncated(BHS_LEN))?;
        let bhs = Bhs(head);
        let total = Self::wire_len(&bhs, digests, max_data)?;
        let buf = buf.get(..total).ok_or(PduError::Truncated(total))?;
        let ahs_end = BHS_LEN + bhs.total_ahs_len();
        let ahs = buf.get(BHS_LEN..ahs_end).unwrap_or_default().to_vec();
        let mut at = ahs_end;
        if digests.header {
            let d = buf.get(at..at + 4).unwrap_or_default();
            if d != crc32c(buf.get(..at).unwrap_or_default()).to_le_bytes() {
                return Err(PduError::HeaderDigest);
            }
            at += 4;
        }
        let len = bhs.data_segment_len();
        let mut data = Vec::new();
        if len > 0 {
            let padded = len.next_multiple_of(4);
            let seg = buf.get(at..at + padded).unwrap_or_default();
            if digests.data {
                let d = buf.get(at + padded..at + padded + 4).unwrap_or_default();
                if d != crc32c(seg).to_le_bytes() {
                    return Err(PduError::DataDigest);
                }
            }
            data = seg.get(..len).unwrap_or_default().to_vec();
        }
        Ok((Self { bhs, ahs, data }, total))
    }
}

/// The bytes around a data segment that is sent from where it lies (one vectored write of
/// `head`, the data, `tail`) instead of being copied into an encoded PDU: the BHS with its
/// length fields set (no AHS), the header digest, and after the data its padding and data
/// digest. `head + data + tail` is exactly what [`Pdu::encode`] gives for the same PDU.
#[derive(Clone, Copy, Debug)]
pub struct Framing {
    head: [u8; BHS_LEN + 4],
    head_len: usize,
    tail: [u8; 7],
    tail_len: usize,
}

impl Framing {
    /// Framing for `bhs` carrying `data` (at most 16 MiB - 1 bytes: the caller splits).
    pub fn new(bhs: &Bhs, data: &[u8], digests: Digests) -> Self {
        let mut bhs = *bhs;
        bhs.0[4] = 0;
        bhs.set_data_segment_len(data.len().min(0xff_ffff));
        let mut head = [0u8; BHS_LEN + 4];
        head[..BHS_LEN].copy_from_slice(&bhs.0);
        let mut head_len = BHS_LEN;
        if digests.header {
            head[BHS_LEN..].copy_from_slice(&crc32c(&bhs.0).to_le_bytes());
            head_len += 4;
        }
        let (tail, tail_len) = data_tail(data, digests.data);
        Self {
            head,
            head_len,
            tail,
            tail_len,
        }
    }

    /// The BHS and header digest.
    pub fn head(&self) -> &[u8] {
        &self.head[..self.head_len]
    }

    /// The padding and data digest.
    pub fn tail(&self) -> &[u8] {
        &self.tail[..self.tail_len]
    }
}

/// CRC32C (Castagnoli, reflected polynomial 82F63B78h) as iSCSI digests use it (RFC 7143
/// 13.1; sent least significant byte first, i.e. little-endian on the wire). The crc32c
/// crate uses the CPU's CRC32 instruction (SSE 4.2, ARMv8) where there is one.
pub fn crc32c(bytes: &[u8]) -> u32 {
    ::crc32c::crc32c(bytes)
}

/// What follows a data segment on the wire: its padding to 4 bytes and, with `digest`, the
/// CRC32C of data and padding (nothing at all for an empty segment); (bytes, length).
fn data_tail(data: &[u8], digest: bool) -> ([u8; 7], usize) {
    let mut tail = [0u8; 7];
    let pad = data.len().next_multiple_of(4) - data.len();
    let mut len = pad;
    if digest && !data.is_empty() {
        let crc = ::crc32c::crc32c_append(::crc32c::crc32c(data), &[0u8; 3][..pad]);
        tail[pad..pad + 4].copy_from_slice(&crc.to_le_bytes());
        len += 4;
    }
    (tail, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BOTH: Digests = Digests {
        header: true,
        data: true,
    };

    #[test]
    fn crc32c_check_values() {
        // RFC 3720 B.4 test vectors and the standard check value.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&inc), 0x46dd_794e);
    }

    #[test]
    fn fields_land_at_rfc_offsets() {
        let mut b = Bhs::new(Opcode::SCSI_COMMAND);
        b.set_immediate(true)
            .set_flags(0xc1)
            .set_lun([0, 1, 0, 0, 0, 0, 0, 0])
            .set_itt(0x11223344)
            .set_expected_data_transfer_len(512)
            .set_cmd_sn(7)
            .set_exp_stat_sn(9)
            .set_cdb(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(b.0[0], 0x41);
        assert_eq!(b.0[9], 1);
        assert_eq!(b.0[16..20], [0x11, 0x22, 0x33, 0x44]);
        assert_eq!(b.0[20..24], [0, 0, 2, 0]);
        assert_eq!(b.0[27], 7);
        assert_eq!(b.0[31], 9);
        assert_eq!(b.0[32], 0x28);
        assert!(b.immediate());
        assert_eq!(b.opcode(), Opcode::SCSI_COMMAND);
    }

    #[test]
    fn data_is_padded_and_digested() {
        let p = Pdu::with_data(Bhs::new(Opcode::NOP_IN), vec![1, 2, 3, 4, 5]);
        let plain = p.encode(Digests::default());
        assert_eq!(plain.len(), 48 + 8);
        assert_eq!(plain[5..8], [0, 0, 5]);
        assert_eq!(plain[53..56], [0, 0, 0]);
        let dig = p.encode(BOTH);
        assert_eq!(dig.len(), 48 + 4 + 8 + 4);
        let (q, used) = Pdu::decode(&dig, BOTH, 8192).unwrap();
        assert_eq!((q.data.as_slice(), used), (&p.data[..], dig.len()));
        assert_eq!(q.encode(BOTH), dig);
        // A flipped data bit or header bit is caught.
        let mut bad = dig.clone();
        bad[53] ^= 1;
        assert_eq!(Pdu::decode(&bad, BOTH, 8192), Err(PduError::DataDigest));
        let mut bad = dig;
        bad[20] ^= 1;
        assert_eq!(Pdu::decode(&bad, BOTH, 8192), Err(PduError::HeaderDigest));
    }

    #[test]
    fn truncated_and_oversized() {
        let p = Pdu::with_data(Bhs::new(Opcode::NOP_OUT), vec![9; 100]);
        let bytes = p.encode(Digests::default());
        assert_eq!(
            Pdu::decode(&bytes[..47], Digests::default(), 8192),
            Err(PduError::Truncated(48))
        );
        assert_eq!(
            Pdu::decode(&bytes[..100], Digests::default(), 8192),
            Err(PduError::Truncated(148))
        );
        assert_eq!(
            Pdu::decode(&bytes, Digests::default(), 99),
            Err(PduError::DataSegmentTooLong {
                len: 100,
                limit: 99
            })
        );
    }

    #[test]
    fn ahs_round_trips() {
        let mut p = Pdu::new(Bhs::new(Opcode::SCSI_COMMAND));
        p.ahs = vec![0, 5, 1, 0, 1, 2, 3, 4];
        let bytes = p.encode(BOTH);
        assert_eq!(bytes[4], 2);
        let q = Pdu::decode(&bytes, BOTH, 0).unwrap().0;
        assert_eq!(q.ahs, p.ahs);
        assert_eq!(q.encode(BOTH), bytes);
    }

    proptest! {
        #[test]
        fn round_trip(
            head in proptest::collection::vec(any::<u8>(), BHS_LEN),
            ahs_words in 0usize..4,
            data in proptest::collection::vec(any::<u8>(), 0..300),
            hd in any::<bool>(),
            dd in any::<bool>(),
        ) {
            let mut bhs = Bhs(head.try_into().unwrap());
            bhs.0[4] = 0;
            bhs.set_data_segment_len(0);
            let p = Pdu { bhs, ahs: vec![0xa5; ahs_words * 4], data };
            let d = Digests { header: hd, data: dd };
            let bytes = p.encode(d);
            let (q, used) = Pdu::decode(&bytes, d, 300).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(q.encode(d), bytes);
            prop_assert_eq!(q.ahs.len(), p.ahs.len());
            prop_assert_eq!(q.data, p.data);
        }

        #[test]
        fn framing_around_data_equals_encode(
            head in proptest::collection::vec(any::<u8>(), BHS_LEN),
            data in proptest::collection::vec(any::<u8>(), 0..300),
            hd in any::<bool>(),
            dd in any::<bool>(),
        ) {
            let bhs = Bhs(head.try_into().unwrap());
            let d = Digests { header: hd, data: dd };
            let f = Framing::new(&bhs, &data, d);
            let mut sent = f.head().to_vec();
            sent.extend_from_slice(&data);
            sent.extend_from_slice(f.tail());
            let mut p = Pdu::with_data(bhs, data);
            p.bhs.0[4] = 0;
            prop_assert_eq!(sent, p.encode(d));
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400),
                                 hd in any::<bool>(), dd in any::<bool>()) {
            let _ = Pdu::decode(&bytes, Digests { header: hd, data: dd }, 256);
        }
    }
}
