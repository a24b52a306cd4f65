//! The digest of an image that DATA_GET_ENV returns beside BYTES, chosen by the
//! environment's `DIGEST`: `crc32c` (the default: CRC-32C, the checksum of iSCSI's data
//! digests and of S3's `x-amz-checksum-crc32c`, computed by the CPU's CRC instruction at
//! many GB/s, so it never holds a backup back), `md5` (what `md5sum` of the disk prints,
//! about 500 MiB/s a core: a faster copy waits for it) or `none`. The variable it returns
//! is named after it: `CRC32C` (8 hex digits) or `MD5` (32).

use md5::{Digest as _, Md5};

use super::message::Pval;

/// The digest a DMA asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Crc32c,
    Md5,
}

impl Kind {
    /// The digest `env`'s DIGEST names: Ok(None) for `none`, Err for a name we do not know.
    pub fn from_env(env: &[Pval]) -> Result<Option<Self>, String> {
        match env.iter().rev().find(|p| p.name == "DIGEST") {
            None => Ok(Some(Self::Crc32c)),
            Some(p) => match p.value.to_ascii_lowercase().as_str() {
                "crc32c" => Ok(Some(Self::Crc32c)),
                "md5" => Ok(Some(Self::Md5)),
                "none" => Ok(None),
                other => Err(format!(
                    "DIGEST={other}: not one of crc32c (the default), md5, none"
                )),
            },
        }
    }

    /// The environment variable it is returned in.
    pub fn variable(self) -> &'static str {
        match self {
            Self::Crc32c => "CRC32C",
            Self::Md5 => "MD5",
        }
    }
}

/// The variables a digest may be returned in.
pub const VARIABLES: [&str; 2] = ["CRC32C", "MD5"];

/// A digest being computed.
pub enum Hasher {
    Crc32c(u32),
    Md5(Box<Md5>),
}

impl Hasher {
    pub fn new(kind: Kind) -> Self {
        match kind {
            Kind::Crc32c => Self::Crc32c(0),
            Kind::Md5 => Self::Md5(Box::default()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, bytes),
            Self::Md5(md5) => md5.update(bytes),
        }
    }

    /// The finished digest: its variable and its value in hex.
    pub fn finish(self) -> Value {
        match self {
            Self::Crc32c(crc) => Value {
                kind: Kind::Crc32c,
                hex: hex::encode(crc.to_be_bytes()),
            },
            Self::Md5(md5) => Value {
                kind: Kind::Md5,
                hex: hex::encode(md5.finalize()),
            },
        }
    }
}

/// A finished digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    pub kind: Kind,
    pub hex: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers: RFC 3720 B.4's CRC-32C of 32 zero bytes and the check value of
    /// "123456789" (e3069283), and RFC 1321's MD5 of "abc".
    #[test]
    fn known_answers() {
        let hash = |kind, bytes: &[u8]| {
            let mut h = Hasher::new(kind);
            for piece in bytes.chunks(5) {
                h.update(piece);
            }
            h.finish().hex
        };
        assert_eq!(hash(Kind::Crc32c, &[0; 32]), "8a9136aa");
        assert_eq!(hash(Kind::Crc32c, b"123456789"), "e3069283");
        assert_eq!(hash(Kind::Md5, b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn digest_from_the_environment() {
        let env = |v: &str| vec![Pval::new("FILESYSTEM", "d"), Pval::new("DIGEST", v)];
        assert_eq!(Kind::from_env(&[]), Ok(Some(Kind::Crc32c)));
        assert_eq!(Kind::from_env(&env("MD5")), Ok(Some(Kind::Md5)));
        assert_eq!(Kind::from_env(&env("crc32c")), Ok(Some(Kind::Crc32c)));
        assert_eq!(Kind::from_env(&env("none")), Ok(None));
        assert!(Kind::from_env(&env("sha1")).is_err());
    }
}
