//! NDMP v4 requests (ndmp4.x in the NDMP v4 specification): message codes, error codes, the
//! shared structures (`ndmp4_pval`, `ndmp4_addr`, auth data, EXECUTE CDB) and every request
//! of the CONNECT, CONFIG, SCSI, TAPE, DATA and MOVER interfaces, decoded from a body by its
//! header's message code and encoded back (the DMA side and the round-trip fuzz hook).

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

pub use super::codes::{code, Error};

/// Largest CDB an EXECUTE CDB may carry (SPC-4 variable-length CDBs stop at 260 bytes).
pub const MAX_CDB: usize = 260;
/// Largest data-out or data-in of one EXECUTE CDB, TAPE_WRITE or TAPE_READ.
pub const MAX_DATA: usize = 2 << 20;

/// `ndmp4_pval`: one environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pval {
    pub name: String,
    pub value: String,
}

impl Pval {
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            name: r.string()?,
            value: r.string()?,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_string(&self.name);
        out.put_string(&self.value);
    }
}

pub fn decode_env(r: &mut Reader<'_>) -> Result<Vec<Pval>, DecodeError> {
    r.array(8, Pval::decode)
}

pub fn encode_env(env: &[Pval], out: &mut Vec<u8>) {
    out.put_count(env.len());
    env.iter().for_each(|p| p.encode(out));
}

/// `ndmp4_addr_type`.
pub const ADDR_LOCAL: u32 = 0;
pub const ADDR_TCP: u32 = 1;

/// One `ndmp4_tcp_addr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpAddr {
    pub ip: u32,
    pub port: u16,
    pub env: Vec<Pval>,
}

/// `ndmp4_addr` (IPC is not offered: CONFIG_GET_CONNECTION_TYPE lists LOCAL and TCP).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Local,
    Tcp(Vec<TcpAddr>),
}

impl Addr {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        match r.u32()? {
            ADDR_LOCAL => Ok(Self::Local),
            ADDR_TCP => Ok(Self::Tcp(r.array(12, |r| {
                Ok(TcpAddr {
                    ip: r.u32()?,
                    port: r.u16()?,
                    env: decode_env(r)?,
                })
            })?)),
            _ => Err(DecodeError {
                offset: at,
                reason: "address type neither LOCAL nor TCP",
            }),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Local => out.put_u32(ADDR_LOCAL),
            Self::Tcp(addrs) => {
                out.put_u32(ADDR_TCP);
                out.put_count(addrs.len());
                for a in addrs {
                    out.put_u32(a.ip);
                    out.put_u32(u32::from(a.port));
                    encode_env(&a.env, out);
                }
            }
        }
    }
}

/// `ndmp4_auth_data` of CONNECT_CLIENT_AUTH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthData {
    None,
    Text { id: String, password: String },
    Md5 { id: String, digest: [u8; 16] },
}

pub const AUTH_NONE: u32 = 0;
pub const AUTH_TEXT: u32 = 1;
pub const AUTH_MD5: u32 = 2;

impl AuthData {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = r.offset();
        match r.u32()? {
            AUTH_NONE => Ok(Self::None),
            AUTH_TEXT => Ok(Self::Text {
                id: r.string()?,
                password: r.string()?,
            }),
            AUTH_MD5 => {
                let id = r.string()?;
                let mut digest = [0u8; 16];
                digest.copy_from_slice(r.fixed(16)?);
                Ok(Self::Md5 { id, digest })
            }
            _ => Err(DecodeError {
                offset: at,
                reason: "unknown auth type",
            }),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::None => out.put_u32(AUTH_NONE),
            Self::Text { id, password } => {
                out.put_u32(AUTH_TEXT);
                out.put_string(id);
                out.put_string(password);
            }
            Self::Md5 { id, digest } => {
                out.put_u32(AUTH_MD5);
                out.put_string(id);
                out.put_fixed(digest);
            }
        }
    }
}

/// `ndmp4_execute_cdb_request` (SCSI and TAPE EXECUTE CDB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecuteCdb {
    pub flags: u32,
    pub timeout_ms: u32,
    pub datain_len: u32,
    pub cdb: Vec<u8>,
    pub dataout: Vec<u8>,
}

pub const SCSI_DATA_IN: u32 = 1;
pub const SCSI_DATA_OUT: u32 = 2;

impl ExecuteCdb {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flags = r.u32()?;
        let timeout_ms = r.u32()?;
        let at = r.offset();
        let datain_len = r.u32()?;
        if datain_len as usize > MAX_DATA {
            return Err(DecodeError {
                offset: at,
                reason: "datain_len over the data limit",
            });
        }
        Ok(Self {
            flags,
            timeout_ms,
            datain_len,
            cdb: r.opaque(MAX_CDB)?.to_vec(),
            dataout: r.opaque(MAX_DATA)?.to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.flags);
        out.put_u32(self.timeout_ms);
        out.put_u32(self.datain_len);
        out.put_opaque(&self.cdb);
        out.put_opaque(&self.dataout);
    }
}

/// `ndmp4_tape_open_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapeMode {
    Read,
    ReadWrite,
    Raw,
}

/// `ndmp4_tape_mtio_op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtioOp {
    Fsf,
    Bsf,
    Fsr,
    Bsr,
    Rewind,
    Eof,
    Off,
    Tur,
}

/// `ndmp4_mover_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoverMode {
    /// The mover reads the connection and writes the tape (a backup).
    Read,
    /// The mover reads the tape and writes the connection (a recover).
    Write,
    NoAction,
}

impl TapeMode {
    pub fn from_wire(v: u32) -> Option<Self> {
        [Self::Read, Self::ReadWrite, Self::Raw]
            .get(v as usize)
            .copied()
    }
}

impl MoverMode {
    pub fn from_wire(v: u32) -> Option<Self> {
        [Self::Read, Self::Write, Self::NoAction]
            .get(v as usize)
            .copied()
    }

    pub fn wire(self) -> u32 {
        match self {
            Self::Read => 0,
            Self::Write => 1,
            Self::NoAction => 2,
        }
    }
}

/// `ndmp4_name` of DATA_START_RECOVER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    pub original_path: String,
    pub destination_path: String,
    pub name: String,
    pub other_name: String,
    pub node: u64,
    pub fh_info: u64,
}

/// A request (or a post a DMA may send) decoded from its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    ConnectOpen {
        version: u16,
    },
    ConnectClientAuth(AuthData),
    ConnectClose,
    ConnectServerAuth {
        auth_type: u32,
        challenge: Vec<u8>,
    },
    ConfigGetHostInfo,
    ConfigGetConnectionType,
    ConfigGetAuthAttr {
        auth_type: u32,
    },
    ConfigGetButypeInfo,
    ConfigGetFsInfo,
    ConfigGetTapeInfo,
    ConfigGetScsiInfo,
    ConfigGetServerInfo,
    ConfigSetExtList {
        classes: Vec<(u16, Vec<u16>)>,
    },
    ConfigGetExtList,
    ScsiOpen {
        device: String,
    },
    ScsiClose,
    ScsiGetState,
    ScsiResetDevice,
    ScsiExecuteCdb(ExecuteCdb),
    TapeOpen {
        device: String,
        mode: u32,
    },
    TapeClose,
    TapeGetState,
    TapeMtio {
        op: MtioOp,
        count: u32,
    },
    TapeWrite {
        data: Vec<u8>,
    },
    TapeRead {
        count: u32,
    },
    TapeExecuteCdb(ExecuteCdb),
    DataGetState,
    DataStartBackup {
        butype: String,
        env: Vec<Pval>,
    },
    DataStartRecover {
        env: Vec<Pval>,
        names: Vec<Name>,
        butype: String,
        filehist: bool,
    },
    DataAbort,
    DataGetEnv,
    DataStop,
    DataListen {
        addr_type: u32,
    },
    DataConnect {
        addr: Addr,
    },
    MoverGetState,
    MoverListen {
        mode: u32,
        addr_type: u32,
    },
    MoverContinue,
    MoverAbort,
    MoverStop,
    MoverSetWindow {
        offset: u64,
        length: u64,
    },
    MoverRead {
        offset: u64,
        length: u64,
    },
    MoverClose,
    MoverSetRecordSize {
        len: u32,
    },
    MoverConnect {
        mode: u32,
        addr: Addr,
    },
}

fn enumerated<T: Copy>(
    r: &mut Reader<'_>,
    values: &[T],
    what: &'static str,
) -> Result<T, DecodeError> {
    let at = r.offset();
    let v = r.u32()? as usize;
    values.get(v).copied().ok_or(DecodeError {
        offset: at,
        reason: what,
    })
}

fn decode_name(r: &mut Reader<'_>) -> Result<Name, DecodeError> {
    Ok(Name {
        original_path: r.string()?,
        destination_path: r.string()?,
        name: r.string()?,
        other_name: r.string()?,
        node: r.u64()?,
        fh_info: r.u64()?,
    })
}

fn decode_recover(r: &mut Reader<'_>, filehist: bool) -> Result<Request, DecodeError> {
    Ok(Request::DataStartRecover {
        env: decode_env(r)?,
        names: r.array(32, decode_name)?,
        butype: r.string()?,
        filehist,
    })
}

impl Request {
    /// Decodes the body of message `message`. `Ok(None)`: a message this server does not
    /// implement (answered NOT_SUPPORTED). The whole body must be consumed.
    pub fn decode(message: u32, body: &[u8]) -> Result<Option<Self>, DecodeError> {
        use code::*;
        let r = &mut Reader::new(body);
        let request = match message {
            CONNECT_OPEN => Self::ConnectOpen { version: r.u16()? },
            CONNECT_CLIENT_AUTH => Self::ConnectClientAuth(AuthData::decode(r)?),
            CONNECT_CLOSE => Self::ConnectClose,
            CONNECT_SERVER_AUTH => {
                let auth_type = r.u32()?;
                let challenge = if auth_type == AUTH_MD5 {
                    r.fixed(64)?.to_vec()
                } else {
                    Vec::new()
                };
                Self::ConnectServerAuth {
                    auth_type,
                    challenge,
                }
            }
            CONFIG_GET_HOST_INFO => Self::ConfigGetHostInfo,
            CONFIG_GET_CONNECTION_TYPE => Self::ConfigGetConnectionType,
            CONFIG_GET_AUTH_ATTR => Self::ConfigGetAuthAttr {
                auth_type: r.u32()?,
            },
            CONFIG_GET_BUTYPE_INFO => Self::ConfigGetButypeInfo,
            CONFIG_GET_FS_INFO => Self::ConfigGetFsInfo,
            CONFIG_GET_TAPE_INFO => Self::ConfigGetTapeInfo,
            CONFIG_GET_SCSI_INFO => Self::ConfigGetScsiInfo,
            CONFIG_GET_SERVER_INFO => Self::ConfigGetServerInfo,
            CONFIG_SET_EXT_LIST => {
                let _error = r.u32()?;
                Self::ConfigSetExtList {
                    classes: r.array(8, |r| Ok((r.u16()?, r.array(4, |r| r.u16())?)))?,
                }
            }
            CONFIG_GET_EXT_LIST => Self::ConfigGetExtList,
            SCSI_OPEN => Self::ScsiOpen {
                device: r.string()?,
            },
            SCSI_CLOSE => Self::ScsiClose,
            SCSI_GET_STATE => Self::ScsiGetState,
            SCSI_RESET_DEVICE => Self::ScsiResetDevice,
            SCSI_EXECUTE_CDB => Self::ScsiExecuteCdb(ExecuteCdb::decode(r)?),
            TAPE_OPEN => Self::TapeOpen {
                device: r.string()?,
                mode: r.u32()?,
            },
            TAPE_CLOSE => Self::TapeClose,
            TAPE_GET_STATE => Self::TapeGetState,
            TAPE_MTIO => {
                use MtioOp::*;
                Self::TapeMtio {
                    op: enumerated(
                        r,
                        &[Fsf, Bsf, Fsr, Bsr, Rewind, Eof, Off, Tur],
                        "unknown mtio op",
                    )?,
                    count: r.u32()?,
                }
            }
            TAPE_WRITE => Self::TapeWrite {
                data: r.opaque(MAX_DATA)?.to_vec(),
            },
            TAPE_READ => Self::TapeRead { count: r.u32()? },
            TAPE_EXECUTE_CDB => Self::TapeExecuteCdb(ExecuteCdb::decode(r)?),
            DATA_GET_STATE => Self::DataGetState,
            DATA_START_BACKUP => Self::DataStartBackup {
                butype: r.string()?,
                env: decode_env(r)?,
            },
            DATA_START_RECOVER => decode_recover(r, false)?,
            DATA_START_RECOVER_FILEHIST => decode_recover(r, true)?,
            DATA_ABORT => Self::DataAbort,
            DATA_GET_ENV => Self::DataGetEnv,
            DATA_STOP => Self::DataStop,
            DATA_LISTEN => Self::DataListen {
                addr_type: r.u32()?,
            },
            DATA_CONNECT => Self::DataConnect {
                addr: Addr::decode(r)?,
            },
            MOVER_GET_STATE => Self::MoverGetState,
            MOVER_LISTEN => Self::MoverListen {
                mode: r.u32()?,
                addr_type: r.u32()?,
            },
            MOVER_CONTINUE => Self::MoverContinue,
            MOVER_ABORT => Self::MoverAbort,
            MOVER_STOP => Self::MoverStop,
            MOVER_SET_WINDOW => Self::MoverSetWindow {
                offset: r.u64()?,
                length: r.u64()?,
            },
            MOVER_READ => Self::MoverRead {
                offset: r.u64()?,
                length: r.u64()?,
            },
            MOVER_CLOSE => Self::MoverClose,
            MOVER_SET_RECORD_SIZE => Self::MoverSetRecordSize { len: r.u32()? },
            MOVER_CONNECT => Self::MoverConnect {
                mode: r.u32()?,
                addr: Addr::decode(r)?,
            },
            _ => return Ok(None),
        };
        r.finish()?;
        Ok(Some(request))
    }

    /// The message code and body of this request (what a DMA sends).
    pub fn encode(&self) -> (u32, Vec<u8>) {
        let mut b = Vec::new();
        let code = self
            .encode_connect_config_tape(&mut b)
            .or_else(|| self.encode_data_mover(&mut b))
            .unwrap_or_default();
        (code, b)
    }

    /// CONNECT, CONFIG, SCSI and TAPE requests: the code, with the body on `out`.
    fn encode_connect_config_tape(&self, out: &mut Vec<u8>) -> Option<u32> {
        use code::*;
        Some(match self {
            Self::ConnectOpen { version } => {
                out.put_u32(u32::from(*version));
                CONNECT_OPEN
            }
            Self::ConnectClientAuth(a) => {
                a.encode(out);
                CONNECT_CLIENT_AUTH
            }
            Self::ConnectClose => CONNECT_CLOSE,
            Self::ConnectServerAuth {
                auth_type,
                challenge,
            } => {
                out.put_u32(*auth_type);
                if *auth_type == AUTH_MD5 {
                    out.put_fixed(challenge);
                }
                CONNECT_SERVER_AUTH
            }
            Self::ConfigGetHostInfo => CONFIG_GET_HOST_INFO,
            Self::ConfigGetConnectionType => CONFIG_GET_CONNECTION_TYPE,
            Self::ConfigGetAuthAttr { auth_type } => {
                out.put_u32(*auth_type);
                CONFIG_GET_AUTH_ATTR
            }
            Self::ConfigGetButypeInfo => CONFIG_GET_BUTYPE_INFO,
            Self::ConfigGetFsInfo => CONFIG_GET_FS_INFO,
            Self::ConfigGetTapeInfo => CONFIG_GET_TAPE_INFO,
            Self::ConfigGetScsiInfo => CONFIG_GET_SCSI_INFO,
            Self::ConfigGetServerInfo => CONFIG_GET_SERVER_INFO,
            Self::ConfigSetExtList { classes } => {
                out.put_u32(0);
                out.put_count(classes.len());
                for (id, versions) in classes {
                    out.put_u32(u32::from(*id));
                    out.put_count(versions.len());
                    versions.iter().for_each(|v| out.put_u32(u32::from(*v)));
                }
                CONFIG_SET_EXT_LIST
            }
            Self::ConfigGetExtList => CONFIG_GET_EXT_LIST,
            Self::ScsiOpen { device } => {
                out.put_string(device);
                SCSI_OPEN
            }
            Self::ScsiClose => SCSI_CLOSE,
            Self::ScsiGetState => SCSI_GET_STATE,
            Self::ScsiResetDevice => SCSI_RESET_DEVICE,
            Self::ScsiExecuteCdb(e) => {
                e.encode(out);
                SCSI_EXECUTE_CDB
            }
            Self::TapeOpen { device, mode } => {
                out.put_string(device);
                out.put_u32(*mode);
                TAPE_OPEN
            }
            Self::TapeClose => TAPE_CLOSE,
            Self::TapeGetState => TAPE_GET_STATE,
            Self::TapeMtio { op, count } => {
                out.put_u32(*op as u32);
                out.put_u32(*count);
                TAPE_MTIO
            }
            Self::TapeWrite { data } => {
                out.put_opaque(data);
                TAPE_WRITE
            }
            Self::TapeRead { count } => {
                out.put_u32(*count);
                TAPE_READ
            }
            Self::TapeExecuteCdb(e) => {
                e.encode(out);
                TAPE_EXECUTE_CDB
            }
            _ => return None,
        })
    }

    /// DATA and MOVER requests.
    fn encode_data_mover(&self, out: &mut Vec<u8>) -> Option<u32> {
        use code::*;
        Some(match self {
            Self::DataGetState => DATA_GET_STATE,
            Self::DataStartBackup { butype, env } => {
                out.put_string(butype);
                encode_env(env, out);
                DATA_START_BACKUP
            }
            Self::DataStartRecover {
                env,
                names,
                butype,
                filehist,
            } => {
                encode_env(env, out);
                out.put_count(names.len());
                for n in names {
                    out.put_string(&n.original_path);
                    out.put_string(&n.destination_path);
                    out.put_string(&n.name);
                    out.put_string(&n.other_name);
                    out.put_u64(n.node);
                    out.put_u64(n.fh_info);
                }
                out.put_string(butype);
                if *filehist {
                    DATA_START_RECOVER_FILEHIST
                } else {
                    DATA_START_RECOVER
                }
            }
            Self::DataAbort => DATA_ABORT,
            Self::DataGetEnv => DATA_GET_ENV,
            Self::DataStop => DATA_STOP,
            Self::DataListen { addr_type } => {
                out.put_u32(*addr_type);
                DATA_LISTEN
            }
            Self::DataConnect { addr } => {
                addr.encode(out);
                DATA_CONNECT
            }
            Self::MoverGetState => MOVER_GET_STATE,
            Self::MoverListen { mode, addr_type } => {
                out.put_u32(*mode);
                out.put_u32(*addr_type);
                MOVER_LISTEN
            }
            Self::MoverContinue => MOVER_CONTINUE,
            Self::MoverAbort => MOVER_ABORT,
            Self::MoverStop => MOVER_STOP,
            Self::MoverSetWindow { offset, length } => {
                out.put_u64(*offset);
                out.put_u64(*length);
                MOVER_SET_WINDOW
            }
            Self::MoverRead { offset, length } => {
                out.put_u64(*offset);
                out.put_u64(*length);
                MOVER_READ
            }
            Self::MoverClose => MOVER_CLOSE,
            Self::MoverSetRecordSize { len } => {
                out.put_u32(*len);
                MOVER_SET_RECORD_SIZE
            }
            Self::MoverConnect { mode, addr } => {
                out.put_u32(*mode);
                addr.encode(out);
                MOVER_CONNECT
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_golden_bytes() {
        let open = Request::TapeOpen {
            device: "drive0".into(),
            mode: 1,
        };
        let (c, b) = open.encode();
        assert_eq!(c, 0x300);
        assert_eq!(
            hex::encode(&b),
            "000000066472697665300000".to_owned() + "00000001"
        );
        assert_eq!(Request::decode(c, &b).unwrap(), Some(open));

        let listen = Request::MoverConnect {
            mode: MoverMode::Read.wire(),
            addr: Addr::Tcp(vec![TcpAddr {
                ip: 0x7f00_0001,
                port: 10001,
                env: vec![],
            }]),
        };
        let (c, b) = listen.encode();
        assert_eq!(c, 0xa09);
        assert_eq!(
            hex::encode(&b),
            "00000000".to_owned() + "00000001" + "00000001" + "7f000001" + "00002711" + "00000000"
        );
        assert_eq!(Request::decode(c, &b).unwrap(), Some(listen));

        let auth = Request::ConnectClientAuth(AuthData::Md5 {
            id: "ndmp".into(),
            digest: [0xab; 16],
        });
        let (c, b) = auth.encode();
        assert_eq!(&b[..12], &[0, 0, 0, 2, 0, 0, 0, 4, b'n', b'd', b'm', b'p']);
        assert_eq!(b.len(), 12 + 16);
        assert_eq!(Request::decode(c, &b).unwrap(), Some(auth));
    }

    #[test]
    fn hostile_bodies_are_errors_never_panics() {
        // Unknown message: not an error, answered NOT_SUPPORTED by the session.
        assert_eq!(Request::decode(0x1234, &[]).unwrap(), None);
        // Trailing bytes after CONNECT_CLOSE.
        assert_eq!(
            Request::decode(code::CONNECT_CLOSE, &[0, 0, 0, 0])
                .unwrap_err()
                .reason,
            "trailing bytes"
        );
        // Mtio op 8 does not exist.
        let e = Request::decode(code::TAPE_MTIO, &[0, 0, 0, 8, 0, 0, 0, 1]).unwrap_err();
        assert_eq!(
            e,
            DecodeError {
                offset: 0,
                reason: "unknown mtio op"
            }
        );
        // EXECUTE CDB asking for 3 GiB of data-in.
        let e = Request::decode(
            code::SCSI_EXECUTE_CDB,
            &[0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 0, 0, 0],
        )
        .unwrap_err();
        assert_eq!(
            e,
            DecodeError {
                offset: 8,
                reason: "datain_len over the data limit"
            }
        );
        // A CDB longer than 260 bytes.
        let mut b = vec![0u8; 12];
        b.put_u32(261);
        assert_eq!(
            Request::decode(code::TAPE_EXECUTE_CDB, &b)
                .unwrap_err()
                .reason,
            "opaque length over its bound"
        );
        // A 2^30-entry environment in a short body.
        let mut b = Vec::new();
        b.put_string("image");
        b.put_u32(1 << 30);
        assert_eq!(
            Request::decode(code::DATA_START_BACKUP, &b)
                .unwrap_err()
                .reason,
            "array count over its bound"
        );
        // Every prefix of a valid request is refused cleanly.
        let (c, b) = Request::DataStartBackup {
            butype: "image".into(),
            env: vec![Pval::new("FILESYSTEM", "disk0")],
        }
        .encode();
        for n in 0..b.len() {
            assert!(Request::decode(c, &b[..n]).is_err(), "prefix {n}");
        }
    }
}
