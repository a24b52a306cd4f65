//! The daemon's `[ndmp]` table (DESIGN.md "NDMP").

use std::path::Path;

use serde::Deserialize;

/// NDMP's well-known port (ndmp4.x NDMP4PORT), on loopback unless the config says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10000";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NdmpTable {
    listen: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<std::path::PathBuf>,
    allow_text_auth: Option<bool>,
    initiator: Option<String>,
}

/// Who may use the NDMP server and where it listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NdmpConfig {
    pub listen: String,
    pub user: String,
    pub password: String,
    /// AUTH_TEXT (the password in clear on the wire) is refused unless this is set.
    pub allow_text_auth: bool,
    /// The initiator name the inventory's `allow` lists match for this user.
    pub initiator: String,
}

impl NdmpConfig {
    /// Reads `[ndmp]` from the daemon config; `Ok(None)` when there is none.
    pub fn from_doc(doc: &toml::Table, base_dir: &Path) -> Result<Option<Self>, String> {
        let Some(v) = doc.get("ndmp") else {
            return Ok(None);
        };
        let t: NdmpTable = v.clone().try_into().map_err(|e| format!("[ndmp]: {e}"))?;
        let password = match (t.password, t.password_file) {
            (Some(p), None) => p,
            (None, Some(f)) => {
                let path = base_dir.join(f);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("[ndmp] password_file {}: {e}", path.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_string()
            }
            (Some(_), Some(_)) => return Err("[ndmp]: password and password_file both set".into()),
            (None, None) => {
                return Err("[ndmp]: a password (or password_file) is required: NDMP clients always authenticate".into())
            }
        };
        if password.is_empty() {
            return Err("[ndmp] password: empty".into());
        }
        let user = t.user.unwrap_or_else(|| "ndmp".into());
        Ok(Some(Self {
            listen: t.listen.unwrap_or_else(|| DEFAULT_LISTEN.into()),
            initiator: t.initiator.unwrap_or_else(|| format!("ndmp:{user}")),
            user,
            password,
            allow_text_auth: t.allow_text_auth.unwrap_or(false),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<NdmpConfig>, String> {
        NdmpConfig::from_doc(&text.parse().unwrap(), Path::new("/"))
    }

    #[test]
    fn keys_defaults_and_refusals() {
        assert_eq!(parse("").unwrap(), None);
        let c = parse("[ndmp]\npassword = \"secret\"\n").unwrap().unwrap();
        assert_eq!(
            c,
            NdmpConfig {
                listen: "127.0.0.1:10000".into(),
                user: "ndmp".into(),
                password: "secret".into(),
                allow_text_auth: false,
                initiator: "ndmp:ndmp".into(),
            }
        );
        let c = parse("[ndmp]\nuser = \"dma\"\npassword = \"s\"\ninitiator = \"ndmp:backup01\"\nallow_text_auth = true\nlisten = \"0.0.0.0:10000\"\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.initiator.as_str(), c.allow_text_auth, c.listen.as_str()),
            ("ndmp:backup01", true, "0.0.0.0:10000")
        );
        assert!(parse("[ndmp]\n").unwrap_err().contains("password"));
        assert!(parse("[ndmp]\npassword = \"\"\n")
            .unwrap_err()
            .contains("empty"));
        assert!(parse("[ndmp]\npassword = \"x\"\nfoo = 1\n")
            .unwrap_err()
            .contains("foo"));
    }
}
