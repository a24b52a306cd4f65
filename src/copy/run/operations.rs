//! The segments that move no data between the CSCDs, or not as a transfer: verify a CSCD
//! (07h), write filemarks, space and locate (10h-12h), tape image copy (13h), and the
//! persistent reservations made for the initiator (14h, 15h: sent after the list).

use super::*;

impl Runner<'_> {
    /// 07h and 10h-15h: verifying a CSCD, the tape operations, tape image copy and the persistent reservations.
    pub(super) fn operation(&mut self, step: &Step<'_>) -> Result<Moved, (Failure, Moved)> {
        let body = &step.descriptor.body;
        let source = &step.source;
        let destination = &step.destination;
        let abort = || self.ctx.abort.is_aborted();
        let none = Moved::default();
        Ok(match *body {
            Segment::VerifyCscd { tur, .. } => {
                let s = need(source)?;
                if tur {
                    io::command(s, Side::Source, &[0; 6], DataDirection::None)
                        .map_err(|f| (f, none))?;
                } else {
                    let mut inquiry = [0u8; 36];
                    io::command(
                        s,
                        Side::Source,
                        &[0x12, 0, 0, 0, 36, 0],
                        DataDirection::FromDevice(&mut inquiry),
                    )
                    .map_err(|f| (f, none))?;
                }
                none
            }
            Segment::WriteFilemarks { immed, count, .. } => {
                let d = need(destination)?;
                let [_, a, b, c] = count.to_be_bytes();
                io::command(
                    d,
                    Side::Destination,
                    &[0x10, u8::from(immed), a, b, c, 0],
                    DataDirection::None,
                )
                .map_err(|f| (f, none))?;
                none
            }
            Segment::Space { code, count, .. } => {
                let d = need(destination)?;
                let [_, a, b, c] = count.to_be_bytes();
                io::command(
                    d,
                    Side::Destination,
                    &[0x11, code & 0x0f, a, b, c, 0],
                    DataDirection::None,
                )
                .map_err(|f| (f, none))?;
                none
            }
            Segment::Locate {
                logical_object_id, ..
            } => {
                let d = need(destination)?;
                let mut cdb = [0u8; 10];
                cdb[0] = 0x2b;
                cdb[3..7].copy_from_slice(&logical_object_id.to_be_bytes());
                io::command(d, Side::Destination, &cdb, DataDirection::None)
                    .map_err(|f| (f, none))?;
                none
            }
            Segment::TapeImageCopy { count, .. } => {
                let (s, d) = (need(source)?, need(destination)?);
                tape_image_copy(s, d, count, &abort).map_err(|f| (f, none))?
            }
            Segment::RegisterKey {
                reservation_key,
                service_action_reservation_key,
                ..
            } => {
                let d = need(destination)?;
                let mut parameters = vec![0u8; 24];
                parameters[..8].copy_from_slice(&reservation_key.to_be_bytes());
                parameters[8..16].copy_from_slice(&service_action_reservation_key.to_be_bytes());
                io::command(
                    d,
                    Side::Destination,
                    &pr_out(0x00, 24),
                    DataDirection::ToDevice(&parameters),
                )
                .map_err(|f| (f, none))?;
                none
            }
            Segment::ThirdPartyPrSource { .. } => {
                let d = need(destination)?.clone();
                let mut encoded = Vec::new();
                step.descriptor.encode(&mut encoded);
                self.deferred_pr =
                    Some((step.index, d, encoded.get(8..).unwrap_or_default().to_vec()));
                none
            }
            // The other families: `Runner::segment` routes them elsewhere.
            _ => Moved::default(),
        })
    }
}

/// 13h: copies records and filemarks until `count` consecutive filemarks (0: until end of
/// data). Records are read in variable mode with the largest transfer the drive allows.
fn tape_image_copy(
    s: &Endpoint,
    d: &Endpoint,
    count: u32,
    abort: &dyn Fn() -> bool,
) -> Result<Moved, Failure> {
    let mut limits = [0u8; 6];
    io::command(
        s,
        Side::Source,
        &[0x05, 0, 0, 0, 0, 0],
        DataDirection::FromDevice(&mut limits),
    )?;
    let max =
        (u32::from_be_bytes([0, limits[1], limits[2], limits[3]]) as usize).clamp(1, 16 << 20);
    let mut buf = vec![0u8; max];
    let mut moved = Moved::default();
    let mut filemarks = 0u32;
    loop {
        if abort() {
            return Err(Failure::new(Asc::NO_ADDITIONAL_SENSE));
        }
        let [_, a, b, c] = (max as u32).to_be_bytes();
        let cdb = [0x08, 0, a, b, c, 0];
        crate::copy::reservation::check_command(s, Side::Source, &cdb)?;
        match s.device.execute(&cdb, DataDirection::FromDevice(&mut buf)) {
            Ok(done) if done.is_good() => {
                let len = max - done.residual.min(max);
                // Counted once read: its length is known only now.
                s.throttle.take(Side::Source, len as u64)?;
                write_record(d, &buf[..len])?;
                moved.written += len as u64;
                filemarks = 0;
            }
            Ok(done) => {
                let sense = done.decoded_sense();
                match sense {
                    Some(ref x) if x.filemark => {
                        io::command(
                            d,
                            Side::Destination,
                            &[0x10, 0, 0, 0, 1, 0],
                            DataDirection::None,
                        )?;
                        filemarks += 1;
                        if count != 0 && filemarks >= count {
                            return Ok(moved);
                        }
                    }
                    Some(ref x) if x.ili && x.information.is_some() => {
                        // A shorter record: INFORMATION = requested − actual.
                        let residue = x.information.unwrap_or(0) as u32 as i32;
                        let len = (max as i64 - i64::from(residue)).clamp(0, max as i64) as usize;
                        s.throttle.take(Side::Source, len as u64)?;
                        write_record(d, &buf[..len])?;
                        moved.written += len as u64;
                        filemarks = 0;
                    }
                    Some(ref x) if x.key == crate::scsi::SenseKey::BLANK_CHECK => return Ok(moved),
                    _ => {
                        return Err(Failure {
                            asc: Asc::THIRD_PARTY_DEVICE_FAILURE,
                            device: Some((Side::Source, done.status, done.sense)),
                            cscd: s.cscd,
                            field: None,
                        })
                    }
                }
            }
            Err(_) => return Err(Failure::of(Asc::COPY_TARGET_DEVICE_NOT_REACHABLE, s)),
        }
    }
}

fn write_record(d: &Endpoint, record: &[u8]) -> Result<(), Failure> {
    let unit = StreamUnit {
        fixed: false,
        block_length: 0,
        transfer_length: record.len() as u32,
    };
    io::write_stream(d, unit, &[record]).map_err(|(f, _)| f)
}
