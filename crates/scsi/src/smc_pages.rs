//! The medium changer's mode pages (SMC-3 7.3): element address assignment (1Dh),
//! transport geometry (1Eh) and device capabilities (1Fh), and MODE SENSE / MODE SELECT
//! of a changer over them. Pure, like [`super::smc`].

use super::error::{DecodeError, Reason};
use super::reader::{Put, Reader};
use super::smc::{page, ElementType};
use super::ssc::{ModeSense, PageControl};

fn invalid_cdb(byte: usize, bit: u8) -> DecodeError {
    DecodeError::new(Reason::InvalidFieldInCdb, byte).with_bit(bit)
}

fn cdb_bytes<const N: usize>(cdb: &[u8]) -> Result<[u8; N], DecodeError> {
    cdb.get(..N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| DecodeError::new(Reason::InvalidFieldInCdb, 0))
}

fn reserved(byte: usize, value: u8, mask: u8) -> Result<(), DecodeError> {
    match value & mask {
        0 => Ok(()),
        set => Err(invalid_cdb(byte, 7 - set.leading_zeros() as u8)),
    }
}

fn control(byte: u8, offset: usize) -> Result<(), DecodeError> {
    reserved(offset, byte, 0x05)
}

fn be16(a: u8, b: u8) -> u16 {
    u16::from_be_bytes([a, b])
}

/// How many elements of each type a changer has, and the first address of each type: what
/// the element address assignment page reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementAddresses {
    pub first_transport: u16,
    pub transports: u16,
    pub first_storage: u16,
    pub storage: u16,
    pub first_import_export: u16,
    pub import_export: u16,
    pub first_data_transfer: u16,
    pub data_transfer: u16,
}

impl ElementAddresses {
    /// Mode page 1Dh (SMC-3 7.3.3), PS=0, 20 bytes.
    pub fn encode_page(&self) -> [u8; 20] {
        let mut out = Vec::with_capacity(20);
        out.put_u8(page::ELEMENT_ADDRESS_ASSIGNMENT);
        out.put_u8(0x12);
        for v in [
            self.first_transport,
            self.transports,
            self.first_storage,
            self.storage,
            self.first_import_export,
            self.import_export,
            self.first_data_transfer,
            self.data_transfer,
        ] {
            out.put_u16(v);
        }
        out.put_zeros(2);
        let mut page = [0u8; 20];
        page.copy_from_slice(out.get(..20).unwrap_or(&[0; 20]));
        page
    }

    /// Decodes mode page 1Dh (from its page code byte on).
    pub fn decode_page(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.u8()? & 0x3f != page::ELEMENT_ADDRESS_ASSIGNMENT {
            return Err(DecodeError::invalid(0));
        }
        r.skip(1)?;
        Ok(Self {
            first_transport: r.u16()?,
            transports: r.u16()?,
            first_storage: r.u16()?,
            storage: r.u16()?,
            first_import_export: r.u16()?,
            import_export: r.u16()?,
            first_data_transfer: r.u16()?,
            data_transfer: r.u16()?,
        })
    }
}

/// Mode page 1Eh (SMC-3 7.3.4): one 2-byte descriptor per medium transport, none rotates
/// media, each the sole member of its set.
pub fn transport_geometry_page(transports: u16) -> Vec<u8> {
    let n = usize::from(transports.min(127));
    let mut out = Vec::with_capacity(2 + 2 * n);
    out.put_u8(page::TRANSPORT_GEOMETRY);
    out.put_u8((2 * n) as u8);
    for _ in 0..n {
        out.put_u16(0);
    }
    out
}

/// Mode page 1Fh (SMC-3 7.3.2), 20 bytes: storage, import/export and data transfer
/// elements hold media, and a medium moves or is exchanged between any two of them; the
/// medium transport holds nothing between commands.
pub fn device_capabilities_page() -> [u8; 20] {
    let any = ElementType::Storage.capability_bit()
        | ElementType::ImportExport.capability_bit()
        | ElementType::DataTransfer.capability_bit();
    [
        page::DEVICE_CAPABILITIES,
        0x12,
        any,
        0,
        0,
        any,
        any,
        any,
        0,
        0,
        0,
        0,
        0,
        any,
        any,
        any,
        0,
        0,
        0,
        0,
    ]
}

/// MODE SENSE(6)/(10) on a changer (SPC-3 6.9/6.10): pages 1Dh, 1Eh, 1Fh, or 3Fh for all
/// three; subpage 00h or FFh. DBD is accepted (a changer has no block descriptors either
/// way).
pub fn decode_mode_sense(cdb: &[u8]) -> Result<ModeSense, DecodeError> {
    let (ten, b1, b2, sub, allocation_length) = match cdb.first() {
        Some(0x5a) => {
            let [_, b1, b2, sub, _, _, _, a7, a8, ctl] = cdb_bytes::<10>(cdb)?;
            reserved(1, b1, 0x07)?;
            control(ctl, 9)?;
            (true, b1, b2, sub, be16(a7, a8))
        }
        _ => {
            let [_, b1, b2, sub, alloc, ctl] = cdb_bytes::<6>(cdb)?;
            reserved(1, b1, 0x17)?;
            control(ctl, 5)?;
            (false, b1, b2, sub, u16::from(alloc))
        }
    };
    let page_control = match b2 >> 6 {
        0 => PageControl::Current,
        1 => PageControl::Changeable,
        2 => PageControl::Default,
        _ => PageControl::Saved,
    };
    let page_code = b2 & 0x3f;
    if !matches!(
        page_code,
        page::ELEMENT_ADDRESS_ASSIGNMENT
            | page::TRANSPORT_GEOMETRY
            | page::DEVICE_CAPABILITIES
            | page::ALL
    ) {
        return Err(invalid_cdb(2, 5));
    }
    if sub != 0x00 && sub != 0xff {
        return Err(invalid_cdb(3, 7));
    }
    Ok(ModeSense {
        ten,
        disable_block_descriptors: b1 & 0x08 != 0,
        page_control,
        page_code,
        subpage_code: sub,
        allocation_length,
    })
}

/// MODE SENSE data of a changer with `addresses`: the mode parameter header (no block
/// descriptor, DEVICE-SPECIFIC PARAMETER 0) and the page(s) asked for. No field is
/// changeable: the changeable values are the pages with every field zero. PC 11b (saved)
/// is the caller's to refuse (39/00).
pub fn mode_sense_data(cdb: &ModeSense, addresses: &ElementAddresses) -> Vec<u8> {
    let mut pages: Vec<u8> = Vec::with_capacity(64);
    let changeable = cdb.page_control == PageControl::Changeable;
    let mut push = |page: &[u8]| {
        let start = pages.len();
        pages.extend_from_slice(page);
        if changeable {
            if let Some(body) = pages.get_mut(start + 2..) {
                body.fill(0);
            }
        }
    };
    let wanted = |code: u8| cdb.page_code == code || cdb.page_code == page::ALL;
    if wanted(page::ELEMENT_ADDRESS_ASSIGNMENT) {
        push(&addresses.encode_page());
    }
    if wanted(page::TRANSPORT_GEOMETRY) {
        push(&transport_geometry_page(addresses.transports));
    }
    if wanted(page::DEVICE_CAPABILITIES) {
        push(&device_capabilities_page());
    }
    let mut out = Vec::with_capacity(pages.len() + 8);
    if cdb.ten {
        out.put_u16(u16::try_from(pages.len() + 6).unwrap_or(u16::MAX));
        out.put_zeros(6);
    } else {
        out.put_u8(u8::try_from(pages.len() + 3).unwrap_or(u8::MAX));
        out.put_zeros(3);
    }
    out.extend_from_slice(&pages);
    out
}

/// Checks a MODE SELECT parameter list for a changer: the header (block descriptor length
/// 0) and any of pages 1Dh, 1Eh, 1Fh exactly as MODE SENSE reports them (nothing is
/// changeable). Differences are 26/00 with the pointer at the first differing byte.
pub fn check_mode_select(
    params: &[u8],
    ten: bool,
    addresses: &ElementAddresses,
) -> Result<(), DecodeError> {
    let header_len = if ten { 8 } else { 4 };
    let Some(header) = params.get(..header_len) else {
        return if params.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(Reason::Truncated, params.len()))
        };
    };
    let bdl_at = if ten { 6 } else { 3 };
    let bdl = match *header {
        [_, _, _, _, _, _, hi, lo] => be16(hi, lo),
        [_, _, _, lo] => u16::from(lo),
        _ => 0,
    };
    if bdl != 0 {
        return Err(DecodeError::invalid(bdl_at));
    }
    let mut at = header_len;
    while at < params.len() {
        let code = params.get(at).copied().unwrap_or(0) & 0x3f;
        let current: Vec<u8> = match code {
            page::ELEMENT_ADDRESS_ASSIGNMENT => addresses.encode_page().to_vec(),
            page::TRANSPORT_GEOMETRY => transport_geometry_page(addresses.transports),
            page::DEVICE_CAPABILITIES => device_capabilities_page().to_vec(),
            _ => return Err(DecodeError::invalid_bit(at, 5)),
        };
        let got = params
            .get(at..at + current.len())
            .ok_or_else(|| DecodeError::new(Reason::Truncated, params.len()))?;
        // PS (bit 7 of byte 0) is ignored in MODE SELECT.
        if let Some(i) = got
            .iter()
            .zip(&current)
            .enumerate()
            .position(|(i, (&g, &c))| if i == 0 { g & 0x7f != c } else { g != c })
        {
            return Err(DecodeError::invalid(at + i));
        }
        at += current.len();
    }
    Ok(())
}
