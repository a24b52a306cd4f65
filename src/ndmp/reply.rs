//! NDMP v4 reply bodies and the posts (NOTIFY, LOG) a server sends, encoded; and the few
//! replies a DMA reads back, decoded. Layouts follow ndmp4.x field for field.

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

use super::message::{encode_env, Addr, Error, Pval};
use super::xdr::{DecodeError, Put, Reader};

/// What the session does after a request (the agents answer with it).
pub enum Next {
    /// Reply with this header error (NO_ERR: with this body).
    Reply(Error, Vec<u8>),
    /// No reply (CONNECT_CLOSE): close the connection.
    Close,
}

/// A reply whose body is only its error.
pub fn error_only(e: Error) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u32(e.0);
    b
}

/// `ndmp4_device_info`: a model and its devices (CONFIG_GET_TAPE_INFO, _SCSI_INFO).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub model: String,
    /// (device name, attr, capabilities)
    pub devices: Vec<(String, u32, Vec<Pval>)>,
}

pub fn device_info_reply(infos: &[DeviceInfo]) -> Vec<u8> {
    let mut b = error_only(Error::NO_ERR);
    b.put_count(infos.len());
    for i in infos {
        b.put_string(&i.model);
        b.put_count(i.devices.len());
        for (name, attr, caps) in &i.devices {
            b.put_string(name);
            b.put_u32(*attr);
            encode_env(caps, &mut b);
        }
    }
    b
}

/// `ndmp4_fs_info` (sizes in bytes; inodes unsupported for a raw disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsInfo {
    pub fs_type: String,
    pub logical_device: String,
    pub physical_device: String,
    pub total_size: u64,
    pub used_size: u64,
    pub avail_size: u64,
    pub env: Vec<Pval>,
    pub status: String,
}

/// TOTAL_INODES_UNS | USED_INODES_UNS.
const FS_INODES_UNS: u32 = 0x18;

pub fn fs_info_reply(infos: &[FsInfo]) -> Vec<u8> {
    let mut b = error_only(Error::NO_ERR);
    b.put_count(infos.len());
    for f in infos {
        b.put_u32(FS_INODES_UNS);
        b.put_string(&f.fs_type);
        b.put_string(&f.logical_device);
        b.put_string(&f.physical_device);
        b.put_u64(f.total_size);
        b.put_u64(f.used_size);
        b.put_u64(f.avail_size);
        b.put_u64(0);
        b.put_u64(0);
        encode_env(&f.env, &mut b);
        b.put_string(&f.status);
    }
    b
}

/// `ndmp4_execute_cdb_reply`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdbReply {
    pub error: u32,
    pub status: u8,
    pub dataout_len: u32,
    pub datain: Vec<u8>,
    pub ext_sense: Vec<u8>,
}

impl CdbReply {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_u32(self.error);
        b.put_u32(u32::from(self.status));
        b.put_u32(self.dataout_len);
        b.put_opaque(&self.datain);
        b.put_opaque(&self.ext_sense);
        b
    }
}

/// `ndmp4_tape_get_state_reply`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TapeState {
    pub unsupported: u32,
    pub error: u32,
    pub flags: u32,
    pub file_num: u32,
    pub soft_errors: u32,
    pub block_size: u32,
    pub blockno: u32,
    pub total_space: u64,
    pub space_remain: u64,
}

/// TAPE_GET_STATE flags and unsupported bits.
pub const TAPE_STATE_NOREWIND: u32 = 0x08;
pub const TAPE_STATE_WR_PROT: u32 = 0x10;
pub const TAPE_STATE_SOFT_ERRORS_UNS: u32 = 0x02;
pub const TAPE_STATE_TOTAL_SPACE_UNS: u32 = 0x10;
pub const TAPE_STATE_SPACE_REMAIN_UNS: u32 = 0x20;

impl TapeState {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [
            self.unsupported,
            self.error,
            self.flags,
            self.file_num,
            self.soft_errors,
            self.block_size,
            self.blockno,
        ] {
            b.put_u32(v);
        }
        b.put_u64(self.total_space);
        b.put_u64(self.space_remain);
        b
    }
}

/// Two-word replies: (error, count) of TAPE_MTIO and TAPE_WRITE.
pub fn error_count(e: Error, count: u32) -> Vec<u8> {
    let mut b = error_only(e);
    b.put_u32(count);
    b
}

/// TAPE_READ: (error, data).
pub fn tape_read(e: Error, data: &[u8]) -> Vec<u8> {
    let mut b = error_only(e);
    b.put_opaque(data);
    b
}

/// DATA_LISTEN and MOVER_LISTEN: (error, connect address).
pub fn listen(e: Error, addr: &Addr) -> Vec<u8> {
    let mut b = error_only(e);
    addr.encode(&mut b);
    b
}

/// `ndmp4_mover_get_state_reply`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoverState {
    pub mode: u32,
    pub state: u32,
    pub pause_reason: u32,
    pub halt_reason: u32,
    pub record_size: u32,
    pub record_num: u32,
    pub bytes_moved: u64,
    pub seek_position: u64,
    pub bytes_left_to_read: u64,
    pub window_offset: u64,
    pub window_length: u64,
    pub addr: Addr,
}

impl MoverState {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = error_only(Error::NO_ERR);
        for v in [self.mode, self.state, self.pause_reason, self.halt_reason] {
            b.put_u32(v);
        }
        b.put_u32(self.record_size);
        b.put_u32(self.record_num);
        for v in [
            self.bytes_moved,
            self.seek_position,
            self.bytes_left_to_read,
            self.window_offset,
            self.window_length,
        ] {
            b.put_u64(v);
        }
        self.addr.encode(&mut b);
        b
    }

    /// What a DMA reads back.
    pub fn decode(body: &[u8]) -> Result<(Error, Self), DecodeError> {
        let r = &mut Reader::new(body);
        let e = Error(r.u32()?);
        let s = Self {
            mode: r.u32()?,
            state: r.u32()?,
            pause_reason: r.u32()?,
            halt_reason: r.u32()?,
            record_size: r.u32()?,
            record_num: r.u32()?,
            bytes_moved: r.u64()?,
            seek_position: r.u64()?,
            bytes_left_to_read: r.u64()?,
            window_offset: r.u64()?,
            window_length: r.u64()?,
            addr: Addr::decode(r)?,
        };
        Ok((e, s))
    }
}

/// `ndmp4_data_get_state_reply`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataState {
    pub operation: u32,
    pub state: u32,
    pub halt_reason: u32,
    pub bytes_processed: u64,
    pub addr: Addr,
    pub read_offset: u64,
    pub read_length: u64,
}

/// EST_BYTES_REMAIN_UNS | EST_TIME_REMAIN_UNS.
const DATA_ESTIMATES_UNS: u32 = 0x3;

impl DataState {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_u32(DATA_ESTIMATES_UNS);
        b.put_u32(Error::NO_ERR.0);
        b.put_u32(self.operation);
        b.put_u32(self.state);
        b.put_u32(self.halt_reason);
        b.put_u64(self.bytes_processed);
        b.put_u64(0);
        b.put_u32(0);
        self.addr.encode(&mut b);
        b.put_u64(self.read_offset);
        b.put_u64(self.read_length);
        b
    }
}

/// DATA_GET_ENV: (error, env).
pub fn env_reply(e: Error, env: &[Pval]) -> Vec<u8> {
    let mut b = error_only(e);
    encode_env(env, &mut b);
    b
}

/// A decoded (error, env) reply, for a DMA.
pub fn decode_env_reply(body: &[u8]) -> Result<(Error, Vec<Pval>), DecodeError> {
    let r = &mut Reader::new(body);
    Ok((Error(r.u32()?), super::message::decode_env(r)?))
}

/// NOTIFY_CONNECTION_STATUS: (reason, protocol version, text).
pub fn connection_status(reason: u32, version: u16, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u32(reason);
    b.put_u32(u32::from(version));
    b.put_string(text);
    b
}

/// NOTIFY_MOVER_PAUSED: (reason, seek position).
pub fn mover_paused(reason: u32, seek_position: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u32(reason);
    b.put_u64(seek_position);
    b
}

/// NOTIFY_DATA_READ: (offset, length).
pub fn data_read(offset: u64, length: u64) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u64(offset);
    b.put_u64(length);
    b
}

/// LOG_MESSAGE types.
pub const LOG_NORMAL: u32 = 0;
pub const LOG_ERROR: u32 = 2;

/// LOG_MESSAGE post with no associated message.
pub fn log_message(log_type: u32, id: u32, entry: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u32(log_type);
    b.put_u32(id);
    b.put_string(entry);
    b.put_u32(0);
    b.put_u32(0);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_golden_bytes() {
        let s = TapeState {
            unsupported: TAPE_STATE_SOFT_ERRORS_UNS,
            error: 0,
            flags: TAPE_STATE_NOREWIND,
            file_num: 1,
            soft_errors: 0,
            block_size: 0,
            blockno: 7,
            total_space: 1 << 32,
            space_remain: 5,
        };
        assert_eq!(
            hex::encode(s.encode()),
            "00000002000000000000000800000001000000000000000000000007\
             0000000100000000\
             0000000000000005"
        );
        assert_eq!(
            hex::encode(mover_paused(1, 0x1_0000_0200)),
            "000000010000000100000200"
        );
        assert_eq!(
            hex::encode(connection_status(0, 4, "")),
            "000000000000000400000000"
        );
        let m = MoverState {
            mode: 0,
            state: 3,
            pause_reason: 1,
            halt_reason: 0,
            record_size: 10240,
            record_num: 2,
            bytes_moved: 20480,
            seek_position: 20480,
            bytes_left_to_read: 0,
            window_offset: 0,
            window_length: u64::MAX,
            addr: Addr::Local,
        };
        let b = m.encode();
        assert_eq!(b.len(), 4 * 7 + 8 * 5 + 4);
        assert_eq!(MoverState::decode(&b).unwrap(), (Error::NO_ERR, m));
        assert_eq!(
            MoverState::decode(&b[..b.len() - 1]).unwrap_err().reason,
            "truncated"
        );
    }
}
