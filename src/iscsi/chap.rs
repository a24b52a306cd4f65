//! CHAP with MD5 (RFC 1994, RFC 7143 12.1.3) as both ends compute it: the response to a
//! challenge, fresh challenges, constant-time verification, and the binary values' text
//! forms.

use md5::{Digest, Md5};

/// Bytes of every challenge the target sends.
pub const CHALLENGE_LEN: usize = 16;
/// Shortest CHAP secret accepted (RFC 7143 9.2.1: at least 96 bits).
pub const MIN_SECRET_LEN: usize = 12;
/// Longest CHAP secret or challenge accepted (RFC 7143 12.1.3: the binary value's bound).
pub const MAX_SECRET_LEN: usize = 1024;

/// CHAP_R for (identifier, secret, challenge): MD5(id || secret || challenge) (RFC 1994 4.1).
pub fn chap_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([id]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

/// A fresh CHAP identifier and challenge from the OS's random source.
pub fn new_challenge() -> Result<(u8, Vec<u8>), getrandom::Error> {
    let mut bytes = [0u8; 1 + CHALLENGE_LEN];
    getrandom::fill(&mut bytes)?;
    let [id, challenge @ ..] = bytes;
    Ok((id, challenge.to_vec()))
}

/// Whether `response` is the right answer, compared in constant time.
pub fn verify(id: u8, secret: &[u8], challenge: &[u8], response: &[u8]) -> bool {
    let expected = chap_response(id, secret, challenge);
    response.len() == expected.len()
        && response
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A CHAP binary value as RFC 7143 6.1 writes it: `0x` hex or `0b` base64.
pub fn decode_binary(s: &str) -> Option<Vec<u8>> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.len() > 2 * MAX_SECRET_LEN {
            return None;
        }
        return hex::decode(h).ok();
    }
    let b = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B"))?;
    if b.len() > 2 * MAX_SECRET_LEN {
        return None;
    }
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(b).ok()
}

/// A CHAP binary value in the `0x` hex form.
pub fn encode_binary(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1994_md5_response() {
        // MD5(0x01 || "secretsecret" || 00..0f), computed independently (python hashlib).
        let c: Vec<u8> = (0..16).collect();
        assert_eq!(
            hex::encode(chap_response(1, b"secretsecret", &c)),
            "226dc576c33f04ff9c3a200ffe35f442"
        );
        assert!(verify(
            1,
            b"secretsecret",
            &c,
            &chap_response(1, b"secretsecret", &c)
        ));
        assert!(!verify(
            2,
            b"secretsecret",
            &c,
            &chap_response(1, b"secretsecret", &c)
        ));
        assert!(!verify(1, b"secretsecret", &c, &[0; 15]));
    }

    #[test]
    fn challenges_do_not_repeat() {
        let a = new_challenge().unwrap();
        let b = new_challenge().unwrap();
        assert_eq!(a.1.len(), CHALLENGE_LEN);
        assert_ne!(a.1, b.1, "16 random bytes twice the same");
    }

    #[test]
    fn binary_values() {
        assert_eq!(decode_binary("0x00ff"), Some(vec![0, 0xff]));
        assert_eq!(decode_binary("0bAP8="), Some(vec![0, 0xff]));
        assert_eq!(decode_binary("00ff"), None);
        assert_eq!(decode_binary("0x0"), None);
        assert_eq!(encode_binary(&[0xab, 1]), "0xab01");
    }
}
