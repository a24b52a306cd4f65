//! The NDMP v4 server, end to end over TCP with the crate's own DMA client: the TAPE
//! service's v4 semantics (ndmjob's T-BWR, T-WRITE, T-READ and T-MTIO sequences, which the
//! Debian ndmjob cannot run to the end: see scripts/ndmp-test.sh), authentication, hostile
//! input, allow lists, and image backup and recover through the local and TCP movers.

use crate::common;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use xcopyd::daemon::{Daemon, DaemonConfig};
use xcopyd::ndmp::client::Client;
use xcopyd::ndmp::header::{frame, Header, MessageType};
use xcopyd::ndmp::message::{
    code, Addr, AuthData, Error, MtioOp, Pval, Request, ADDR_LOCAL, ADDR_TCP,
};
use xcopyd::ndmp::reply::MoverState;
use xcopyd::ndmp::xdr::Reader;

const DISK_BYTES: usize = 3 << 20;

fn start(dir: &std::path::Path, extra: &str) -> Daemon {
    let text = format!(
        r#"
[iscsi]
listen = "127.0.0.1:0"
[daemon]
state_dir = "state"
[ndmp]
listen = "127.0.0.1:0"
user = "dma"
password = "secret-pw"
initiator = "ndmp:backup01"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
size = "3MiB"
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
size = "3MiB"
[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
[[device]]
name = "hidden"
kind = "tape"
path = "hidden.tap"
allow = ["iqn.2026-01.org.example:other"]
{extra}"#
    );
    std::fs::write(dir.join("tape0.tap"), b"").unwrap();
    std::fs::write(dir.join("hidden.tap"), b"").unwrap();
    let mut config = DaemonConfig::parse(&text, dir).unwrap();
    for l in &mut config.inventory.libraries {
        l.state_dir = dir.join("state");
    }
    Daemon::start(config).unwrap()
}

fn client(addr: SocketAddr) -> Client {
    Client::connect(addr, "dma", "secret-pw").unwrap()
}

fn error_of(c: &mut Client, r: &Request) -> Error {
    let (h, body) = c.call(r).unwrap();
    Client::error(&h, &body)
}

fn mtio(c: &mut Client, op: MtioOp, count: u32) -> (Error, u32) {
    let (h, body) = c.call(&Request::TapeMtio { op, count }).unwrap();
    let r = &mut Reader::new(&body);
    assert_eq!(h.error, 0);
    (Error(r.u32().unwrap()), r.u32().unwrap())
}

/// (file_num, blockno) from TAPE_GET_STATE; None where the reply says unsupported.
fn position(c: &mut Client) -> (u32, Option<u32>) {
    let body = c.expect_ok_state();
    let r = &mut Reader::new(&body);
    let unsupported = r.u32().unwrap();
    assert_eq!(r.u32().unwrap(), 0);
    let _flags = r.u32().unwrap();
    let file = r.u32().unwrap();
    let _soft = r.u32().unwrap();
    let _bs = r.u32().unwrap();
    let block = r.u32().unwrap();
    (file, (unsupported & 0x08 == 0).then_some(block))
}

trait StateExt {
    fn expect_ok_state(&mut self) -> Vec<u8>;
}

impl StateExt for Client {
    fn expect_ok_state(&mut self) -> Vec<u8> {
        let (h, body) = self.call(&Request::TapeGetState).unwrap();
        assert_eq!(h.error, 0);
        body
    }
}

fn write(c: &mut Client, data: Vec<u8>) -> (Error, u32) {
    let (_, body) = c.call(&Request::TapeWrite { data }).unwrap();
    let r = &mut Reader::new(&body);
    (Error(r.u32().unwrap()), r.u32().unwrap())
}

fn read(c: &mut Client, count: u32) -> (Error, Vec<u8>) {
    let (_, body) = c.call(&Request::TapeRead { count }).unwrap();
    let r = &mut Reader::new(&body);
    (Error(r.u32().unwrap()), r.opaque(1 << 24).unwrap().to_vec())
}

fn pattern(len: usize, record: usize, file: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 7 + record * 13 + file * 101) as u8)
        .collect()
}

#[test]
fn tape_service_follows_ndmp_v4() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "");
    let mut c = client(d.ndmp_addr().unwrap());
    assert_eq!(error_of(&mut c, &Request::TapeClose), Error::DEV_NOT_OPEN);
    assert_eq!(
        error_of(
            &mut c,
            &Request::TapeOpen {
                device: "bogus".into(),
                mode: 0
            }
        ),
        Error::NO_DEVICE
    );
    assert_eq!(
        error_of(
            &mut c,
            &Request::TapeOpen {
                device: "tape0".into(),
                mode: 123
            }
        ),
        Error::ILLEGAL_ARGS
    );
    // A device the user's allow lists exclude does not exist for it.
    assert_eq!(
        error_of(
            &mut c,
            &Request::TapeOpen {
                device: "hidden".into(),
                mode: 0
            }
        ),
        Error::NO_DEVICE
    );
    assert_eq!(
        error_of(
            &mut c,
            &Request::TapeOpen {
                device: "tape0".into(),
                mode: 0
            }
        ),
        Error::NO_ERR
    );
    assert_eq!(write(&mut c, vec![0; 512]), (Error::PERMISSION, 0));
    assert_eq!(
        error_of(
            &mut c,
            &Request::TapeOpen {
                device: "tape0".into(),
                mode: 1
            }
        ),
        Error::DEVICE_OPENED
    );
    assert_eq!(error_of(&mut c, &Request::TapeClose), Error::NO_ERR);
    // Another session cannot open a tape this one holds.
    assert_eq!(
        error_of(
            &mut c,
            &Request::TapeOpen {
                device: "tape0".into(),
                mode: 1
            }
        ),
        Error::NO_ERR
    );
    let mut other = client(d.ndmp_addr().unwrap());
    assert_eq!(
        error_of(
            &mut other,
            &Request::TapeOpen {
                device: "tape0".into(),
                mode: 0
            }
        ),
        Error::DEVICE_BUSY
    );

    // T-BWR: an empty tape; spacing stops at BOT and end of data with the residue.
    assert_eq!(mtio(&mut c, MtioOp::Rewind, 1), (Error::NO_ERR, 0));
    assert_eq!(mtio(&mut c, MtioOp::Bsr, 100), (Error::NO_ERR, 100));
    assert_eq!(mtio(&mut c, MtioOp::Bsf, 100), (Error::NO_ERR, 100));
    assert_eq!(mtio(&mut c, MtioOp::Eof, 1), (Error::NO_ERR, 0));
    assert_eq!(mtio(&mut c, MtioOp::Bsf, 100), (Error::NO_ERR, 99));
    assert_eq!(mtio(&mut c, MtioOp::Fsf, 100), (Error::NO_ERR, 99));
    assert_eq!(read(&mut c, 65536).0, Error::EOM);
    assert_eq!(write(&mut c, vec![]), (Error::ILLEGAL_ARGS, 0));
    assert_eq!(read(&mut c, 0), (Error::NO_ERR, vec![]));
    assert_eq!(read(&mut c, 0x8000_0000).0, Error::ILLEGAL_ARGS);

    // T-WRITE: files of records; file and block numbers after each.
    let series = [(1usize, 512usize), (100, 1024), (3, 32768), (5, 139)];
    assert_eq!(mtio(&mut c, MtioOp::Rewind, 1), (Error::NO_ERR, 0));
    for (f, &(n, size)) in series.iter().enumerate() {
        for r in 0..n {
            assert_eq!(
                write(&mut c, pattern(size, r, f)),
                (Error::NO_ERR, size as u32)
            );
            assert_eq!(position(&mut c), (f as u32, Some(r as u32 + 1)));
        }
        assert_eq!(mtio(&mut c, MtioOp::Eof, 1), (Error::NO_ERR, 0));
        assert_eq!(position(&mut c), (f as u32 + 1, Some(0)));
    }
    // T-READ: records back; a filemark is EOF_ERR and leaves the tape before it.
    assert_eq!(mtio(&mut c, MtioOp::Rewind, 1), (Error::NO_ERR, 0));
    for (f, &(n, size)) in series.iter().enumerate() {
        for r in 0..n {
            assert_eq!(
                read(&mut c, size as u32),
                (Error::NO_ERR, pattern(size, r, f))
            );
        }
        assert_eq!(read(&mut c, size as u32).0, Error::EOF);
        assert_eq!(position(&mut c), (f as u32, Some(n as u32)));
        assert_eq!(mtio(&mut c, MtioOp::Fsf, 1), (Error::NO_ERR, 0));
        assert_eq!(position(&mut c), (f as u32 + 1, Some(0)));
    }
    // A short read of a longer record gets the record's start; a long read the record.
    assert_eq!(mtio(&mut c, MtioOp::Rewind, 1), (Error::NO_ERR, 0));
    assert_eq!(read(&mut c, 2048), (Error::NO_ERR, pattern(512, 0, 0)));
    // T-MTIO: FSR/BSR stop at the filemark on their own side, with the residue.
    for (f, &(n, size)) in series.iter().enumerate() {
        assert_eq!(mtio(&mut c, MtioOp::Rewind, 1), (Error::NO_ERR, 0));
        assert_eq!(mtio(&mut c, MtioOp::Fsf, f as u32), (Error::NO_ERR, 0));
        assert_eq!(position(&mut c), (f as u32, Some(0)));
        assert_eq!(
            mtio(&mut c, MtioOp::Fsr, 1_000_000),
            (Error::NO_ERR, 1_000_000 - n as u32)
        );
        assert_eq!(position(&mut c), (f as u32, Some(n as u32)));
        assert_eq!(
            mtio(&mut c, MtioOp::Bsr, 1_000_000),
            (Error::NO_ERR, 1_000_000 - n as u32)
        );
        assert_eq!(position(&mut c), (f as u32, Some(0)));
        assert_eq!(mtio(&mut c, MtioOp::Fsr, 0), (Error::NO_ERR, 0));
        let half = n / 2;
        assert_eq!(mtio(&mut c, MtioOp::Fsr, half as u32), (Error::NO_ERR, 0));
        assert_eq!(
            read(&mut c, size as u32),
            (Error::NO_ERR, pattern(size, half, f))
        );
        if half + 1 > 1 {
            assert_eq!(mtio(&mut c, MtioOp::Bsr, 2), (Error::NO_ERR, 0));
            assert_eq!(position(&mut c), (f as u32, Some(half as u32 - 1)));
            assert_eq!(
                read(&mut c, size as u32),
                (Error::NO_ERR, pattern(size, half - 1, f))
            );
        }
    }
    assert_eq!(mtio(&mut c, MtioOp::Tur, 0), (Error::NO_ERR, 0));
    assert_eq!(error_of(&mut c, &Request::TapeClose), Error::NO_ERR);
    assert_eq!(
        error_of(
            &mut other,
            &Request::TapeOpen {
                device: "tape0".into(),
                mode: 0
            }
        ),
        Error::NO_ERR
    );
}

/// Sends raw bytes as one record and returns the reply header, or None if the server closed.
fn raw(addr: SocketAddr, message: u32, body: &[u8]) -> Option<Header> {
    let mut s = TcpStream::connect(addr).unwrap();
    let _hello = xcopyd::ndmp::conn::read_record(&mut s).unwrap();
    let mut m = Vec::new();
    Header {
        sequence: 1,
        time_stamp: 0,
        message_type: MessageType::Request,
        message,
        reply_sequence: 0,
        error: 0,
    }
    .encode(&mut m);
    m.extend_from_slice(body);
    s.write_all(&frame(&m)).unwrap();
    let record = xcopyd::ndmp::conn::read_record(&mut s).ok()??;
    Header::decode(&mut Reader::new(&record)).ok()
}

#[test]
fn authentication_and_hostile_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "");
    let addr = d.ndmp_addr().unwrap();
    assert!(Client::connect(addr, "dma", "wrong").is_err());
    assert!(Client::connect(addr, "someone", "secret-pw").is_err());
    // Text authentication is refused unless the config allows it.
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = xcopyd::ndmp::conn::read_record(&mut s).unwrap();
    drop(s);
    // Before CONNECT_OPEN: ILLEGAL_STATE in the header; v3 is refused with ILLEGAL_ARGS.
    assert_eq!(
        raw(addr, code::CONFIG_GET_TAPE_INFO, &[]).unwrap().error,
        Error::ILLEGAL_STATE.0
    );
    let h = raw(addr, code::CONNECT_OPEN, &[0, 0, 0, 3]).unwrap();
    assert_eq!(
        (h.message_type, h.reply_sequence, h.error),
        (MessageType::Reply, 1, 0)
    );
    // Truncated XDR: XDR_DECODE_ERR in the header, the connection stays up.
    assert_eq!(
        raw(addr, code::CONNECT_OPEN, &[0, 0]).unwrap().error,
        Error::XDR_DECODE.0
    );
    // An unknown message: NOT_SUPPORTED.
    assert_eq!(
        raw(addr, 0x1234_5678, &[]).unwrap().error,
        Error::NOT_SUPPORTED.0
    );
    // A record over the limit closes the connection before anything is allocated for it.
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = xcopyd::ndmp::conn::read_record(&mut s).unwrap();
    s.write_all(&[0x80, 0x7f, 0xff, 0xff]).unwrap();
    assert!(matches!(
        xcopyd::ndmp::conn::read_record(&mut s),
        Ok(None) | Err(_)
    ));

    let mut c = client(addr);
    // Requests after authentication; text auth for a second login is not offered.
    let (h, body) = c
        .call(&Request::ConfigGetAuthAttr { auth_type: 1 })
        .unwrap();
    assert_eq!(
        (h.error, Reader::new(&body).u32().unwrap()),
        (0, Error::ILLEGAL_ARGS.0)
    );
    let e = error_of(
        &mut c,
        &Request::ConnectClientAuth(AuthData::Text {
            id: "dma".into(),
            password: "secret-pw".into(),
        }),
    );
    assert_eq!(e, Error::NOT_AUTHORIZED);
    // CONFIG lists only what the user may see.
    let body = c.expect_ok(&Request::ConfigGetTapeInfo).unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("tape0") && !text.contains("hidden"), "{text}");
    let body = c.expect_ok(&Request::ConfigGetFsInfo).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("disk1"));
}

fn listen_addr(body: &[u8]) -> Addr {
    let r = &mut Reader::new(body);
    assert_eq!(r.u32().unwrap(), 0);
    Addr::decode(r).unwrap()
}

fn halted_reason(c: &mut Client, message: u32) -> u32 {
    Reader::new(&c.wait_post(message).unwrap().body)
        .u32()
        .unwrap()
}

/// A backup of disk0 and a recover to disk1 with one session's DATA and MOVER, connected
/// by `addr_type`.
fn image_round_trip(addr_type: u32) {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "");
    let data: Vec<u8> = (0..DISK_BYTES)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect();
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("disk0.img"))
        .unwrap()
        .write_all(&data)
        .unwrap();
    let mut c = client(d.ndmp_addr().unwrap());
    c.expect_ok(&Request::TapeOpen {
        device: "tape0".into(),
        mode: 1,
    })
    .unwrap();
    c.expect_ok(&Request::MoverSetRecordSize { len: 65536 })
        .unwrap();
    c.expect_ok(&Request::MoverSetWindow {
        offset: 0,
        length: u64::MAX,
    })
    .unwrap();
    let addr = listen_addr(
        &c.expect_ok(&Request::MoverListen { mode: 0, addr_type })
            .unwrap(),
    );
    c.expect_ok(&Request::DataConnect { addr }).unwrap();
    // The local mover with the default digest (CRC-32C), the TCP one with DIGEST=md5.
    let (variable, digest) = if addr_type == ADDR_LOCAL {
        ("CRC32C", xcopyd_crc32c(&data))
    } else {
        ("MD5", hex::encode(<md5::Md5 as md5::Digest>::digest(&data)))
    };
    let mut env = vec![Pval::new("FILESYSTEM", "disk0")];
    if variable == "MD5" {
        env.push(Pval::new("DIGEST", "md5"));
    }
    c.expect_ok(&Request::DataStartBackup {
        butype: "image".into(),
        env,
    })
    .unwrap();
    assert_eq!(halted_reason(&mut c, code::NOTIFY_DATA_HALTED), 1);
    assert_eq!(halted_reason(&mut c, code::NOTIFY_MOVER_HALTED), 1);
    let (_, env) =
        xcopyd::ndmp::reply::decode_env_reply(&c.expect_ok(&Request::DataGetEnv).unwrap()).unwrap();
    let get = |n: &str| env.iter().find(|p| p.name == n).map(|p| p.value.clone());
    assert_eq!(get("BYTES"), Some(DISK_BYTES.to_string()));
    assert_eq!(get(variable), Some(digest.clone()));
    let other = if variable == "MD5" { "CRC32C" } else { "MD5" };
    assert_eq!(get(other), None, "only the digest asked for");
    let log = c.wait_post(code::LOG_MESSAGE).unwrap();
    let r = &mut Reader::new(&log.body);
    let (log_type, _, entry) = (r.u32().unwrap(), r.u32().unwrap(), r.string().unwrap());
    assert_eq!(
        (log_type, entry),
        (
            0,
            format!(
                "image disk0: {DISK_BYTES} bytes, {} {digest}",
                variable.to_ascii_lowercase()
            )
        )
    );
    let (_, m) = MoverState::decode(&c.expect_ok(&Request::MoverGetState).unwrap()).unwrap();
    assert_eq!(
        (m.state, m.halt_reason, m.bytes_moved, m.record_num),
        (4, 1, DISK_BYTES as u64, 48)
    );
    // The local path runs the backup as EXTENDED COPY lists of the NDMP user's nexus.
    let copies: Vec<_> = d
        .registry()
        .list()
        .into_iter()
        .filter(|s| s.state == "good")
        .collect();
    if addr_type == ADDR_LOCAL {
        assert_eq!(copies.len(), 1);
        assert_eq!(
            (copies[0].request.initiator.as_str(), copies[0].bytes),
            ("ndmp:backup01", DISK_BYTES as u64)
        );
    } else {
        assert!(copies.is_empty());
    }
    c.expect_ok(&Request::MoverStop).unwrap();
    c.expect_ok(&Request::DataStop).unwrap();
    assert_eq!(mtio(&mut c, MtioOp::Eof, 1), (Error::NO_ERR, 0));
    assert_eq!(mtio(&mut c, MtioOp::Rewind, 1), (Error::NO_ERR, 0));
    c.expect_ok(&Request::TapeClose).unwrap();

    // Recover into disk1.
    c.expect_ok(&Request::TapeOpen {
        device: "tape0".into(),
        mode: 0,
    })
    .unwrap();
    let addr = listen_addr(
        &c.expect_ok(&Request::MoverListen { mode: 1, addr_type })
            .unwrap(),
    );
    c.expect_ok(&Request::DataConnect { addr }).unwrap();
    // The mover has its connection: the tape's state may be read (a DMA's monitor does),
    // but the tape is the mover's to move.
    let body = c.expect_ok_state();
    assert_eq!(
        Reader::new(&body[4..]).u32().unwrap(),
        0,
        "TAPE_GET_STATE error"
    );
    if addr_type == ADDR_LOCAL {
        assert_eq!(read(&mut c, 512).0, Error::ILLEGAL_STATE);
    }
    let mut env = vec![Pval::new("FILESYSTEM", "disk1")];
    if variable == "MD5" {
        env.push(Pval::new("DIGEST", "md5"));
    }
    c.expect_ok(&Request::DataStartRecover {
        env,
        names: vec![],
        butype: "image".into(),
        filehist: false,
    })
    .unwrap();
    let post = c.wait_post(code::NOTIFY_DATA_READ).unwrap();
    let r = &mut Reader::new(&post.body);
    let (offset, length) = (r.u64().unwrap(), r.u64().unwrap());
    assert_eq!((offset, length), (0, DISK_BYTES as u64));
    c.expect_ok(&Request::MoverRead { offset, length }).unwrap();
    assert_eq!(halted_reason(&mut c, code::NOTIFY_DATA_HALTED), 1);
    assert_eq!(halted_reason(&mut c, code::NOTIFY_MOVER_HALTED), 1);
    let restored = std::fs::read(dir.path().join("disk1.img")).unwrap();
    assert!(restored == data, "restored image differs");
    let (_, env) =
        xcopyd::ndmp::reply::decode_env_reply(&c.expect_ok(&Request::DataGetEnv).unwrap()).unwrap();
    assert!(env.contains(&Pval::new(variable, digest)));
}

/// CRC-32C (Castagnoli) of `data` as DATA_GET_ENV writes it: 8 hex digits, big-endian.
fn xcopyd_crc32c(data: &[u8]) -> String {
    hex::encode(crc32c::crc32c(data).to_be_bytes())
}

#[test]
fn image_backup_and_recover_through_the_local_mover() {
    image_round_trip(ADDR_LOCAL);
}

#[test]
fn image_backup_and_recover_through_a_tcp_mover() {
    image_round_trip(ADDR_TCP);
}

/// MOVE MEDIUM through NDMP SCSI on the changer.
fn move_medium(c: &mut Client, from: u16, to: u16) {
    let mut cdb = vec![0xa5, 0, 0, 0];
    cdb.extend_from_slice(&from.to_be_bytes());
    cdb.extend_from_slice(&to.to_be_bytes());
    cdb.extend_from_slice(&[0, 0, 0, 0]);
    let e = xcopyd::ndmp::message::ExecuteCdb {
        flags: 0,
        timeout_ms: 30000,
        datain_len: 0,
        cdb,
        dataout: vec![],
    };
    let body = c.expect_ok(&Request::ScsiExecuteCdb(e)).unwrap();
    // error, then the SCSI status byte: GOOD.
    assert_eq!(&body[4..8], &[0, 0, 0, 0], "MOVE MEDIUM {from} -> {to}");
}

const DRIVE: u16 = 256;
const SLOT1: u16 = 4096;
const SLOT2: u16 = 4097;

/// Loads `slot` into the drive and opens it.
fn load(c: &mut Client, slot: u16, mode: u32) {
    move_medium(c, slot, DRIVE);
    c.expect_ok(&Request::TapeOpen {
        device: "drive0".into(),
        mode,
    })
    .unwrap();
}

fn unload(c: &mut Client, slot: u16) {
    c.expect_ok(&Request::TapeClose).unwrap();
    move_medium(c, DRIVE, slot);
}

/// A local image backup spanning two 2 MiB cartridges of a library: the copy stops at end
/// of medium, the mover pauses, the DMA swaps cartridges with NDMP SCSI and continues; the
/// recover reads the two windows back (pausing where the first ends) exactly.
#[test]
fn a_backup_spans_two_cartridges_the_dma_swaps_through_ndmp_scsi() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    for b in ["SPAN01L9", "SPAN02L9"] {
        let image = media.join(format!("{b}.tap"));
        std::fs::write(&image, b"").unwrap();
        let mut mam = xcopyd::device::library::mam::Mam::load(
            xcopyd::device::library::mam::Mam::path_of(&image),
        )
        .unwrap();
        mam.set_capacity(2 << 20);
        mam.save().unwrap();
    }
    let d = start(
        dir.path(),
        "[[device]]\nname = \"drive0\"\nkind = \"tape\"\n\
         [[library]]\nname = \"vtl0\"\ndrives = [\"drive0\"]\nslots = 4\nmedia = \"media\"\n",
    );
    let data: Vec<u8> = (0..DISK_BYTES)
        .map(|i| (i * 31 % 253) as u8 ^ (i >> 16) as u8)
        .collect();
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("disk0.img"))
        .unwrap()
        .write_all(&data)
        .unwrap();
    let mut c = client(d.ndmp_addr().unwrap());
    c.expect_ok(&Request::ScsiOpen {
        device: "vtl0".into(),
    })
    .unwrap();
    load(&mut c, SLOT1, 1);
    c.expect_ok(&Request::MoverSetRecordSize { len: 65536 })
        .unwrap();
    let addr = listen_addr(
        &c.expect_ok(&Request::MoverListen {
            mode: 0,
            addr_type: ADDR_LOCAL,
        })
        .unwrap(),
    );
    c.expect_ok(&Request::DataConnect { addr }).unwrap();
    let env = vec![Pval::new("FILESYSTEM", "disk0"), Pval::new("DIGEST", "md5")];
    c.expect_ok(&Request::DataStartBackup {
        butype: "image".into(),
        env,
    })
    .unwrap();
    let paused = c.wait_post(code::NOTIFY_MOVER_PAUSED).unwrap();
    let r = &mut Reader::new(&paused.body);
    let (reason, first) = (r.u32().unwrap(), r.u64().unwrap());
    assert_eq!(reason, 1, "paused at end of medium");
    assert!(
        first > 0 && first < DISK_BYTES as u64 && first % 65536 == 0,
        "{first}"
    );
    let (_, m) = MoverState::decode(&c.expect_ok(&Request::MoverGetState).unwrap()).unwrap();
    assert_eq!((m.state, m.pause_reason, m.bytes_moved), (3, 1, first));
    // Tape operations are the DMA's while the mover is paused.
    unload(&mut c, SLOT1);
    load(&mut c, SLOT2, 1);
    c.expect_ok(&Request::MoverSetWindow {
        offset: first,
        length: u64::MAX,
    })
    .unwrap();
    c.expect_ok(&Request::MoverContinue).unwrap();
    assert_eq!(halted_reason(&mut c, code::NOTIFY_DATA_HALTED), 1);
    assert_eq!(halted_reason(&mut c, code::NOTIFY_MOVER_HALTED), 1);
    let (_, m) = MoverState::decode(&c.expect_ok(&Request::MoverGetState).unwrap()).unwrap();
    assert_eq!(m.bytes_moved, DISK_BYTES as u64);
    assert_eq!(
        d.registry().list().len(),
        2,
        "one EXTENDED COPY per cartridge"
    );
    // The digest is of the image, across both cartridges: the records that landed before
    // end of medium, then the rest.
    let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(&data));
    let (_, env) =
        xcopyd::ndmp::reply::decode_env_reply(&c.expect_ok(&Request::DataGetEnv).unwrap()).unwrap();
    assert!(env.contains(&Pval::new("MD5", md5.clone())), "{env:?}");
    c.expect_ok(&Request::MoverStop).unwrap();
    c.expect_ok(&Request::DataStop).unwrap();
    unload(&mut c, SLOT2);

    // Recover into disk1: the first cartridge's window, a pause where it ends, the second.
    load(&mut c, SLOT1, 0);
    c.expect_ok(&Request::MoverSetWindow {
        offset: 0,
        length: first,
    })
    .unwrap();
    let addr = listen_addr(
        &c.expect_ok(&Request::MoverListen {
            mode: 1,
            addr_type: ADDR_LOCAL,
        })
        .unwrap(),
    );
    c.expect_ok(&Request::DataConnect { addr }).unwrap();
    let env = vec![Pval::new("FILESYSTEM", "disk1"), Pval::new("DIGEST", "md5")];
    c.expect_ok(&Request::DataStartRecover {
        env,
        names: vec![],
        butype: "image".into(),
        filehist: false,
    })
    .unwrap();
    let post = c.wait_post(code::NOTIFY_DATA_READ).unwrap();
    let r = &mut Reader::new(&post.body);
    let (offset, length) = (r.u64().unwrap(), r.u64().unwrap());
    c.expect_ok(&Request::MoverRead { offset, length }).unwrap();
    let paused = c.wait_post(code::NOTIFY_MOVER_PAUSED).unwrap();
    let r = &mut Reader::new(&paused.body);
    assert_eq!(
        (r.u32().unwrap(), r.u64().unwrap()),
        (3, first),
        "paused to seek past the window"
    );
    unload(&mut c, SLOT1);
    load(&mut c, SLOT2, 0);
    c.expect_ok(&Request::MoverSetWindow {
        offset: first,
        length: u64::MAX,
    })
    .unwrap();
    c.expect_ok(&Request::MoverContinue).unwrap();
    assert_eq!(halted_reason(&mut c, code::NOTIFY_DATA_HALTED), 1);
    assert_eq!(halted_reason(&mut c, code::NOTIFY_MOVER_HALTED), 1);
    let restored = std::fs::read(dir.path().join("disk1.img")).unwrap();
    assert!(restored == data, "restored image differs");
    let (_, env) =
        xcopyd::ndmp::reply::decode_env_reply(&c.expect_ok(&Request::DataGetEnv).unwrap()).unwrap();
    assert!(env.contains(&Pval::new("MD5", md5)), "{env:?}");
}

fn xcopy_ndmp(server: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xcopy"))
        .args([
            "ndmp",
            "--server",
            &server.to_string(),
            "--user",
            "dma",
            "--json",
        ])
        .args(args)
        .env("XCOPY_NDMP_PASSWORD", "secret-pw")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() || !stdout.is_empty(), "{out:?}");
    (out.status.success(), stdout)
}

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// `xcopy ndmp` as the DMA: a three-way backup (server A's disk, server B's mover and tape,
/// DATA connecting to the MOVER over TCP) and its restore, then a local one on B.
#[test]
fn xcopy_ndmp_backs_up_three_way_and_restores() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (start(dir_a.path(), ""), start(dir_b.path(), ""));
    let (a_addr, b_addr) = (a.ndmp_addr().unwrap(), b.ndmp_addr().unwrap());
    let data: Vec<u8> = (0..DISK_BYTES).map(|i| (i * 7 % 241) as u8).collect();
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir_a.path().join("disk0.img"))
        .unwrap()
        .write_all(&data)
        .unwrap();
    let (ok, out) = xcopy_ndmp(a_addr, &["query"]);
    assert!(
        ok && out.contains("disk    disk0 (3145728 bytes)") && out.contains("tape    tape0"),
        "{out}"
    );
    assert!(!out.contains("hidden"), "{out}");
    let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(&data));
    let b_str = b_addr.to_string();
    let (ok, out) = xcopy_ndmp(
        a_addr,
        &[
            "backup",
            "--disk",
            "disk0",
            "--tape",
            "tape0",
            "--tape-server",
            &b_str,
            "--digest",
            "md5",
        ],
    );
    assert!(ok, "{out}");
    let j = last_json(&out);
    assert_eq!(
        (
            j["bytes"].as_u64(),
            j["md5"].as_str(),
            j["three_way"].as_bool()
        ),
        (Some(DISK_BYTES as u64), Some(md5.as_str()), Some(true))
    );
    let (ok, out) = xcopy_ndmp(
        a_addr,
        &[
            "restore",
            "--disk",
            "disk1",
            "--tape",
            "tape0",
            "--tape-server",
            &b_str,
            "--digest",
            "md5",
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(last_json(&out)["md5"].as_str(), Some(md5.as_str()));
    assert!(std::fs::read(dir_a.path().join("disk1.img")).unwrap() == data);
    // Server B, locally: its disk1 to its tape (a second tape file), and back to its disk0.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir_b.path().join("disk1.img"))
        .unwrap()
        .write_all(&data)
        .unwrap();
    let (ok, out) = xcopy_ndmp(b_addr, &["backup", "--disk", "disk1", "--tape", "tape0"]);
    assert!(ok && last_json(&out)["three_way"] == false, "{out}");
    assert_eq!(
        b.registry().list().len(),
        1,
        "the local backup ran through the copy engine"
    );
    let (ok, out) = xcopy_ndmp(
        b_addr,
        &[
            "restore", "--disk", "disk0", "--tape", "tape0", "--file", "1",
        ],
    );
    // The default digest: CRC-32C.
    let crc = xcopyd_crc32c(&data);
    assert!(
        ok && last_json(&out)["crc32c"].as_str() == Some(crc.as_str())
            && out.contains(&format!(", crc32c {crc}")),
        "{out}"
    );
    assert!(std::fs::read(dir_b.path().join("disk0.img")).unwrap() == data);
}

/// DATA's disk is reached through a dispatcher with the NDMP user's nexus, not the image
/// file: while an iSCSI host holds disk1 Write Exclusive (SPC-4 5.13), a recover into it
/// halts and leaves it untouched, and once the host releases it the same recover lands.
#[test]
fn a_recover_honours_another_initiator_s_reservation() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), "[[lun]]\ndevice = \"disk1\"\n");
    let addr = d.ndmp_addr().unwrap();
    let data: Vec<u8> = (0..DISK_BYTES).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(dir.path().join("disk0.img"), &data).unwrap();
    let (ok, out) = xcopy_ndmp(addr, &["backup", "--disk", "disk0", "--tape", "tape0"]);
    assert!(ok, "{out}");

    let mut host = common::Initiator::logged_in_to(
        d.local_addr(),
        "iqn.2026-11.org.xcopyd:mover",
        "iqn.2026-11.org.example:holder",
    );
    assert_eq!(
        common::Initiator::sense(&host.command(0, &[0; 6], &[], 0)),
        (6, 0x29, 0),
        "power on"
    );
    let pr_out = |host: &mut common::Initiator, sa: u8, kind: u8, key: u64, sa_key: u64| {
        let mut list = [0u8; 24];
        list[..8].copy_from_slice(&key.to_be_bytes());
        list[8..16].copy_from_slice(&sa_key.to_be_bytes());
        host.command(0, &[0x5f, sa, kind, 0, 0, 0, 0, 0, 24, 0], &list, 0)
            .status
    };
    // REGISTER 0xabc, then RESERVE Write Exclusive (type 1).
    assert_eq!(pr_out(&mut host, 0x00, 0, 0, 0xabc), 0);
    assert_eq!(pr_out(&mut host, 0x01, 1, 0xabc, 0), 0);

    let restore = ["restore", "--disk", "disk1", "--tape", "tape0"];
    let (ok, out) = xcopy_ndmp(addr, &restore);
    assert!(!ok, "a recover into a disk reserved by another host: {out}");
    let disk1 = std::fs::read(dir.path().join("disk1.img")).unwrap();
    assert!(disk1.iter().all(|&b| b == 0), "disk1 was written");

    // RELEASE: the same recover now lands.
    assert_eq!(pr_out(&mut host, 0x02, 1, 0xabc, 0), 0);
    let (ok, out) = xcopy_ndmp(addr, &restore);
    assert!(ok, "{out}");
    assert!(std::fs::read(dir.path().join("disk1.img")).unwrap() == data);
}
