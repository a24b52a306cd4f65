//! Write commands and their Data-Out (RFC 7143 10.7, 11.7): immediate data, unsolicited
//! Data-Out up to FirstBurstLength, R2T-solicited bursts, checked in place; the buffer a
//! connection may hold for them bounded (`max_data_out`), and a stalled write ended.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::connection::{Connection, Next, PendingWrite};
use super::executor::{Executor, ReadyTask};
use super::writer::send_result;
use super::TaskEntry;
use crate::command::{Abort, CommandResult};
use crate::iscsi::pdu::{reject, Bhs, Opcode, Pdu};
use crate::scsi::luns::lun_from_wire;
use crate::scsi::{Asc, Sense, SenseKey, Status};

impl Connection {
    pub(super) fn scsi_command(&mut self, pdu: Pdu, tx: &Arc<Executor>) -> io::Result<Next> {
        let b = pdu.bhs;
        let itt = b.itt();
        let flags = b.flags();
        let (read, write) = (flags & 0x40 != 0, flags & 0x20 != 0);
        let edtl = b.expected_data_transfer_len() as usize;
        if self.session.tasks().contains_key(&itt) || itt == 0xffff_ffff {
            // ITT already in use: the task tag must be unique (RFC 7143 11.2.1.8).
            self.w().reject(reject::INVALID_PDU_FIELD, &b)?;
            return Ok(Next::Continue);
        }
        if (read && write) || pdu.data.len() > edtl || (!write && !pdu.data.is_empty()) {
            // Bidirectional commands are not supported; immediate data must fit.
            self.refused(
                &b,
                "bidirectional, or immediate data beyond the transfer length",
            );
            self.w().reject(reject::INVALID_PDU_FIELD, &b)?;
            return Ok(Next::Continue);
        }
        if !pdu.data.is_empty()
            && (!self.params.immediate_data
                || pdu.data.len() > self.params.first_burst_length as usize)
        {
            // RFC 7143 13.11, 13.14: immediate data only when negotiated, and unsolicited
            // data (immediate data included) never past FirstBurstLength.
            self.refused(
                &b,
                "immediate data not negotiated or beyond FirstBurstLength",
            );
            self.w().reject(reject::PROTOCOL_ERROR, &b)?;
            return Ok(Next::Continue);
        }
        if edtl > self.shared.config.max_command_data as usize {
            self.refused(&b, "transfer length beyond max_command_data");
            let sense = Sense::invalid_field_in_cdb(0, None);
            let result = CommandResult::check_condition(&sense);
            let mut w = self.w();
            return send_result(&mut w, itt, edtl, read, &result, &[], u32::MAX, u32::MAX)
                .map(|_| Next::Continue);
        }
        // Write data is held until the command runs: at most max_data_out per connection.
        let charge = if write { edtl } else { 0 };
        if !self.session.charge(charge, self.shared.config.max_data_out) {
            self.refused(
                &b,
                "max_data_out bytes of write data already held: TASK SET FULL",
            );
            let result = CommandResult {
                status: Status::TASK_SET_FULL,
                ..CommandResult::default()
            };
            let mut w = self.w();
            return send_result(&mut w, itt, edtl, read, &result, &[], u32::MAX, u32::MAX)
                .map(|_| Next::Continue);
        }
        let mut cdb = b.cdb().to_vec();
        cdb.extend_from_slice(&pdu.ahs_cdb());
        let lun = lun_from_wire(b.lun());
        let abort = Abort::new();
        // Task attribute (RFC 7143 11.3.1.2): 1 = SIMPLE.
        let simple = flags & 0x07 == 1;
        let mut data_out = pdu.data;
        // The whole buffer once (edtl is checked above), not doubled as it grows.
        data_out.reserve_exact(charge.saturating_sub(data_out.len()));
        let task = ReadyTask {
            itt,
            lun,
            concurrent: simple && self.shared.dispatcher.concurrent(lun, &cdb),
            independent: simple && cdb.first() == Some(&0x84),
            cdb,
            data_out,
            data_in_len: if read { edtl } else { 0 },
            abort: abort.clone(),
            charge,
        };
        self.session.tasks().insert(itt, TaskEntry { lun, abort });
        self.window.outstanding.fetch_add(1, Ordering::AcqRel);
        if !write || task.data_out.len() == edtl {
            tx.push(task);
            return Ok(Next::Continue);
        }
        let have = task.data_out.len();
        let mut pending = PendingWrite {
            task,
            expected: edtl,
            sequence_end: have,
            ttt: 0xffff_ffff,
            data_sn: 0,
            r2t_sn: 0,
            progress: Instant::now(),
        };
        if flags & 0x80 == 0 {
            // Unsolicited Data-Out follows, up to FirstBurstLength (F bit clear).
            if self.params.initial_r2t {
                self.w().reject(reject::PROTOCOL_ERROR, &b)?;
                return Ok(Next::Close(
                    "unsolicited Data-Out with InitialR2T=Yes".into(),
                ));
            }
            pending.sequence_end = edtl.min(self.params.first_burst_length as usize);
        } else {
            self.r2t(&mut pending, &b)?;
        }
        self.writes.insert(itt, pending);
        Ok(Next::Continue)
    }

    /// Solicits the next burst (one R2T outstanding at a time: MaxOutstandingR2T=1).
    pub(super) fn r2t(&mut self, p: &mut PendingWrite, b: &Bhs) -> io::Result<()> {
        let have = p.task.data_out.len();
        let len = (p.expected - have).min(self.params.max_burst_length as usize);
        p.ttt = self.next_ttt;
        self.next_ttt = match self.next_ttt.wrapping_add(1) {
            u32::MAX => 0,
            t => t,
        };
        p.sequence_end = have + len;
        p.data_sn = 0;
        let mut r = Bhs::new(Opcode::R2T);
        r.set_flags(0x80)
            .set_lun(b.lun())
            .set_itt(p.task.itt)
            .set_ttt(p.ttt)
            .set_data_sn(p.r2t_sn)
            .set_buffer_offset(have as u32)
            .set_desired_data_transfer_len(len as u32);
        p.r2t_sn += 1;
        self.w().send(Pdu::new(r), false)
    }

    pub(super) fn data_out(&mut self, pdu: Pdu, tx: &Arc<Executor>) -> io::Result<Next> {
        let b = pdu.bhs;
        let itt = b.itt();
        let Some(mut p) = self.writes.remove(&itt) else {
            // Data for a task that is gone (aborted, rejected): dropped.
            return Ok(Next::Continue);
        };
        if p.task.abort.is_aborted() {
            // Aborted meanwhile (a reset from another session): never executed or answered.
            self.drop_write(p);
            return Ok(Next::Continue);
        }
        let have = p.task.data_out.len();
        // DataPDUInOrder=Yes: a Data-Out out of place (DataSN, offset, TTT, F bit) is a
        // protocol error. The PDU was read whole, so the connection is still in step: the
        // PDU is rejected and the task ends with CHECK CONDITION, ABORTED COMMAND, DATA
        // PHASE ERROR — never executed, never data written to the wrong place. Later
        // Data-Out for it is dropped. (Closing the connection instead makes initiators
        // reconnect and replay the write with renegotiated immediate data, which then
        // succeeds: libiscsi's DataSnInvalid.)
        let in_place = b.ttt() == p.ttt
            && b.data_sn() == p.data_sn
            && b.buffer_offset() as usize == have
            && have + pdu.data.len() <= p.sequence_end
            && b.final_bit() == (have + pdu.data.len() == p.sequence_end);
        if !in_place {
            self.refused(&b, "Data-Out out of place (TTT, DataSN, offset or F bit)");
            self.w().reject(reject::PROTOCOL_ERROR, &b)?;
            self.end_write(p)?;
            return Ok(Next::Continue);
        }
        p.progress = Instant::now();
        p.data_sn = p.data_sn.wrapping_add(1);
        p.task.data_out.extend_from_slice(&pdu.data);
        let done = p.task.data_out.len();
        if done == p.expected {
            tx.push(p.task);
        } else if b.final_bit() {
            self.r2t(&mut p, &b)?;
            self.writes.insert(itt, p);
        } else {
            self.writes.insert(itt, p);
        }
        Ok(Next::Continue)
    }

    /// Ends a write still collecting Data-Out with CHECK CONDITION, ABORTED COMMAND, DATA
    /// PHASE ERROR: never executed, its buffer and window slot freed.
    pub(super) fn end_write(&mut self, p: PendingWrite) -> io::Result<()> {
        let itt = p.task.itt;
        self.session.tasks().remove(&itt);
        self.session.release(p.task.charge);
        self.window.outstanding.fetch_sub(1, Ordering::AcqRel);
        self.session.task_done.notify_all();
        let sense = Sense::new(SenseKey::ABORTED_COMMAND, Asc::DATA_PHASE_ERROR);
        let result = CommandResult::check_condition(&sense);
        let mut w = self.w();
        send_result(
            &mut w,
            itt,
            p.expected,
            false,
            &result,
            &[],
            u32::MAX,
            u32::MAX,
        )
    }

    /// Forgets a write still collecting Data-Out, unanswered (its abort is answered).
    pub(super) fn drop_write(&mut self, p: PendingWrite) {
        if self.session.tasks().remove(&p.task.itt).is_some() {
            self.session.release(p.task.charge);
            self.window.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
        self.session.task_done.notify_all();
    }

    /// Ends the writes whose Data-Out has not moved for `data_out_timeout`, and forgets
    /// those aborted from another session meanwhile.
    pub(super) fn expire_stalled_writes(&mut self) -> io::Result<()> {
        let aborted: Vec<u32> = self
            .writes
            .iter()
            .filter(|(_, p)| p.task.abort.is_aborted())
            .map(|(&itt, _)| itt)
            .collect();
        for itt in aborted {
            if let Some(p) = self.writes.remove(&itt) {
                self.drop_write(p);
            }
        }
        let limit = self.shared.config.data_out_timeout;
        let stalled: Vec<u32> = self
            .writes
            .iter()
            .filter(|(_, p)| p.progress.elapsed() >= limit)
            .map(|(&itt, _)| itt)
            .collect();
        for itt in stalled {
            if let Some(p) = self.writes.remove(&itt) {
                tracing::warn!(
                    initiator = %self.session.initiator,
                    itt,
                    received = p.task.data_out.len(),
                    expected = p.expected,
                    "iSCSI write ended: no Data-Out for data_out_timeout ({} s)",
                    limit.as_secs()
                );
                self.end_write(p)?;
            }
        }
        Ok(())
    }
}

impl Pdu {
    /// The Extended CDB AHS (type 1) of a SCSI Command: CDB bytes past 16.
    pub(super) fn ahs_cdb(&self) -> Vec<u8> {
        let mut rest = self.ahs.as_slice();
        // AHSLength counts the AHS-specific byte and the data, not the padding.
        while let [l0, l1, kind, _, tail @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*l0, *l1]));
            if *kind == 1 {
                return tail
                    .get(..len.saturating_sub(1))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
            }
            rest = rest
                .get((3 + len).next_multiple_of(4)..)
                .unwrap_or_default();
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ahs(ahs: Vec<u8>) -> Pdu {
        Pdu {
            bhs: Bhs::new(Opcode::SCSI_COMMAND),
            ahs,
            data: Vec::new(),
        }
    }

    /// RFC 7143 11.3.5: the Extended CDB AHS (type 1) holds CDB bytes 16 and on;
    /// AHSLength counts its reserved byte and those bytes, padding not included; other AHS
    /// types before it are skipped by their padded length.
    #[test]
    fn the_extended_cdb_is_read_from_its_ahs() {
        let extra: Vec<u8> = (16..32).collect();
        let mut one = vec![0, 17, 1, 0];
        one.extend_from_slice(&extra);
        assert_eq!(with_ahs(one.clone()).ahs_cdb(), extra);
        // A type-2 AHS (bidirectional read length, AHSLength 5) first: 4 + 5 bytes, padded
        // to 12.
        let mut two = vec![0, 5, 2, 0, 0, 0, 0x10, 0, 0, 0, 0, 0];
        two.extend_from_slice(&one);
        assert_eq!(with_ahs(two).ahs_cdb(), extra);
        // A 5-byte extension (AHSLength 6) is taken without its padding.
        let odd = vec![0, 6, 1, 0, 1, 2, 3, 4, 5, 0, 0, 0];
        assert_eq!(with_ahs(odd).ahs_cdb(), [1, 2, 3, 4, 5]);
        // No AHS, no type 1, or one cut short: no extension.
        assert!(with_ahs(Vec::new()).ahs_cdb().is_empty());
        assert!(with_ahs(vec![0, 5, 2, 0, 0, 0, 0x10, 0, 0, 0, 0, 0])
            .ahs_cdb()
            .is_empty());
        assert!(with_ahs(vec![0, 17, 1, 0, 1, 2]).ahs_cdb().is_empty());
    }
}
