//! Text keys (RFC 7143 6.1): the `key=value\0` lists of Login and Text PDUs, parsed with
//! their bounds, as the target and the initiator both read and write them.

use std::collections::HashSet;

/// Longest key name (RFC 7143 6.1) and value (6.1: 255, except some keys up to 8192).
const MAX_KEY_LEN: usize = 63;
const MAX_VALUE_LEN: usize = 8192;
/// Most keys one request may carry: far more than any negotiation needs (about 30 keys
/// exist), few enough that answering them is cheap.
pub const MAX_KEYS: usize = 256;

/// A key=value list; order kept (responses answer in request order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextKeys(pub Vec<(String, String)>);

/// Why a key list does not parse (the target answers Initiator Error, 0201... or a Reject).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    #[error("key=value pair without '='")]
    MissingEquals,
    #[error("key or value is not UTF-8")]
    NotUtf8,
    #[error("key or value too long")]
    TooLong,
    #[error("key {0} sent twice")]
    Duplicate(String),
    #[error("more than {MAX_KEYS} keys")]
    TooMany,
}

impl TextKeys {
    /// Parses `key=value\0...` (a missing final NUL is accepted; empty entries are skipped).
    /// Linear in the input: keys are checked for repeats in a set, and there are at most
    /// [`MAX_KEYS`].
    pub fn decode(bytes: &[u8]) -> Result<Self, TextError> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for entry in bytes.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            if out.len() == MAX_KEYS {
                return Err(TextError::TooMany);
            }
            let eq = entry
                .iter()
                .position(|&b| b == b'=')
                .ok_or(TextError::MissingEquals)?;
            let (k, v) = entry.split_at(eq);
            let v = v.get(1..).unwrap_or_default();
            if k.is_empty() || k.len() > MAX_KEY_LEN || v.len() > MAX_VALUE_LEN {
                return Err(TextError::TooLong);
            }
            if !seen.insert(k) {
                return Err(TextError::Duplicate(String::from_utf8_lossy(k).into()));
            }
            let k = std::str::from_utf8(k).map_err(|_| TextError::NotUtf8)?;
            let v = std::str::from_utf8(v).map_err(|_| TextError::NotUtf8)?;
            out.push((k.into(), v.into()));
        }
        Ok(Self(out))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, key: &str, value: impl Into<String>) {
        self.0.push((key.into(), value.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> TextKeys {
        TextKeys::decode(s.replace('|', "\0").as_bytes()).unwrap()
    }

    #[test]
    fn text_keys_parse_and_reject_garbage() {
        let k = keys("A=1|B=x,y|");
        assert_eq!(k.get("B"), Some("x,y"));
        assert_eq!(TextKeys::decode(&k.encode()).unwrap(), k);
        assert_eq!(TextKeys::decode(b"A\0"), Err(TextError::MissingEquals));
        assert_eq!(
            TextKeys::decode(b"A=1\0A=2\0"),
            Err(TextError::Duplicate("A".into()))
        );
        assert_eq!(TextKeys::decode(b"\xff=1"), Err(TextError::NotUtf8));
        assert_eq!(
            TextKeys::decode(&[b'k'; 64]).unwrap_err(),
            TextError::MissingEquals
        );
        let mut long = vec![b'k'; 64];
        long.extend_from_slice(b"=1");
        assert_eq!(TextKeys::decode(&long), Err(TextError::TooLong));
    }

    #[test]
    fn key_lists_are_bounded_and_checked_in_linear_time() {
        let many: String = (0..MAX_KEYS + 1).map(|i| format!("k{i}=v\0")).collect();
        assert_eq!(TextKeys::decode(many.as_bytes()), Err(TextError::TooMany));
        let ok: String = (0..MAX_KEYS).map(|i| format!("k{i}=v\0")).collect();
        assert_eq!(TextKeys::decode(ok.as_bytes()).unwrap().0.len(), MAX_KEYS);
    }

    /// RFC 7143 6.1: a key name is at most 63 bytes; values here at most 8192. Both bounds
    /// are reached, not passed.

    #[test]
    fn a_key_and_a_value_of_the_longest_length_are_taken() {
        let k = "k".repeat(MAX_KEY_LEN);
        let v = "v".repeat(MAX_VALUE_LEN);
        let t = TextKeys::decode(format!("{k}={v}").as_bytes()).unwrap();
        assert_eq!(t.get(&k), Some(v.as_str()));
        let long = "v".repeat(MAX_VALUE_LEN + 1);
        assert_eq!(
            TextKeys::decode(format!("k={long}").as_bytes()),
            Err(TextError::TooLong)
        );
    }
}
