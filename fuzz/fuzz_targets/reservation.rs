//! Reservation commands (SPC-4 6.15, 6.16; SPC-2 RESERVE/RELEASE): every decoder runs over
//! the input as a CDB and as a parameter list; what decodes re-encodes to the same bytes
//! (the parameter lists, a TransportID), and every error is a sense that encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcopyd::scsi::persistent_reservation::{
    PrInCdb, PrOutCdb, PrOutParameters, RegisterAndMoveParameters, Spc2Cdb, TransportId,
};
use xcopyd::scsi::{DecodeError, Reader, Sense};

fn sense<T>(r: Result<T, DecodeError>) -> Option<T> {
    r.map_err(|e| Sense::from(e).encode()).ok()
}

fuzz_target!(|data: &[u8]| {
    let _ = sense(PrInCdb::decode(data));
    if let Some(c) = sense(PrOutCdb::decode(data)) {
        let _ = sense(c.reservation_type());
        assert_eq!(PrOutCdb::decode(&c.encode()), Ok(c));
    }
    let _ = sense(Spc2Cdb::decode(data));
    let len = data.len() as u32;
    for register in [false, true] {
        if let Some(p) = sense(PrOutParameters::decode(data, len, register)) {
            // Padding inside TransportIDs is not kept: compare what the list says.
            let again = PrOutParameters::decode(&p.encode(), p.encode().len() as u32, register);
            assert_eq!(again, Ok(p));
        }
    }
    if let Some(p) = sense(RegisterAndMoveParameters::decode(data, len)) {
        let bytes = p.encode();
        assert_eq!(
            RegisterAndMoveParameters::decode(&bytes, bytes.len() as u32),
            Ok(p)
        );
    }
    if let Some(t) = sense(TransportId::decode(&mut Reader::new(data))) {
        let mut bytes = Vec::new();
        t.encode(&mut bytes);
        assert_eq!(TransportId::decode(&mut Reader::new(&bytes)), Ok(t));
    }
});
