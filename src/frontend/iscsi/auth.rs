//! Who may log in, and how they prove it (RFC 7143 9, 12.1.3): the daemon's `[[initiator]]`
//! table and CHAP with MD5 (RFC 1994), one-way or mutual.
//!
//! - With no table, any initiator name is admitted without authentication (the daemon allows
//!   that only on a loopback listener unless `[iscsi] allow_anonymous = true`).
//! - With a table, only the names listed may log in (normal and discovery sessions alike),
//!   each proving its CHAP secret; an entry with a mutual secret also answers the
//!   initiator's challenge, so the initiator knows it reached this target.
//! - Names compare case-insensitively (RFC 3722 case-folds iSCSI names).
//! - Challenges and identifiers come from the OS's random source, 16 bytes each time.
//! - A response is compared in constant time; an initiator's challenge equal to the one the
//!   target sent (a reflection) is refused, as is a mutual secret equal to the initiator's.

use std::collections::HashMap;

use crate::iscsi::chap::{MAX_SECRET_LEN, MIN_SECRET_LEN};

/// One CHAP identity: a user name and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Chap {
    pub user: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Chap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("Chap")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What an admitted initiator must prove, and what the target proves back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The initiator's CHAP identity (CHAP_N / its secret).
    pub chap: Chap,
    /// The target's identity for mutual CHAP, when the initiator asks for it.
    pub mutual: Option<Chap>,
}

/// How an initiator name is let in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// No table: anyone, without authentication.
    Anonymous,
    /// Listed: with these credentials.
    Chap(Credentials),
    /// Not listed in a table that exists.
    Refused,
}

/// The `[[initiator]]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Initiators {
    /// Keyed by the lowercased initiator name; `None` = no table (anonymous logins).
    table: Option<HashMap<String, Credentials>>,
}

/// Why an `[[initiator]]` entry is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    #[error("initiator {0:?} is listed twice")]
    Duplicate(String),
    #[error("initiator {name:?}: {what} must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} bytes")]
    SecretLength { name: String, what: &'static str },
    #[error("initiator {0:?}: the mutual CHAP secret must differ from the initiator's")]
    SameSecret(String),
    #[error("initiator {0:?}: a CHAP user name must be 1 to 255 bytes of text")]
    User(String),
}

impl Initiators {
    /// No table: every name may log in without authentication.
    pub fn anonymous() -> Self {
        Self { table: None }
    }

    /// A table of (initiator name, credentials): only those may log in.
    pub fn listed(
        entries: impl IntoIterator<Item = (String, Credentials)>,
    ) -> Result<Self, AuthConfigError> {
        let mut table = HashMap::new();
        for (name, c) in entries {
            check_chap(&name, &c.chap, "chap_secret")?;
            if let Some(m) = &c.mutual {
                check_chap(&name, m, "mutual_chap_secret")?;
                if m.secret == c.chap.secret {
                    return Err(AuthConfigError::SameSecret(name));
                }
            }
            if table.insert(name.to_ascii_lowercase(), c).is_some() {
                return Err(AuthConfigError::Duplicate(name));
            }
        }
        Ok(Self { table: Some(table) })
    }

    /// Whether logins need authentication at all.
    pub fn is_anonymous(&self) -> bool {
        self.table.is_none()
    }

    /// How `initiator` is let in.
    pub fn admit(&self, initiator: &str) -> Admission {
        match &self.table {
            None => Admission::Anonymous,
            Some(t) => t
                .get(&initiator.to_ascii_lowercase())
                .map_or(Admission::Refused, |c| Admission::Chap(c.clone())),
        }
    }
}

fn check_chap(name: &str, c: &Chap, what: &'static str) -> Result<(), AuthConfigError> {
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&c.secret.len()) {
        return Err(AuthConfigError::SecretLength {
            name: name.to_string(),
            what,
        });
    }
    if c.user.is_empty() || c.user.len() > 255 || c.user.contains('\0') {
        return Err(AuthConfigError::User(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(secret: &str, mutual: Option<&str>) -> Credentials {
        Credentials {
            chap: Chap {
                user: "u".into(),
                secret: secret.as_bytes().to_vec(),
            },
            mutual: mutual.map(|m| Chap {
                user: "t".into(),
                secret: m.as_bytes().to_vec(),
            }),
        }
    }

    /// A secret never reaches a log line.
    #[test]
    fn chap_debug_hides_the_secret() {
        assert_eq!(
            format!("{:?}", creds("twelve-chars", None).chap),
            "Chap { user: \"u\", .. }"
        );
    }

    #[test]
    fn table_admits_only_listed_names_case_insensitively() {
        assert_eq!(Initiators::anonymous().admit("iqn.x"), Admission::Anonymous);
        let t = Initiators::listed([("iqn.X:Allowed".to_string(), creds("twelve-chars", None))])
            .unwrap();
        assert_eq!(
            t.admit("IQN.x:allowed"),
            Admission::Chap(creds("twelve-chars", None))
        );
        assert_eq!(t.admit("iqn.x:other"), Admission::Refused);
        let short = Initiators::listed([("a".to_string(), creds("short", None))]);
        assert!(matches!(short, Err(AuthConfigError::SecretLength { .. })));
        let same =
            Initiators::listed([("a".to_string(), creds("twelve-chars", Some("twelve-chars")))]);
        assert_eq!(same, Err(AuthConfigError::SameSecret("a".into())));
        let twice = Initiators::listed([
            ("a".to_string(), creds("twelve-chars", None)),
            ("A".to_string(), creds("twelve-chars", None)),
        ]);
        assert_eq!(twice, Err(AuthConfigError::Duplicate("A".into())));
    }
}
