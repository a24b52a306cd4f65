//! The sending half of a connection and response framing: every PDU stamped with StatSN
//! and the CmdSN window, Data-In split by the initiator's limits, vectored writes; and the
//! reading of one PDU, its length checked before anything is allocated.

use std::io::{self, BufReader, IoSlice, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::window::CmdWindow;
use crate::command::CommandResult;
use crate::iscsi::pdu::{Bhs, Digests, Framing, Opcode, Pdu, PduError, BHS_LEN};
use crate::scsi::Status;

/// The sending half of a connection: StatSN and the CmdSN window live here so every PDU
/// carries consistent numbers.
pub(super) struct Writer {
    pub(super) stream: TcpStream,
    pub(super) digests: Digests,
    pub(super) stat_sn: u32,
    pub(super) window: Arc<CmdWindow>,
}

impl Writer {
    /// Fills StatSN (advanced when `status`), ExpCmdSN and MaxCmdSN of a target PDU.
    pub(super) fn stamp(&mut self, bhs: &mut Bhs, status: bool) {
        bhs.set_stat_sn(self.stat_sn);
        if status {
            self.stat_sn = self.stat_sn.wrapping_add(1);
        }
        let window = &self.window;
        bhs.set_exp_cmd_sn(window.exp_cmd_sn.load(Ordering::Acquire));
        bhs.set_max_cmd_sn(window.max_cmd_sn());
        let end = window.end();
        window
            .advertised
            .store((1 << 32) | u64::from(end), Ordering::Release);
    }

    /// Sends a target PDU (no AHS: the target sends none), stamped as [`Self::stamp`] says.
    pub(super) fn send(&mut self, pdu: Pdu, status: bool) -> io::Result<()> {
        self.send_all(&[Outgoing {
            bhs: pdu.bhs,
            data: &pdu.data,
            status,
        }])
    }

    /// Sends PDUs in order, each stamped, their data straight from where it lies: one
    /// vectored write for up to [`IOV_MAX`] slices (header, data, padding+digest each).
    pub(super) fn send_all(&mut self, pdus: &[Outgoing<'_>]) -> io::Result<()> {
        let framings: Vec<Framing> = pdus
            .iter()
            .map(|p| {
                let mut bhs = p.bhs;
                self.stamp(&mut bhs, p.status);
                Framing::new(&bhs, p.data, self.digests)
            })
            .collect();
        let mut slices = Vec::with_capacity(3 * pdus.len());
        for (f, p) in framings.iter().zip(pdus) {
            slices.push(IoSlice::new(f.head()));
            if !p.data.is_empty() {
                slices.push(IoSlice::new(p.data));
            }
            if !f.tail().is_empty() {
                slices.push(IoSlice::new(f.tail()));
            }
        }
        for chunk in slices.chunks_mut(IOV_MAX) {
            write_all_vectored(&mut self.stream, chunk)?;
        }
        Ok(())
    }

    pub(super) fn reject(&mut self, reason: u8, bhs: &Bhs) -> io::Result<()> {
        let mut r = Bhs::new(Opcode::REJECT);
        r.set_flags(0x80).set_byte(2, reason).set_itt(0xffff_ffff);
        self.send(Pdu::with_data(r, bhs.0.to_vec()), true)
    }
}

/// One PDU to send: its header (StatSN and the window are filled at send time), its data
/// segment, and whether it carries status (advances StatSN).
pub(super) struct Outgoing<'a> {
    pub(super) bhs: Bhs,
    pub(super) data: &'a [u8],
    pub(super) status: bool,
}

/// Slices per writev(2) (the kernel's UIO_MAXIOV).
pub(super) const IOV_MAX: usize = 1024;

/// `write_all` for vectored writes (std's is unstable).
pub(super) fn write_all_vectored(
    stream: &mut TcpStream,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match stream.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(super) fn lock(w: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A socket reader that gives up at a deadline over many reads (SO_RCVTIMEO alone bounds
/// each read, so a peer trickling a byte at a time would never time out): the timeout is
/// set to what is left whenever the buffer must be refilled.
pub(super) struct Deadline<'a> {
    pub(super) reader: &'a mut BufReader<TcpStream>,
    pub(super) at: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reader.buffer().is_empty() {
            let left = self.at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.reader.get_ref().set_read_timeout(Some(left))?;
        }
        self.reader.read(buf)
    }
}

/// Reads one PDU: the BHS, then exactly the rest its lengths announce (checked against
/// `max_data` before anything is allocated).
pub(super) fn read_pdu(
    r: &mut impl Read,
    digests: Digests,
    max_data: usize,
) -> Result<Pdu, ReadError> {
    let mut head = [0u8; BHS_LEN];
    r.read_exact(&mut head)?;
    let total = Pdu::wire_len(&Bhs(head), digests, max_data).map_err(ReadError::Pdu)?;
    let mut buf = Vec::with_capacity(total);
    buf.extend_from_slice(&head);
    buf.resize(total, 0);
    r.read_exact(buf.get_mut(BHS_LEN..).unwrap_or_default())?;
    Pdu::decode(&buf, digests, max_data)
        .map(|(p, _)| p)
        .map_err(ReadError::Pdu)
}

pub(super) enum ReadError {
    Io(io::Error),
    Pdu(PduError),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Data-In (split by the initiator's MaxRecvDataSegmentLength, F at each MaxBurstLength)
/// and status: collapsed into the last Data-In when GOOD with no sense, else a SCSI
/// Response carrying SenseLength + sense. `data` is the data-in (the result's own is
/// ignored); every PDU goes out in one vectored write, its data straight from `data`.
#[allow(clippy::too_many_arguments)]
pub(super) fn send_result(
    w: &mut Writer,
    itt: u32,
    edtl: usize,
    read: bool,
    result: &CommandResult,
    data: &[u8],
    max_send: u32,
    max_burst: u32,
) -> io::Result<()> {
    // RFC 7143 11.4.5: O when the command wanted more than the Expected Data Transfer
    // Length (the count is what did not fit), U when it moved less.
    let (residual_flags, residual) = if result.overflow > 0 {
        (0x04, result.overflow)
    } else {
        let under = if read {
            edtl.saturating_sub(data.len())
        } else {
            result.residual.min(edtl)
        };
        (if under > 0 { 0x02 } else { 0 }, under)
    };
    let collapse = result.status == Status::GOOD && result.sense.is_empty() && !data.is_empty();
    let seg = (max_send as usize).max(512);
    let burst = (max_burst as usize).max(seg);
    let mut pdus = Vec::with_capacity(data.len().div_ceil(seg) + 1);
    let mut offset = 0;
    let mut data_sn = 0u32;
    while offset < data.len() {
        let end = (offset + seg).min(data.len());
        // A sequence ends at a burst boundary or at the end of the data.
        let end = end.min((offset / burst + 1) * burst);
        let last = end == data.len();
        let mut r = Bhs::new(Opcode::DATA_IN);
        let mut flags = 0;
        if last || end.is_multiple_of(burst) {
            flags |= 0x80;
        }
        if last && collapse {
            flags |= 0x01 | residual_flags;
            r.set_residual_count(residual as u32);
        }
        r.set_flags(flags)
            .set_itt(itt)
            .set_ttt(0xffff_ffff)
            .set_data_sn(data_sn)
            .set_buffer_offset(offset as u32);
        if last && collapse {
            r.set_byte(3, result.status.0);
        }
        pdus.push(Outgoing {
            bhs: r,
            data: data.get(offset..end).unwrap_or_default(),
            status: last && collapse,
        });
        data_sn = data_sn.wrapping_add(1);
        offset = end;
    }
    let mut body = Vec::new();
    if !collapse {
        let mut r = Bhs::new(Opcode::SCSI_RESPONSE);
        r.set_flags(0x80 | residual_flags)
            .set_byte(2, 0)
            .set_byte(3, result.status.0)
            .set_itt(itt)
            .set_exp_data_sn(data_sn)
            .set_residual_count(residual as u32);
        if !result.sense.is_empty() {
            let n = u16::try_from(result.sense.len()).unwrap_or(u16::MAX);
            body.extend_from_slice(&n.to_be_bytes());
            body.extend_from_slice(&result.sense);
        }
        pdus.push(Outgoing {
            bhs: r,
            data: &body,
            status: true,
        });
    }
    w.send_all(&pdus)
}
