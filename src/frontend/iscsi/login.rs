//! Login and text negotiation (RFC 7143 6, 13): `key=value\0` lists, the security stage
//! (AuthMethod None, or CHAP with MD5 when a secret is configured), and the operational
//! keys this target supports. Pure: the target feeds it each request's keys and sends back
//! what it returns.

use std::collections::BTreeMap;

/// Largest data segment this target accepts (declared as MaxRecvDataSegmentLength): bounds
/// the memory one connection holds for a PDU.
pub const TARGET_MAX_RECV_DATA_SEGMENT_LENGTH: u32 = 256 * 1024;
/// Largest burst offered (the negotiated value is at most this).
pub const TARGET_MAX_BURST_LENGTH: u32 = 1024 * 1024;
/// Largest unsolicited burst offered.
pub const TARGET_FIRST_BURST_LENGTH: u32 = 256 * 1024;
/// Longest key name (RFC 7143 6.1) and value (6.1: 255, except some keys up to 8192).
const MAX_KEY_LEN: usize = 63;
const MAX_VALUE_LEN: usize = 8192;

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
}

impl TextKeys {
    /// Parses `key=value\0...` (a missing final NUL is accepted; empty entries are skipped).
    pub fn decode(bytes: &[u8]) -> Result<Self, TextError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for entry in bytes.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            let eq = entry
                .iter()
                .position(|&b| b == b'=')
                .ok_or(TextError::MissingEquals)?;
            let (k, v) = entry.split_at(eq);
            let v = v.get(1..).unwrap_or_default();
            if k.is_empty() || k.len() > MAX_KEY_LEN || v.len() > MAX_VALUE_LEN {
                return Err(TextError::TooLong);
            }
            let k = std::str::from_utf8(k).map_err(|_| TextError::NotUtf8)?;
            let v = std::str::from_utf8(v).map_err(|_| TextError::NotUtf8)?;
            if out.iter().any(|(ok, _)| ok == k) {
                return Err(TextError::Duplicate(k.into()));
            }
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

/// CHAP credentials the initiator must prove (RFC 7143 12.1.3; RFC 1994 with MD5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chap {
    pub user: String,
    pub secret: Vec<u8>,
}

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
    pub const NOT_FOUND: Self = Self(2, 3);
    pub const UNSUPPORTED_VERSION: Self = Self(2, 5);
    pub const MISSING_PARAMETER: Self = Self(2, 7);
    pub const SESSION_TYPE_NOT_SUPPORTED: Self = Self(2, 9);
    pub const SESSION_DOES_NOT_EXIST: Self = Self(2, 0x0a);
    pub const INVALID_DURING_LOGIN: Self = Self(2, 0x0b);
    pub const TARGET_ERROR: Self = Self(3, 0);
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
    chap: Option<Chap>,
    pub params: Params,
    /// CHAP: the identifier and challenge we sent, when waiting for CHAP_N/CHAP_R.
    chap_challenge: Option<(u8, Vec<u8>)>,
    authenticated: bool,
    sent_declaratives: bool,
    first: bool,
    seed: u64,
}

impl Negotiation {
    /// `seed` makes CHAP challenges unpredictable (the caller passes randomness).
    pub fn new(target_name: &str, chap: Option<Chap>, seed: u64) -> Self {
        Self {
            target_name: target_name.into(),
            chap,
            params: Params::default(),
            chap_challenge: None,
            authenticated: false,
            sent_declaratives: false,
            first: true,
            seed,
        }
    }

    /// Whether the security stage may be left (authentication done, or none required).
    pub fn may_leave_security(&self) -> bool {
        self.chap.is_none() || self.authenticated
    }

    /// Whether a CHAP exchange is mid-way (the login must not transit yet).
    pub fn chap_pending(&self) -> bool {
        self.chap_challenge.is_some()
    }

    /// Answers one Login Request's keys in stage `csg`. Err ends the login with that status.
    pub fn login_keys(&mut self, csg: u8, keys: &TextKeys) -> Result<TextKeys, LoginStatus> {
        let mut out = TextKeys::default();
        if self.first {
            self.first = false;
            self.params.discovery = match keys.get("SessionType") {
                None | Some("Normal") => false,
                Some("Discovery") => true,
                Some(_) => return Err(LoginStatus::SESSION_TYPE_NOT_SUPPORTED),
            };
            self.params.initiator_name = keys
                .get("InitiatorName")
                .ok_or(LoginStatus::MISSING_PARAMETER)?
                .into();
            if !self.params.discovery {
                let t = keys
                    .get("TargetName")
                    .ok_or(LoginStatus::MISSING_PARAMETER)?;
                if t != self.target_name {
                    return Err(LoginStatus::NOT_FOUND);
                }
                self.params.target_name = t.into();
                // Sent in the first response of a normal session (RFC 7143 13.9).
                out.push("TargetPortalGroupTag", "1");
            }
        }
        for (k, v) in &keys.0 {
            match k.as_str() {
                "InitiatorName" | "TargetName" | "SessionType" | "InitiatorAlias" => {}
                "AuthMethod" if csg == stage::SECURITY => {
                    let offered: Vec<&str> = v.split(',').collect();
                    let choice = match &self.chap {
                        Some(_) if offered.contains(&"CHAP") => "CHAP",
                        Some(_) => return Err(LoginStatus::AUTHENTICATION_FAILURE),
                        None if offered.contains(&"None") => "None",
                        None => "Reject",
                    };
                    out.push("AuthMethod", choice);
                }
                "CHAP_A" if csg == stage::SECURITY && self.chap.is_some() => {
                    if !v.split(',').any(|a| a == "5") {
                        return Err(LoginStatus::AUTHENTICATION_FAILURE);
                    }
                    let id = (self.seed & 0xff) as u8;
                    let challenge: Vec<u8> = (0..16u64)
                        .map(|i| (self.seed.rotate_left((i * 5) as u32) >> 7) as u8 ^ i as u8)
                        .collect();
                    out.push("CHAP_A", "5");
                    out.push("CHAP_I", id.to_string());
                    out.push("CHAP_C", format!("0x{}", hex(&challenge)));
                    self.chap_challenge = Some((id, challenge));
                }
                "CHAP_N" | "CHAP_R" if csg == stage::SECURITY => {}
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
                    return Err(LoginStatus::AUTHENTICATION_FAILURE)
                }
                // A key this response already declares (TargetPortalGroupTag, which only a
                // target sends): no key is declared twice (RFC 7143 6.2), so the
                // initiator's copy gets no second answer.
                _ if out.get(k).is_some() => {}
                _ => out.push(k, "NotUnderstood"),
            }
        }
        if csg == stage::SECURITY {
            if let Some((id, challenge)) = self.chap_challenge.clone() {
                if let (Some(n), Some(r)) = (keys.get("CHAP_N"), keys.get("CHAP_R")) {
                    let chap = self
                        .chap
                        .as_ref()
                        .ok_or(LoginStatus::AUTHENTICATION_FAILURE)?;
                    let expected = chap_response(id, &chap.secret, &challenge);
                    if n != chap.user || parse_hex(r).as_deref() != Some(&expected[..]) {
                        return Err(LoginStatus::AUTHENTICATION_FAILURE);
                    }
                    self.authenticated = true;
                    self.chap_challenge = None;
                }
            }
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

/// CHAP_R for (id, secret, challenge): MD5(id || secret || challenge) (RFC 1994 4.1).
pub fn chap_response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut m = Vec::with_capacity(1 + secret.len() + challenge.len());
    m.push(id);
    m.extend_from_slice(secret);
    m.extend_from_slice(challenge);
    md5(&m)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A CHAP binary value: `0x` hex (base64 `0b` is not supported).
fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.len() % 2 != 0 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
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

/// MD5 (RFC 1321), for CHAP only: small enough to keep rather than add a crate for.
pub fn md5(msg: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut data = msg.to_vec();
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&((msg.len() as u64).wrapping_mul(8)).to_le_bytes());
    for chunk in data.chunks_exact(64) {
        let m: [u32; 16] = std::array::from_fn(|i| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&chunk[i * 4..i * 4 + 4]);
            u32::from_le_bytes(w)
        });
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let t = d;
            d = c;
            c = b;
            b = b.wrapping_add(
                a.wrapping_add(f)
                    .wrapping_add(k[i])
                    .wrapping_add(m[g])
                    .rotate_left(S[i]),
            );
            a = t;
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut out = [0u8; 16];
    for (o, s) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> TextKeys {
        TextKeys::decode(s.replace('|', "\0").as_bytes()).unwrap()
    }

    #[test]
    fn md5_vectors() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(&md5(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        assert_eq!(hex(&md5(&[b'a'; 64])), "014842d480b571495a4a0363793f7367");
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
    fn normal_login_negotiates_operational_keys() {
        let mut n = Negotiation::new("iqn.t", None, 1);
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
        let mut n = Negotiation::new("iqn.t", None, 1);
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
        let mut n = Negotiation::new("iqn.t", None, 1);
        assert_eq!(
            n.login_keys(0, &keys("InitiatorName=i|TargetName=iqn.other")),
            Err(LoginStatus::NOT_FOUND)
        );
        let mut n = Negotiation::new("iqn.t", None, 1);
        assert_eq!(
            n.login_keys(0, &keys("TargetName=iqn.t")),
            Err(LoginStatus::MISSING_PARAMETER)
        );
        let mut n = Negotiation::new("iqn.t", None, 1);
        let out = n
            .login_keys(1, &keys("InitiatorName=i|SessionType=Discovery"))
            .unwrap();
        assert!(n.params.discovery);
        assert_eq!(out.get("TargetPortalGroupTag"), None);
        let mut n = Negotiation::new("iqn.t", None, 1);
        assert_eq!(
            n.login_keys(0, &keys("InitiatorName=i|SessionType=Weird")),
            Err(LoginStatus::SESSION_TYPE_NOT_SUPPORTED)
        );
    }

    #[test]
    fn chap_md5() {
        let chap = Chap {
            user: "u".into(),
            secret: b"secretsecret".to_vec(),
        };
        let mut n = Negotiation::new("iqn.t", Some(chap.clone()), 0x1234_5678);
        let out = n
            .login_keys(0, &keys("InitiatorName=i|TargetName=iqn.t|AuthMethod=None"))
            .unwrap_err();
        assert_eq!(out, LoginStatus::AUTHENTICATION_FAILURE);
        let mut n = Negotiation::new("iqn.t", Some(chap.clone()), 0x1234_5678);
        let out = n
            .login_keys(0, &keys("InitiatorName=i|TargetName=iqn.t|AuthMethod=CHAP"))
            .unwrap();
        assert_eq!(out.get("AuthMethod"), Some("CHAP"));
        assert!(!n.may_leave_security());
        let out = n.login_keys(0, &keys("CHAP_A=5")).unwrap();
        let id: u8 = out.get("CHAP_I").unwrap().parse().unwrap();
        let c = parse_hex(out.get("CHAP_C").unwrap()).unwrap();
        let good = format!("0x{}", hex(&chap_response(id, &chap.secret, &c)));
        let mut wrong = n_clone(&n);
        assert_eq!(
            wrong.login_keys(0, &keys("CHAP_N=u|CHAP_R=0x00")),
            Err(LoginStatus::AUTHENTICATION_FAILURE)
        );
        n.login_keys(0, &keys(&format!("CHAP_N=u|CHAP_R={good}")))
            .unwrap();
        assert!(n.may_leave_security());
    }

    fn n_clone(n: &Negotiation) -> Negotiation {
        Negotiation {
            target_name: n.target_name.clone(),
            chap: n.chap.clone(),
            params: n.params.clone(),
            chap_challenge: n.chap_challenge.clone(),
            authenticated: n.authenticated,
            sent_declaratives: n.sent_declaratives,
            first: n.first,
            seed: n.seed,
        }
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
