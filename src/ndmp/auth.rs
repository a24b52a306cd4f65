//! NDMP MD5 authentication (NDMP v4 CONNECT_CLIENT_AUTH, AUTH_MD5): the digest is MD5 over a
//! 128-byte message of PASSWORD, zero PADDING, the 64-byte CHALLENGE, PADDING, PASSWORD,
//! where each PADDING is 64 minus the password length. Passwords longer than 32 bytes
//! would make the fields overlap; as every implementation in the field (ndmjob's
//! ndml_md5.c among them), only the first 32 bytes are used.

use md5::{Digest, Md5};

pub const CHALLENGE_LEN: usize = 64;

/// The digest a client proves it knows `password` with, for `challenge`.
pub fn digest(challenge: &[u8; CHALLENGE_LEN], password: &str) -> [u8; 16] {
    let pw = password.as_bytes();
    let pw = pw.get(..32).unwrap_or(pw);
    let n = pw.len();
    let mut message = [0u8; 128];
    message[64 - n..128 - n].copy_from_slice(challenge);
    message[..n].copy_from_slice(pw);
    message[128 - n..].copy_from_slice(pw);
    Md5::digest(message).into()
}

/// Compares digests in time independent of where they differ.
pub fn same(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_places_password_challenge_password() {
        let challenge: [u8; 64] = std::array::from_fn(|i| i as u8);
        // The 128-byte message for "pw": "pw", 62 zeros... built by hand and hashed.
        let mut m = [0u8; 128];
        m[..2].copy_from_slice(b"pw");
        m[62..126].copy_from_slice(&challenge);
        m[126..].copy_from_slice(b"pw");
        let want: [u8; 16] = Md5::digest(m).into();
        assert_eq!(digest(&challenge, "pw"), want);
        // Only the first 32 bytes of a long password count.
        let long = "x".repeat(40);
        assert_eq!(digest(&challenge, &long), digest(&challenge, &long[..32]));
        assert_ne!(digest(&challenge, "pw"), digest(&challenge, "pW"));
        assert!(same(&want, &want));
        assert!(!same(&want, &[0; 16]));
    }
}
