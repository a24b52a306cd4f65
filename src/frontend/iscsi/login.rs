//! Login and text negotiation (RFC 7143 6, 13): `key=value\0` lists, the security stage
//! (who may log in and how they prove it: [`super::auth`]), and the operational keys this
//! target supports. Pure but for the challenge's randomness: the target feeds it each
//! request's keys and sends back what it returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::auth::{Admission, Credentials, Initiators};
use crate::iscsi::chap as auth;
use crate::iscsi::text::TextKeys;

/// Largest data segment this target accepts (declared as MaxRecvDataSegmentLength): bounds
/// the memory one connection holds for a PDU.
pub const TARGET_MAX_RECV_DATA_SEGMENT_LENGTH: u32 = 256 * 1024;
/// Largest burst offered (the negotiated value is at most this).
pub const TARGET_MAX_BURST_LENGTH: u32 = 1024 * 1024;
/// Largest unsolicited burst offered.
pub const TARGET_FIRST_BURST_LENGTH: u32 = 256 * 1024;

/// The result of operational negotiation for one connection/session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub header_digest: bool,
    pub data_digest: bool,
    /// The most the initiator accepts in one PDU (what we may send).
    pub initiator_max_recv_data_segment_length: u32,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub immediate_data: bool,
    pub initial_r2t: bool,
    pub initiator_name: String,
    pub target_name: String,
    pub discovery: bool,
}

impl Default for Params {
    /// RFC 7143 13 defaults.
    fn default() -> Self {
        Self {
            header_digest: false,
            data_digest: false,
            initiator_max_recv_data_segment_length: 8192,
            max_burst_length: 262_144,
            first_burst_length: 65_536,
            immediate_data: true,
            initial_r2t: true,
            initiator_name: String::new(),
            target_name: String::new(),
            discovery: false,
        }
    }
}

/// Login failure: Status-Class and Status-Detail (RFC 7143 11.13.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginStatus(pub u8, pub u8);

impl LoginStatus {
    pub const SUCCESS: Self = Self(0, 0);
    pub const INITIATOR_ERROR: Self = Self(2, 0);
    pub const AUTHENTICATION_FAILURE: Self = Self(2, 1);
    pub const AUTHORIZATION_FAILURE: Self = Self(2, 2);
    pub const TOO_MANY_CONNECTIONS: Self = Self(2, 6);
    pub const NOT_FOUND: Self = Self(2, 3);
    pub const UNSUPPORTED_VERSION: Self = Self(2, 5);
    pub const MISSING_PARAMETER: Self = Self(2, 7);
    pub const SESSION_TYPE_NOT_SUPPORTED: Self = Self(2, 9);
    pub const SESSION_DOES_NOT_EXIST: Self = Self(2, 0x0a);
    pub const INVALID_DURING_LOGIN: Self = Self(2, 0x0b);
    pub const TARGET_ERROR: Self = Self(3, 0);
    pub const OUT_OF_RESOURCES: Self = Self(3, 2);
}

/// Login stages (CSG/NSG, RFC 7143 11.12.3).
pub mod stage {
    pub const SECURITY: u8 = 0;
    pub const OPERATIONAL: u8 = 1;
    pub const FULL_FEATURE: u8 = 3;
}

/// Per-connection login negotiation state.
#[derive(Debug)]
pub struct Negotiation {
    target_name: String,
    initiators: Arc<Initiators>,
    /// What the named initiator must prove (set by the first request).
    credentials: Option<Credentials>,
    pub params: Params,
    /// CHAP: the identifier and challenge we sent, when waiting for CHAP_N/CHAP_R.
    chap_challenge: Option<(u8, Vec<u8>)>,
    authenticated: bool,
    sent_declaratives: bool,
    first: bool,
    /// Why the last request failed, for the log (a Login Response carries only a status).
    pub refusal: Option<String>,
}

impl Negotiation {
    /// A login to `target_name`, admitting the initiators `initiators` allows.
    pub fn new(target_name: &str, initiators: Arc<Initiators>) -> Self {
        Self {
            target_name: target_name.into(),
            initiators,
            credentials: None,
            params: Params::default(),
            chap_challenge: None,
            authenticated: false,
            sent_declaratives: false,
            first: true,
            refusal: None,
        }
    }

    /// Whether the security stage may be left (authentication done, or none required).
    pub fn may_leave_security(&self) -> bool {
        self.credentials.is_none() || self.authenticated
    }

    /// Whether a CHAP exchange is mid-way (the login must not transit yet).
    pub fn chap_pending(&self) -> bool {
        self.chap_challenge.is_some()
    }

    /// Ends the login with `status`, keeping `why` for the log.
    fn refuse<T>(&mut self, status: LoginStatus, why: impl Into<String>) -> Result<T, LoginStatus> {
        self.refusal = Some(why.into());
        Err(status)
    }

    /// The first request: session type, the names, and who this initiator must be.
    fn first_request(&mut self, keys: &TextKeys, out: &mut TextKeys) -> Result<(), LoginStatus> {
        self.first = false;
        self.params.discovery = match keys.get("SessionType") {
            None | Some("Normal") => false,
            Some("Discovery") => true,
            Some(other) => {
                return self.refuse(
                    LoginStatus::SESSION_TYPE_NOT_SUPPORTED,
                    format!("SessionType={other}"),
                )
            }
        };
        let Some(name) = keys.get("InitiatorName") else {
            return self.refuse(LoginStatus::MISSING_PARAMETER, "no InitiatorName");
        };
        self.params.initiator_name = name.into();
        match self.initiators.admit(name) {
            Admission::Anonymous => {}
            Admission::Chap(c) => self.credentials = Some(c),
            Admission::Refused => {
                return self.refuse(
                    LoginStatus::AUTHORIZATION_FAILURE,
                    "initiator name not in the [[initiator]] table",
                )
            }
        }
        if !self.params.discovery {
            let Some(t) = keys.get("TargetName") else {
                return self.refuse(LoginStatus::MISSING_PARAMETER, "no TargetName");
            };
            if t != self.target_name {
                return self.refuse(LoginStatus::NOT_FOUND, format!("no target {t:?}"));
            }
            self.params.target_name = t.into();
            // Sent in the first response of a normal session (RFC 7143 13.9).
            out.push("TargetPortalGroupTag", "1");
        }
        Ok(())
    }

    /// CHAP_N/CHAP_R against our challenge, and (mutual CHAP) the answer to the
    /// initiator's CHAP_I/CHAP_C.
    fn chap_answer(&mut self, keys: &TextKeys, out: &mut TextKeys) -> Result<(), LoginStatus> {
        let (Some((id, challenge)), Some(n), Some(r)) = (
            self.chap_challenge.clone(),
            keys.get("CHAP_N"),
            keys.get("CHAP_R"),
        ) else {
            return Ok(());
        };
        // One answer per challenge: right or wrong, the challenge is spent.
        self.chap_challenge = None;
        let Some(c) = self.credentials.clone() else {
            return self.refuse(LoginStatus::AUTHENTICATION_FAILURE, "CHAP not configured");
        };
        let response = auth::decode_binary(r).unwrap_or_default();
        if n != c.chap.user || !auth::verify(id, &c.chap.secret, &challenge, &response) {
            return self.refuse(
                LoginStatus::AUTHENTICATION_FAILURE,
                format!("wrong CHAP response for user {n:?}"),
            );
        }
        match (keys.get("CHAP_I"), keys.get("CHAP_C")) {
            (None, None) => {}
            (Some(i), Some(cc)) => {
                let theirs = auth::decode_binary(cc).unwrap_or_default();
                let Some(mutual) = c.mutual else {
                    return self.refuse(
                        LoginStatus::AUTHENTICATION_FAILURE,
                        "mutual CHAP asked for, none configured",
                    );
                };
                let Ok(i) = i.parse::<u8>() else {
                    return self.refuse(LoginStatus::AUTHENTICATION_FAILURE, "bad CHAP_I");
                };
                if theirs.is_empty() || theirs.len() > auth::MAX_SECRET_LEN || theirs == challenge {
                    return self.refuse(
                        LoginStatus::AUTHENTICATION_FAILURE,
                        "mutual CHAP challenge empty, too long or our own (reflection)",
                    );
                }
                out.push("CHAP_N", mutual.user.clone());
                out.push(
                    "CHAP_R",
                    auth::encode_binary(&auth::chap_response(i, &mutual.secret, &theirs)),
                );
            }
            _ => {
                return self.refuse(
                    LoginStatus::AUTHENTICATION_FAILURE,
                    "CHAP_I without CHAP_C or the reverse",
                )
            }
        }
        self.authenticated = true;
        Ok(())
    }

    /// Answers one key of a Login Request in stage `csg` into `out`.
    fn one_key(
        &mut self,
        csg: u8,
        k: &str,
        v: &str,
        out: &mut TextKeys,
    ) -> Result<(), LoginStatus> {
        match k {
            "InitiatorName" | "TargetName" | "SessionType" | "InitiatorAlias" => {}
            "AuthMethod" if csg == stage::SECURITY => {
                let offered: Vec<&str> = v.split(',').collect();
                let choice = match &self.credentials {
                    Some(_) if offered.contains(&"CHAP") => "CHAP",
                    Some(_) => {
                        return self.refuse(
                            LoginStatus::AUTHENTICATION_FAILURE,
                            format!("CHAP required, AuthMethod={v}"),
                        )
                    }
                    None if offered.contains(&"None") => "None",
                    None => "Reject",
                };
                out.push("AuthMethod", choice);
            }
            "CHAP_A" if csg == stage::SECURITY && self.credentials.is_some() => {
                if !v.split(',').any(|a| a == "5") {
                    return self.refuse(
                        LoginStatus::AUTHENTICATION_FAILURE,
                        format!("CHAP_A={v}: only MD5 (5)"),
                    );
                }
                let Ok((id, challenge)) = auth::new_challenge() else {
                    return self.refuse(LoginStatus::TARGET_ERROR, "no random bytes");
                };
                out.push("CHAP_A", "5");
                out.push("CHAP_I", id.to_string());
                out.push("CHAP_C", auth::encode_binary(&challenge));
                self.chap_challenge = Some((id, challenge));
            }
            "CHAP_N" | "CHAP_R" | "CHAP_I" | "CHAP_C" if csg == stage::SECURITY => {}
            "HeaderDigest" | "DataDigest" => {
                let choice = v
                    .split(',')
                    .find(|c| *c == "None" || *c == "CRC32C")
                    .unwrap_or("Reject");
                if k == "HeaderDigest" {
                    self.params.header_digest = choice == "CRC32C";
                } else {
                    self.params.data_digest = choice == "CRC32C";
                }
                out.push(k, choice);
            }
            "MaxRecvDataSegmentLength" => {
                let n = number(v, 512, 0xff_ffff)?;
                self.params.initiator_max_recv_data_segment_length = n;
            }
            "MaxBurstLength" => {
                let n = number(v, 512, 0xff_ffff)?.min(TARGET_MAX_BURST_LENGTH);
                self.params.max_burst_length = n;
                out.push(k, n.to_string());
            }
            "FirstBurstLength" => {
                let n = number(v, 512, 0xff_ffff)?.min(TARGET_FIRST_BURST_LENGTH);
                self.params.first_burst_length = n;
                out.push(k, n.to_string());
            }
            "ImmediateData" => {
                let b = boolean(v)?;
                self.params.immediate_data = b;
                out.push(k, yes_no(b));
            }
            "InitialR2T" => {
                let b = boolean(v)?;
                self.params.initial_r2t = b;
                out.push(k, yes_no(b));
            }
            // Only one R2T at a time, in order, ERL 0, one connection per session.
            "MaxOutstandingR2T" | "MaxConnections" => {
                number(v, 1, 65535)?;
                out.push(k, "1");
            }
            "DataPDUInOrder" | "DataSequenceInOrder" => {
                boolean(v)?;
                out.push(k, "Yes");
            }
            "ErrorRecoveryLevel" => {
                number(v, 0, 2)?;
                out.push(k, "0");
            }
            "DefaultTime2Wait" | "DefaultTime2Retain" => {
                let n = number(v, 0, 3600)?;
                let ours = if k == "DefaultTime2Wait" { n } else { 0 };
                out.push(k, ours.to_string());
            }
            "IFMarker" | "OFMarker" => out.push(k, "No"),
            _ if csg == stage::SECURITY && k.starts_with("CHAP_") => {
                return self.refuse(
                    LoginStatus::AUTHENTICATION_FAILURE,
                    format!("{k} out of place"),
                )
            }
            // A key this response already declares (TargetPortalGroupTag, which only a
            // target sends): no key is declared twice (RFC 7143 6.2), so the
            // initiator's copy gets no second answer.
            _ if out.get(k).is_some() => {}
            _ => out.push(k, "NotUnderstood"),
        }
        Ok(())
    }

    /// Answers one Login Request's keys in stage `csg`. Err ends the login with that status.
    pub fn login_keys(&mut self, csg: u8, keys: &TextKeys) -> Result<TextKeys, LoginStatus> {
        let mut out = TextKeys::default();
        if self.first {
            self.first_request(keys, &mut out)?;
        }
        for (k, v) in &keys.0 {
            if let Err(status) = self.one_key(csg, k, v, &mut out) {
                if self.refusal.is_none() {
                    self.refusal = Some(format!("{k}={v}: not a valid value"));
                }
                return Err(status);
            }
        }
        if csg == stage::SECURITY {
            self.chap_answer(keys, &mut out)?;
        }
        if csg == stage::OPERATIONAL && !self.sent_declaratives {
            self.sent_declaratives = true;
            out.push(
                "MaxRecvDataSegmentLength",
                TARGET_MAX_RECV_DATA_SEGMENT_LENGTH.to_string(),
            );
        }
        Ok(out)
    }
}

fn number(v: &str, min: u32, max: u32) -> Result<u32, LoginStatus> {
    match v.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(LoginStatus::INITIATOR_ERROR),
    }
}

fn boolean(v: &str) -> Result<bool, LoginStatus> {
    match v {
        "Yes" => Ok(true),
        "No" => Ok(false),
        _ => Err(LoginStatus::INITIATOR_ERROR),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

/// Text Request keys in full feature phase: SendTargets (RFC 7143 Annex C) and nothing else.
/// `targets` are (name, address "host:port,tpgt").
pub fn text_keys(keys: &TextKeys, targets: &BTreeMap<String, String>) -> TextKeys {
    let mut out = TextKeys::default();
    for (k, v) in &keys.0 {
        if k == "SendTargets" {
            for (name, addr) in targets {
                if v == "All" || v == name || v.is_empty() {
                    out.push("TargetName", name.clone());
                    out.push("TargetAddress", addr.clone());
                }
            }
        } else {
            out.push(k, "NotUnderstood");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::iscsi::auth::Chap;

    fn keys(s: &str) -> TextKeys {
        TextKeys::decode(s.replace('|', "\0").as_bytes()).unwrap()
    }

    #[test]
    fn normal_login_negotiates_operational_keys() {
        let mut n = Negotiation::new("iqn.t", anyone());
        let out = n
            .login_keys(
                stage::SECURITY,
                &keys("InitiatorName=iqn.i|TargetName=iqn.t|AuthMethod=CHAP,None"),
            )
            .unwrap();
        assert_eq!(out.get("AuthMethod"), Some("None"));
        assert_eq!(out.get("TargetPortalGroupTag"), Some("1"));
        let out = n
            .login_keys(
                stage::OPERATIONAL,
                &keys(
                    "HeaderDigest=CRC32C,None|DataDigest=None|MaxRecvDataSegmentLength=4096|\
                     MaxBurstLength=99999999|FirstBurstLength=4096|ImmediateData=No|\
                     InitialR2T=No|MaxOutstandingR2T=8|ErrorRecoveryLevel=2|X-foo=bar|\
                     DataPDUInOrder=No",
                ),
            )
            .unwrap_err();
        // MaxBurstLength over 2^24-1 is out of range.
        assert_eq!(out, LoginStatus::INITIATOR_ERROR);
        let out = n
            .login_keys(
                stage::OPERATIONAL,
                &keys(
                    "HeaderDigest=CRC32C,None|DataDigest=None|MaxRecvDataSegmentLength=4096|\
                     MaxBurstLength=9999999|FirstBurstLength=4096|ImmediateData=No|\
                     InitialR2T=No|MaxOutstandingR2T=8|ErrorRecoveryLevel=2|X-foo=bar|\
                     DataPDUInOrder=No",
                ),
            )
            .unwrap();
        assert_eq!(out.get("HeaderDigest"), Some("CRC32C"));
        assert_eq!(out.get("DataDigest"), Some("None"));
        assert_eq!(out.get("MaxBurstLength"), Some("1048576"));
        assert_eq!(out.get("MaxOutstandingR2T"), Some("1"));
        assert_eq!(out.get("ErrorRecoveryLevel"), Some("0"));
        assert_eq!(out.get("X-foo"), Some("NotUnderstood"));
        assert_eq!(out.get("DataPDUInOrder"), Some("Yes"));
        assert_eq!(out.get("MaxRecvDataSegmentLength"), Some("262144"));
        let p = &n.params;
        assert!(p.header_digest && !p.data_digest && !p.immediate_data && !p.initial_r2t);
        assert_eq!(p.initiator_max_recv_data_segment_length, 4096);
        assert_eq!(p.first_burst_length, 4096);
    }

    /// The iscsi_pdu fuzz target's invariant (a login response decodes as a key list): an
    /// initiator sending the target-only key TargetPortalGroupTag got a response naming it
    /// twice ("1" and "NotUnderstood"), which RFC 7143 6.2 forbids and TextKeys::decode
    /// rejects as Duplicate.
    #[test]
    fn initiator_target_portal_group_tag_is_answered_once() {
        let mut n = Negotiation::new("iqn.t", anyone());
        let out = n
            .login_keys(
                stage::SECURITY,
                &keys("InitiatorName=iqn.i|TargetName=iqn.t|TargetPortalGroupTag=7"),
            )
            .unwrap();
        assert_eq!(TextKeys::decode(&out.encode()).as_ref(), Ok(&out));
        assert_eq!(out.get("TargetPortalGroupTag"), Some("1"));
    }

    #[test]
    fn first_request_checks_names_and_session_type() {
        let mut n = Negotiation::new("iqn.t", anyone());
        assert_eq!(
            n.login_keys(0, &keys("InitiatorName=i|TargetName=iqn.other")),
            Err(LoginStatus::NOT_FOUND)
        );
        let mut n = Negotiation::new("iqn.t", anyone());
        assert_eq!(
            n.login_keys(0, &keys("TargetName=iqn.t")),
            Err(LoginStatus::MISSING_PARAMETER)
        );
        let mut n = Negotiation::new("iqn.t", anyone());
        let out = n
            .login_keys(1, &keys("InitiatorName=i|SessionType=Discovery"))
            .unwrap();
        assert!(n.params.discovery);
        assert_eq!(out.get("TargetPortalGroupTag"), None);
        let mut n = Negotiation::new("iqn.t", anyone());
        assert_eq!(
            n.login_keys(0, &keys("InitiatorName=i|SessionType=Weird")),
            Err(LoginStatus::SESSION_TYPE_NOT_SUPPORTED)
        );
    }

    fn anyone() -> Arc<Initiators> {
        Arc::new(Initiators::anonymous())
    }

    fn table(mutual: bool) -> Arc<Initiators> {
        let c = Credentials {
            chap: Chap {
                user: "u".into(),
                secret: b"secretsecret".to_vec(),
            },
            mutual: mutual.then(|| Chap {
                user: "tgt".into(),
                secret: b"targetsecret".to_vec(),
            }),
        };
        Arc::new(Initiators::listed([("iqn.i".to_string(), c)]).unwrap())
    }

    /// Logs `iqn.i` in up to the CHAP challenge; returns (negotiation, id, challenge).
    fn challenged(t: Arc<Initiators>) -> (Negotiation, u8, Vec<u8>) {
        let mut n = Negotiation::new("iqn.t", t);
        let out = n
            .login_keys(
                0,
                &keys("InitiatorName=iqn.i|TargetName=iqn.t|AuthMethod=CHAP"),
            )
            .unwrap();
        assert_eq!(out.get("AuthMethod"), Some("CHAP"));
        assert!(!n.may_leave_security());
        let out = n.login_keys(0, &keys("CHAP_A=5")).unwrap();
        let id: u8 = out.get("CHAP_I").unwrap().parse().unwrap();
        let c = auth::decode_binary(out.get("CHAP_C").unwrap()).unwrap();
        assert_eq!(c.len(), auth::CHALLENGE_LEN);
        (n, id, c)
    }

    #[test]
    fn chap_md5() {
        let mut n = Negotiation::new("iqn.t", table(false));
        let out = n
            .login_keys(
                0,
                &keys("InitiatorName=iqn.i|TargetName=iqn.t|AuthMethod=None"),
            )
            .unwrap_err();
        assert_eq!(out, LoginStatus::AUTHENTICATION_FAILURE);
        assert!(n.refusal.unwrap().contains("CHAP required"));
        // An unlisted name never reaches authentication.
        let mut n = Negotiation::new("iqn.t", table(false));
        let out = n
            .login_keys(
                0,
                &keys("InitiatorName=iqn.other|TargetName=iqn.t|AuthMethod=CHAP"),
            )
            .unwrap_err();
        assert_eq!(out, LoginStatus::AUTHORIZATION_FAILURE);
        let (mut n, id, c) = challenged(table(false));
        let good = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &c));
        assert_eq!(
            n.login_keys(0, &keys("CHAP_N=u|CHAP_R=0x00")),
            Err(LoginStatus::AUTHENTICATION_FAILURE)
        );
        let (mut n2, id2, c2) = challenged(table(false));
        let wrong_user = auth::encode_binary(&auth::chap_response(id2, b"secretsecret", &c2));
        assert_eq!(
            n2.login_keys(0, &keys(&format!("CHAP_N=v|CHAP_R={wrong_user}"))),
            Err(LoginStatus::AUTHENTICATION_FAILURE)
        );
        let (mut n3, _, _) = challenged(table(false));
        // A response to another challenge (a replay) fails.
        assert_eq!(
            n3.login_keys(0, &keys(&format!("CHAP_N=u|CHAP_R={good}"))),
            Err(LoginStatus::AUTHENTICATION_FAILURE)
        );
        // The challenge was spent by the wrong answer: the right one no longer counts.
        let _ = n.login_keys(0, &keys(&format!("CHAP_N=u|CHAP_R={good}")));
        assert!(!n.may_leave_security());
        let (mut n, id, c) = challenged(table(false));
        let good = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &c));
        let out = n
            .login_keys(0, &keys(&format!("CHAP_N=u|CHAP_R={good}")))
            .unwrap();
        assert!(n.may_leave_security());
        assert_eq!(out.get("CHAP_N"), None, "no mutual CHAP asked");
    }

    #[test]
    fn mutual_chap_answers_the_initiators_challenge_and_refuses_reflection() {
        let (mut n, id, c) = challenged(table(true));
        let r = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &c));
        let mine: Vec<u8> = (100..116).collect();
        let out = n
            .login_keys(
                0,
                &keys(&format!(
                    "CHAP_N=u|CHAP_R={r}|CHAP_I=9|CHAP_C={}",
                    auth::encode_binary(&mine)
                )),
            )
            .unwrap();
        assert_eq!(out.get("CHAP_N"), Some("tgt"));
        let answer = auth::decode_binary(out.get("CHAP_R").unwrap()).unwrap();
        assert!(auth::verify(9, b"targetsecret", &mine, &answer));
        assert!(n.may_leave_security());
        // Our own challenge sent back: a reflection attack.
        let (mut n, id, c) = challenged(table(true));
        let r = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &c));
        let out = n.login_keys(
            0,
            &keys(&format!(
                "CHAP_N=u|CHAP_R={r}|CHAP_I={id}|CHAP_C={}",
                auth::encode_binary(&c)
            )),
        );
        assert_eq!(out, Err(LoginStatus::AUTHENTICATION_FAILURE));
        // Mutual CHAP asked of an entry without a mutual secret.
        let (mut n, id, c) = challenged(table(false));
        let r = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &c));
        let out = n.login_keys(
            0,
            &keys(&format!("CHAP_N=u|CHAP_R={r}|CHAP_I=1|CHAP_C=0x0102")),
        );
        assert_eq!(out, Err(LoginStatus::AUTHENTICATION_FAILURE));
    }

    /// An anonymous login to `iqn.t` after its first request (the names, in the security
    /// stage).
    fn named() -> Negotiation {
        let mut n = Negotiation::new("iqn.t", anyone());
        n.login_keys(
            stage::SECURITY,
            &keys("InitiatorName=iqn.i|TargetName=iqn.t"),
        )
        .unwrap();
        n
    }

    /// Keys of the security stage only, out of their stage or unknown: a CHAP key in the
    /// operational stage is not understood; an unknown CHAP_ key, or CHAP_A where no CHAP
    /// is configured, fails the login in the security stage.
    #[test]
    fn chap_keys_belong_to_the_security_stage() {
        let mut n = named();
        let out = n
            .login_keys(stage::OPERATIONAL, &keys("CHAP_N=u|CHAP_R=0x01"))
            .unwrap();
        assert_eq!(out.get("CHAP_N"), Some("NotUnderstood"));
        assert_eq!(out.get("CHAP_R"), Some("NotUnderstood"));
        for odd in ["CHAP_Z=1", "CHAP_A=5"] {
            let mut n = named();
            assert_eq!(
                n.login_keys(stage::SECURITY, &keys(odd)),
                Err(LoginStatus::AUTHENTICATION_FAILURE),
                "{odd}"
            );
        }
    }

    /// With no CHAP configured the target offers AuthMethod None, and answers Reject to an
    /// initiator that offers only CHAP (RFC 7143 6.2: no common value).
    #[test]
    fn auth_method_none_only_when_offered() {
        let mut n = Negotiation::new("iqn.t", anyone());
        let out = n
            .login_keys(
                stage::SECURITY,
                &keys("InitiatorName=iqn.i|TargetName=iqn.t|AuthMethod=CHAP"),
            )
            .unwrap();
        assert_eq!(out.get("AuthMethod"), Some("Reject"));
    }

    /// DefaultTime2Wait is echoed (within 0-3600); DefaultTime2Retain is 0: at ERL 0 there
    /// is no connection recovery to retain tasks for.
    #[test]
    fn default_time_to_wait_and_retain() {
        let mut n = named();
        let out = n
            .login_keys(
                stage::OPERATIONAL,
                &keys("DefaultTime2Wait=2|DefaultTime2Retain=20"),
            )
            .unwrap();
        assert_eq!(out.get("DefaultTime2Wait"), Some("2"));
        assert_eq!(out.get("DefaultTime2Retain"), Some("0"));
        assert_eq!(
            n.login_keys(stage::OPERATIONAL, &keys("DefaultTime2Wait=3601")),
            Err(LoginStatus::INITIATOR_ERROR)
        );
    }

    /// The target declares its MaxRecvDataSegmentLength once, in the operational stage:
    /// not in the security stage, not again in a later request.
    #[test]
    fn max_recv_data_segment_length_is_declared_once_in_the_operational_stage() {
        let mut n = Negotiation::new("iqn.t", anyone());
        let out = n
            .login_keys(
                stage::SECURITY,
                &keys("InitiatorName=iqn.i|TargetName=iqn.t"),
            )
            .unwrap();
        assert_eq!(out.get("MaxRecvDataSegmentLength"), None);
        let out = n
            .login_keys(stage::OPERATIONAL, &keys("ImmediateData=Yes"))
            .unwrap();
        assert_eq!(out.get("MaxRecvDataSegmentLength"), Some("262144"));
        let out = n
            .login_keys(stage::OPERATIONAL, &keys("InitialR2T=Yes"))
            .unwrap();
        assert_eq!(out.get("MaxRecvDataSegmentLength"), None);
    }

    /// A CHAP exchange is pending from the challenge until its answer, right or wrong: the
    /// login may not transit out of the security stage in between.
    #[test]
    fn chap_is_pending_from_the_challenge_to_its_answer() {
        let mut n = Negotiation::new("iqn.t", table(false));
        n.login_keys(
            stage::SECURITY,
            &keys("InitiatorName=iqn.i|TargetName=iqn.t|AuthMethod=CHAP"),
        )
        .unwrap();
        assert!(!n.chap_pending(), "no challenge sent yet");
        let (mut n, id, c) = challenged(table(false));
        assert!(n.chap_pending());
        let r = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &c));
        n.login_keys(stage::SECURITY, &keys(&format!("CHAP_N=u|CHAP_R={r}")))
            .unwrap();
        assert!(!n.chap_pending());
        let (mut n, _, _) = challenged(table(false));
        let wrong = n.login_keys(stage::SECURITY, &keys("CHAP_N=u|CHAP_R=0x00"));
        assert_eq!(wrong, Err(LoginStatus::AUTHENTICATION_FAILURE));
        assert!(!n.chap_pending(), "a wrong answer spends the challenge too");
    }

    /// The initiator's mutual-CHAP challenge must be 1 to 1024 bytes: an empty one, or one
    /// byte more (base64 says 1025 bytes in fewer characters than hex), fails the login.
    #[test]
    fn a_mutual_challenge_empty_or_too_long_is_refused() {
        use base64::Engine as _;
        let long =
            base64::engine::general_purpose::STANDARD.encode(vec![0x5a; auth::MAX_SECRET_LEN + 1]);
        for theirs in ["0x".to_string(), format!("0b{long}")] {
            let (mut n, id, c) = challenged(table(true));
            let r = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &c));
            let out = n.login_keys(
                stage::SECURITY,
                &keys(&format!("CHAP_N=u|CHAP_R={r}|CHAP_I=3|CHAP_C={theirs}")),
            );
            assert_eq!(
                out,
                Err(LoginStatus::AUTHENTICATION_FAILURE),
                "{}",
                theirs.len()
            );
            assert!(!n.may_leave_security());
        }
    }

    /// The names and the session type are taken, not answered (they are declarations); an
    /// AuthMethod outside the security stage is not understood.
    #[test]
    fn names_are_not_answered_and_auth_method_belongs_to_the_security_stage() {
        let mut n = Negotiation::new("iqn.t", anyone());
        let out = n
            .login_keys(
                stage::SECURITY,
                &keys("InitiatorName=iqn.i|TargetName=iqn.t|SessionType=Normal|InitiatorAlias=a"),
            )
            .unwrap();
        for k in [
            "InitiatorName",
            "TargetName",
            "SessionType",
            "InitiatorAlias",
        ] {
            assert_eq!(out.get(k), None, "{k}");
        }
        let out = n
            .login_keys(stage::OPERATIONAL, &keys("AuthMethod=None"))
            .unwrap();
        assert_eq!(out.get("AuthMethod"), Some("NotUnderstood"));
    }

    /// Markers are not supported: IFMarker and OFMarker are answered No (RFC 7143 13.25,
    /// a BooleanValue AND), whatever the initiator offers.
    #[test]
    fn markers_are_answered_no() {
        let mut n = named();
        let out = n
            .login_keys(stage::OPERATIONAL, &keys("IFMarker=Yes|OFMarker=No"))
            .unwrap();
        assert_eq!(out.get("IFMarker"), Some("No"));
        assert_eq!(out.get("OFMarker"), Some("No"));
    }

    /// An initiator's mutual-CHAP challenge may be as long as a secret (1024 bytes).
    #[test]
    fn a_mutual_challenge_of_the_longest_length_is_answered() {
        let (mut n, id, c) = challenged(table(true));
        let r = auth::encode_binary(&auth::chap_response(id, b"secretsecret", &c));
        let theirs = vec![0x5a; auth::MAX_SECRET_LEN];
        let out = n
            .login_keys(
                0,
                &keys(&format!(
                    "CHAP_N=u|CHAP_R={r}|CHAP_I=3|CHAP_C={}",
                    auth::encode_binary(&theirs)
                )),
            )
            .unwrap();
        let answer = auth::decode_binary(out.get("CHAP_R").unwrap()).unwrap();
        assert!(auth::verify(3, b"targetsecret", &theirs, &answer));
    }

    /// SendTargets=<name> reports that target only; All and an empty value every one.
    #[test]
    fn send_targets_names_one_target_or_all() {
        let mut t = BTreeMap::new();
        t.insert("iqn.a".to_string(), "10.0.0.1:3260,1".to_string());
        t.insert("iqn.b".to_string(), "10.0.0.2:3260,1".to_string());
        let names = |v: &str| {
            let out = text_keys(&keys(&format!("SendTargets={v}")), &t);
            out.0
                .iter()
                .filter(|(k, _)| k == "TargetName")
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names("iqn.b"), ["iqn.b"]);
        assert_eq!(names("All"), ["iqn.a", "iqn.b"]);
        assert_eq!(names(""), ["iqn.a", "iqn.b"]);
        assert!(names("iqn.c").is_empty());
    }

    #[test]
    fn send_targets() {
        let mut t = BTreeMap::new();
        t.insert("iqn.t".to_string(), "127.0.0.1:3260,1".to_string());
        let out = text_keys(&keys("SendTargets=All|Foo=1"), &t);
        assert_eq!(out.get("TargetName"), Some("iqn.t"));
        assert_eq!(out.get("TargetAddress"), Some("127.0.0.1:3260,1"));
        assert_eq!(out.get("Foo"), Some("NotUnderstood"));
    }
}
