//! Reading binary or hex input the way sg3_utils' `--inhex` does.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Reads FILE, or standard input for `-`.
/// The most input the CLI reads from one file or standard input: an EXTENDED COPY
/// parameter list of the most descriptors and inline data any copy manager advertises is
/// far smaller (hex text of one is about three times its size).
pub const MAX_INPUT: u64 = 64 << 20;

/// Reads a file, or standard input for `-`, refusing more than [`MAX_INPUT`] bytes (so
/// `xcopy decode /dev/zero` ends with an error instead of using all memory).
pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let what = if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        "standard input".to_string()
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", path.display()))?;
        path.display().to_string()
    };
    if bytes.len() as u64 > MAX_INPUT {
        anyhow::bail!("{what}: more than {MAX_INPUT} bytes, which no parameter list is");
    }
    Ok(bytes)
}

/// Parses hex text: bytes as 1-2 digit tokens separated by white space or commas, `#`
/// starting a comment to the end of the line; longer tokens of even length are read as runs
/// of bytes (so both `00 8f 00 60` and `008f0060` work).
pub fn parse_hex_text(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for token in line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
        {
            let token = token.strip_prefix("0x").unwrap_or(token);
            let digits: Vec<char> = token.chars().collect();
            if !digits.iter().all(char::is_ascii_hexdigit) {
                bail!("line {}: {token:?} is not hex", number + 1);
            }
            if digits.len() <= 2 {
                out.push(u8::from_str_radix(token, 16)?);
            } else if digits.len().is_multiple_of(2) {
                for pair in digits.chunks(2) {
                    out.push(u8::from_str_radix(&pair.iter().collect::<String>(), 16)?);
                }
            } else {
                bail!(
                    "line {}: {token:?} has an odd number of hex digits",
                    number + 1
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sg3_style_hex() {
        let text = "# vpd page\n00 8f 00,60\n0x1 abcd # tail\n";
        assert_eq!(
            parse_hex_text(text).unwrap(),
            [0x00, 0x8f, 0x00, 0x60, 0x01, 0xab, 0xcd]
        );
        assert!(parse_hex_text("0g").is_err());
        assert!(parse_hex_text("abc").is_err());
    }
}
