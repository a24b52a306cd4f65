//! The mode pages of an emulated direct-access logical unit, and MODE SELECT(6)/(10) of
//! them (SPC-4 6.11, 6.12, 7.5; SBC-3 6.3).
//!
//! Pages: Caching (08h, SBC-3 6.3.5) and Control (0Ah, SPC-4 7.5.8). The one changeable
//! field is the Control page's SWP (byte 4 bit 3, software write protect): with it set,
//! every command that writes the medium ends DATA PROTECT, LOGICAL UNIT SOFTWARE WRITE
//! PROTECTED (07/27/02), and MODE SENSE reports WP in the DEVICE-SPECIFIC PARAMETER.
//!
//! MODE SELECT is checked whole before anything changes, as LIO and SCST do:
//! - header: MEDIUM TYPE 0; MODE DATA LENGTH and the DEVICE-SPECIFIC PARAMETER are not
//!   checked (reserved, and WP ignored, in MODE SELECT: initiators send back what MODE SENSE
//!   gave them); MODE SELECT(10)'s LONGLBA selects the block descriptor's format;
//! - BLOCK DESCRIPTOR LENGTH 0, or one descriptor (8 bytes, 16 with LONGLBA) whose NUMBER OF
//!   LOGICAL BLOCKS is 0 or the current one and whose LOGICAL BLOCK LENGTH is the current
//!   one: neither the capacity nor the block size can change;
//! - each page: PS 0 (reserved in MODE SELECT), SPF 0 (no subpages), a page code served
//!   here, the PAGE LENGTH MODE SENSE reports, and every bit that is not changeable equal
//!   to its current value.
//!
//! A list shorter than its header or descriptor, or a page running past its end, is
//! PARAMETER LIST LENGTH ERROR (1A/00); every other fault INVALID FIELD IN PARAMETER LIST
//! (26/00) with the field pointer at its byte (and the highest differing bit).

use super::error::{DecodeError, Reason};

/// Caching mode page code (SBC-3 6.3.5).
pub const CACHING: u8 = 0x08;
/// Control mode page code (SPC-4 7.5.8).
pub const CONTROL: u8 = 0x0a;
/// PAGE LENGTH of the Caching page.
const CACHING_LENGTH: u8 = 0x12;
/// PAGE LENGTH of the Control page.
const CONTROL_LENGTH: u8 = 0x0a;
/// The SWP bit: byte 4 of the Control page, bit 3.
const SWP_BYTE: usize = 4;
const SWP_BIT: u8 = 0x08;

/// What MODE SENSE reports about a direct-access logical unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskModeParameters {
    pub blocks: u64,
    pub block_size: u32,
    /// The logical unit is read-only (the inventory's `read_only`): WP in the
    /// DEVICE-SPECIFIC PARAMETER (SBC-3 6.3.1).
    pub write_protect: bool,
    /// WCE in the Caching mode page (SBC-3 6.3.5).
    pub write_cache: bool,
    /// SWP in the Control mode page, set by MODE SELECT: WP is reported too.
    pub software_write_protect: bool,
}

/// Which values of a page MODE SENSE reports (its PAGE CONTROL field, 00b-10b).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageValues {
    Current,
    Changeable,
    Default,
}

impl DiskModeParameters {
    /// Page `code` (Caching or Control) as MODE SENSE returns it: the two-byte header and
    /// the parameters; `None` for a page this logical unit does not have.
    pub fn page(&self, code: u8, values: PageValues) -> Option<Vec<u8>> {
        let changeable = values == PageValues::Changeable;
        let (length, parameters): (u8, &[u8]) = match code {
            // WCE (byte 2 bit 2) is not changeable: every write goes to the image as it
            // comes; SYNCHRONIZE CACHE and FUA flush it.
            CACHING if !changeable && self.write_cache => (CACHING_LENGTH, &[0x04]),
            CACHING => (CACHING_LENGTH, &[]),
            CONTROL if changeable => (CONTROL_LENGTH, &[0, 0, SWP_BIT]),
            // GLTSD = 1 (log parameters are not saved); QUEUE ALGORITHM MODIFIER 1
            // (unrestricted reordering: commands run concurrently); SWP.
            CONTROL if values == PageValues::Current && self.software_write_protect => {
                (CONTROL_LENGTH, &[0x02, 0x10, SWP_BIT])
            }
            CONTROL => (CONTROL_LENGTH, &[0x02, 0x10]),
            _ => return None,
        };
        let mut page = vec![code, length];
        page.extend_from_slice(parameters);
        page.resize(2 + usize::from(length), 0);
        Some(page)
    }

    /// The DEVICE-SPECIFIC PARAMETER (SBC-3 Table 105): WP when read-only or SWP is set;
    /// DPOFUA (FUA is honoured).
    pub fn device_specific(&self) -> u8 {
        (u8::from(self.write_protect || self.software_write_protect) << 7) | 0x10
    }
}

/// Checks a MODE SELECT parameter list (`list`, exactly PARAMETER LIST LENGTH bytes) of
/// MODE SELECT(10) when `ten`, else (6), against the `current` parameters; returns them
/// with the list's changes applied.
pub fn mode_select(
    list: &[u8],
    ten: bool,
    current: &DiskModeParameters,
) -> Result<DiskModeParameters, DecodeError> {
    let truncated = |at: usize| DecodeError::new(Reason::Truncated, at);
    let header_len = if ten { 8 } else { 4 };
    let header = list.get(..header_len).ok_or(truncated(list.len()))?;
    let medium_type_at = if ten { 2 } else { 1 };
    if header.get(medium_type_at) != Some(&0) {
        return Err(DecodeError::invalid(medium_type_at));
    }
    let (long, descriptor_len, length_at) = match *header {
        [_, _, _, _, b4, b5, l6, l7] => {
            if b4 & 0xfe != 0 {
                return Err(DecodeError::invalid_bit(4, 7));
            }
            if b5 != 0 {
                return Err(DecodeError::invalid(5));
            }
            (b4 & 0x01 != 0, usize::from(u16::from_be_bytes([l6, l7])), 6)
        }
        [_, _, _, l3] => (false, usize::from(l3), 3),
        _ => return Err(truncated(list.len())),
    };
    let expected_len = if long { 16 } else { 8 };
    if descriptor_len != 0 && descriptor_len != expected_len {
        return Err(DecodeError::invalid(length_at));
    }
    let pages_at = header_len + descriptor_len;
    let descriptor = list
        .get(header_len..pages_at)
        .ok_or(truncated(list.len()))?;
    if !descriptor.is_empty() {
        block_descriptor(descriptor, header_len, long, current)?;
    }
    let mut next = *current;
    let mut at = pages_at;
    while at < list.len() {
        at = mode_page(list, at, current, &mut next)?;
    }
    Ok(next)
}

/// One block descriptor (at `at` in the list): it may only restate the capacity and the
/// block size (SBC-3 6.3.2).
fn block_descriptor(
    d: &[u8],
    at: usize,
    long: bool,
    current: &DiskModeParameters,
) -> Result<(), DecodeError> {
    let be = |bytes: &[u8]| bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
    let (count_len, reserved, length) = if long { (8, 8..12, 12) } else { (4, 4..5, 5) };
    let count = be(d.get(..count_len).unwrap_or_default());
    let shown = if long {
        current.blocks
    } else {
        current.blocks.min(u64::from(u32::MAX))
    };
    if count != 0 && count != shown {
        return Err(DecodeError::invalid_bit(at, 7));
    }
    if let Some(i) = d
        .get(reserved.clone())
        .and_then(|r| r.iter().position(|&b| b != 0))
    {
        return Err(DecodeError::invalid(at + reserved.start + i));
    }
    if be(d.get(length..).unwrap_or_default()) != u64::from(current.block_size) {
        return Err(DecodeError::invalid_bit(at + length, 7));
    }
    Ok(())
}

/// The page at `at` in `list`: checked against `current`, its changeable fields applied to
/// `next`. Returns where the next page starts.
fn mode_page(
    list: &[u8],
    at: usize,
    current: &DiskModeParameters,
    next: &mut DiskModeParameters,
) -> Result<usize, DecodeError> {
    let truncated = DecodeError::new(Reason::Truncated, list.len());
    let (&b0, &length) = list.get(at).zip(list.get(at + 1)).ok_or(truncated)?;
    if b0 & 0x80 != 0 {
        return Err(DecodeError::invalid_bit(at, 7));
    }
    if b0 & 0x40 != 0 {
        return Err(DecodeError::invalid_bit(at, 6));
    }
    let code = b0 & 0x3f;
    let Some(now) = current.page(code, PageValues::Current) else {
        return Err(DecodeError::invalid_bit(at, 5));
    };
    if usize::from(length) + 2 != now.len() {
        return Err(DecodeError::invalid_bit(at + 1, 7));
    }
    let end = at + now.len();
    let sent = list.get(at..end).ok_or(truncated)?;
    let changeable = current
        .page(code, PageValues::Changeable)
        .unwrap_or_default();
    for (i, ((&s, &c), &m)) in sent.iter().zip(&now).zip(&changeable).enumerate().skip(2) {
        let fixed = (s ^ c) & !m;
        if fixed != 0 {
            let bit = 7 - u8::try_from(fixed.leading_zeros()).unwrap_or(0);
            return Err(DecodeError::invalid_bit(at + i, bit));
        }
    }
    if code == CONTROL {
        next.software_write_protect = sent.get(SWP_BYTE).is_some_and(|b| b & SWP_BIT != 0);
    }
    Ok(end)
}

#[cfg(test)]
#[path = "sbc_mode_tests.rs"]
mod tests;
