//! Parse and structure check of SuperTokens access tokens (v2 to v5 and later), done the way the
//! Node SDK does it before any signature check: a token that fails here counts as absent.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value};

/// The padded standard base64 of the two legacy headers (`{"alg":"RS256","typ":"JWT","version":"1"|"2"}`).
const LEGACY_HEADERS: [&str; 2] = [
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsInZlcnNpb24iOiIxIn0=",
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsInZlcnNpb24iOiIyIn0=",
];
/// A header without `version` is read as this one.
const LATEST_UNVERSIONED: u64 = 3;
/// Longer candidates are not considered tokens (they count as absent, like any that fails to
/// parse). Browsers cap a cookie at 4 KiB and the core mints well under that; the bound keeps
/// an attacker's 60 KiB header from costing a base64 and JSON parse on every request.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The tenant of a session that names none (the SDK's `DEFAULT_TENANT_ID`).
pub const DEFAULT_TENANT: &str = "public";

/// Payload keys the core owns; the SDK strips them before a regenerate, and an issuer sets them.
pub const PROTECTED_PROPS: [&str; 10] = [
    "sub",
    "iat",
    "exp",
    "sessionHandle",
    "parentRefreshTokenHash1",
    "refreshTokenHash1",
    "antiCsrfToken",
    "rsub",
    "tId",
    "stt",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenParseError {
    #[error("longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("not three dot-separated segments")]
    Segments,
    #[error("header is not a JSON object")]
    Header,
    #[error("header does not describe a SuperTokens access token")]
    HeaderMismatch,
    #[error("payload is not a JSON object")]
    Payload,
    #[error("wrong token type (stt)")]
    WrongType,
    #[error("payload lacks a required claim")]
    Structure,
}

/// A token that passed parse and structure checks; its signature is not checked yet.
#[derive(Debug, Clone)]
pub struct ParsedToken {
    pub raw: String,
    pub version: u64,
    /// `kid` of v3+ headers (a non-string kid is kept as `None` and fails verification).
    pub kid: Option<String>,
    pub header: Map<String, Value>,
    pub payload: Arc<Map<String, Value>>,
    /// Byte offset of the second `.`: `raw[..signing_end]` is the signed input.
    signing_end: usize,
}

impl ParsedToken {
    pub fn parse(raw: &str) -> Result<Self, TokenParseError> {
        if raw.len() > MAX_TOKEN_BYTES {
            return Err(TokenParseError::TooLarge);
        }
        let mut parts = raw.split('.');
        let (Some(h), Some(p), Some(_s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenParseError::Segments);
        };
        let (version, kid, header) = if LEGACY_HEADERS.contains(&h) {
            let mut header = Map::new();
            header.insert("alg".into(), Value::String("RS256".into()));
            (2, None, header)
        } else {
            let header = match serde_json::from_slice::<Value>(&node_base64_decode(h)) {
                Ok(Value::Object(m)) => m,
                _ => return Err(TokenParseError::Header),
            };
            let version = match header.get("version") {
                None => LATEST_UNVERSIONED,
                Some(Value::String(s)) => js_parse_int(s).ok_or(TokenParseError::HeaderMismatch)?,
                Some(_) => return Err(TokenParseError::HeaderMismatch),
            };
            let kid_present = header.get("kid").is_some();
            if header.get("typ") != Some(&Value::String("JWT".into())) || version < 3 || !kid_present {
                return Err(TokenParseError::HeaderMismatch);
            }
            let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
            (version, kid, header)
        };
        let payload = match serde_json::from_slice::<Value>(&node_base64_decode(p)) {
            Ok(Value::Object(m)) => m,
            _ => return Err(TokenParseError::Payload),
        };
        check_structure(&payload, version)?;
        Ok(Self {
            raw: raw.to_owned(),
            version,
            kid,
            header,
            payload: Arc::new(payload),
            signing_end: h.len() + 1 + p.len(),
        })
    }

    pub fn signing_input(&self) -> &[u8] {
        self.raw.as_bytes().get(..self.signing_end).unwrap_or_default()
    }

    pub fn signature(&self) -> &str {
        self.raw.get(self.signing_end + 1..).unwrap_or_default()
    }

    fn str_claim(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(Value::as_str)
    }

    /// `getUserId()`: `sub` (v3+) or `userId` (v2), trimmed.
    pub fn user_id(&self) -> &str {
        self.str_claim(if self.version >= 3 { "sub" } else { "userId" })
            .unwrap_or_default()
            .trim()
    }

    /// `getRecipeUserId()`: `rsub`, else the user id.
    pub fn recipe_user_id(&self) -> &str {
        self.str_claim("rsub").map_or_else(|| self.user_id(), str::trim)
    }

    pub fn session_handle(&self) -> &str {
        self.str_claim("sessionHandle").unwrap_or_default().trim()
    }

    /// `tId` for v4+ (absent stays absent, as in Node); the default tenant before v4.
    pub fn tenant_id(&self) -> Option<String> {
        if self.version >= 4 {
            self.str_claim("tId").map(|t| t.trim().to_owned())
        } else {
            Some(DEFAULT_TENANT.to_owned())
        }
    }

    pub fn anti_csrf_token(&self) -> Option<&str> {
        self.str_claim("antiCsrfToken").map(str::trim)
    }

    pub fn parent_refresh_token_hash1(&self) -> Option<&str> {
        self.str_claim("parentRefreshTokenHash1").map(str::trim)
    }

    /// Expiry in ms (`exp * 1000`, or v2's `expiryTime`).
    pub fn expiry_ms(&self) -> f64 {
        if self.version >= 3 {
            self.payload.get("exp").and_then(Value::as_f64).unwrap_or(0.0) * 1000.0
        } else {
            self.payload.get("expiryTime").and_then(Value::as_f64).unwrap_or(0.0)
        }
    }

    /// v2 `timeCreated` (ms) or `iat * 1000`.
    pub fn created_ms(&self) -> f64 {
        if self.version >= 3 {
            self.payload.get("iat").and_then(Value::as_f64).unwrap_or(0.0) * 1000.0
        } else {
            self.payload.get("timeCreated").and_then(Value::as_f64).unwrap_or(0.0)
        }
    }

    /// The payload claims validators read: the whole payload (v3+) or `userData` (v2).
    pub fn claims_payload(&self) -> Arc<Map<String, Value>> {
        if self.version >= 3 {
            self.payload.clone()
        } else {
            Arc::new(self.payload.get("userData").and_then(Value::as_object).cloned().unwrap_or_default())
        }
    }
}

/// The SDK's `validateAccessTokenStructure`, version by version.
fn check_structure(payload: &Map<String, Value>, version: u64) -> Result<(), TokenParseError> {
    match payload.get("stt") {
        None => {}
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => {}
        Some(_) => return Err(TokenParseError::WrongType),
    }
    let is_str = |k: &str| payload.get(k).is_some_and(Value::is_string);
    let is_num = |k: &str| payload.get(k).is_some_and(Value::is_number);
    let ok = if version >= 3 {
        // v4 adds `tId`, but Node's check for it is unreachable, so a v4/v5 token without it passes.
        is_str("sub")
            && is_num("exp")
            && is_num("iat")
            && is_str("sessionHandle")
            && is_str("refreshTokenHash1")
            && (version < 5 || is_str("rsub"))
    } else {
        is_str("sessionHandle")
            && is_str("userId")
            && is_str("refreshTokenHash1")
            && payload.contains_key("userData")
            && is_num("expiryTime")
            && is_num("timeCreated")
    };
    if ok { Ok(()) } else { Err(TokenParseError::Structure) }
}

/// JavaScript's `Number.parseInt(s)` restricted to what can pass `Number.isInteger && >= 3`.
fn js_parse_int(s: &str) -> Option<u64> {
    let t = s.trim_start();
    let (negative, digits) = match (t.strip_prefix('-'), t.strip_prefix('+')) {
        (Some(rest), _) => (true, rest),
        (_, Some(rest)) => (false, rest),
        _ => (false, t),
    };
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    let number = digits.get(..end).filter(|d| !d.is_empty())?;
    let value = number.parse::<u64>().unwrap_or(u64::MAX);
    if negative && value != 0 { Some(0) } else { Some(value) }
}

/// Node's `Buffer.from(s, "base64")`: accepts base64 and base64url, skips characters outside the
/// alphabet and stops at the first `=`. The SDK pre-parses tokens with it, so we do too; the
/// signature check later covers the raw text, so this leniency cannot admit a forged token.
pub fn node_base64_decode(s: &str) -> Vec<u8> {
    let mut sextets = Vec::with_capacity(s.len());
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        sextets.push(v);
    }
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for chunk in sextets.chunks(4) {
        let get = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (get(0) << 18) | (get(1) << 12) | (get(2) << 6) | get(3);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let take = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend_from_slice(bytes.get(..take).unwrap_or_default());
    }
    out
}

/// Strict base64url (no padding) as used by the signature check: anything else is refused.
pub fn strict_b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

/// Tokens for the unit tests of every stage (signed ones come from the dev issuer).
#[cfg(test)]
pub(crate) mod test_tokens {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::ParsedToken;

    /// `header.payload.sig` with a placeholder signature.
    pub fn unsigned(header: &Value, payload: &Value) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    /// A v2 token with `payload` and a signature that does not verify.
    pub fn legacy_v2(payload: &Value) -> String {
        format!(
            "{}.{}.c2ln",
            super::LEGACY_HEADERS[1],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).expect("json"))
        )
    }

    /// A v5 token with `payload`, parsed.
    pub fn parsed_v5(payload: &Value) -> ParsedToken {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": "d-1", "version": "5"});
        ParsedToken::parse(&unsigned(&header, payload)).expect("parse")
    }
}

#[cfg(test)]
mod tests {
    use super::test_tokens::unsigned;
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn token(header: Value, payload: Value) -> String {
        unsigned(&header, &payload)
    }

    fn v5_payload() -> Value {
        json!({"sub": "u1", "exp": 2, "iat": 1, "tId": "public", "rsub": "u1", "sessionHandle": "h", "refreshTokenHash1": "r",
               "parentRefreshTokenHash1": null, "antiCsrfToken": null})
    }

    #[test]
    fn parses_v5() {
        let t = ParsedToken::parse(&token(json!({"alg":"RS256","typ":"JWT","kid":"d-1","version":"5"}), v5_payload())).expect("parse");
        assert_eq!(t.version, 5);
        assert_eq!(t.kid.as_deref(), Some("d-1"));
        assert_eq!(t.user_id(), "u1");
        assert_eq!(t.tenant_id().as_deref(), Some("public"));
        assert_eq!(t.signature(), "c2ln");
    }

    #[test]
    fn version_rules() {
        let p = v5_payload();
        let parse = |h: Value| ParsedToken::parse(&token(h, p.clone()));
        assert_eq!(parse(json!({"alg":"RS256","typ":"JWT","kid":"k"})).expect("v3").version, 3);
        assert_eq!(
            parse(json!({"alg":"RS256","typ":"JWT","kid":"k","version":"4abc"}))
                .expect("v4")
                .version,
            4
        );
        assert_eq!(
            parse(json!({"alg":"RS256","typ":"JWT","kid":"k","version":"9"}))
                .expect("v9")
                .version,
            9
        );
        assert!(parse(json!({"alg":"RS256","typ":"JWT","kid":"k","version":5})).is_err());
        assert!(parse(json!({"alg":"RS256","typ":"JWT","kid":"k","version":"2"})).is_err());
        assert!(parse(json!({"alg":"RS256","typ":"JWT","version":"5"})).is_err());
        assert!(parse(json!({"alg":"RS256","typ":"JWS","kid":"k"})).is_err());
    }

    #[test]
    fn structure_rules() {
        let h = json!({"alg":"RS256","typ":"JWT","kid":"k","version":"5"});
        let mut p = v5_payload();
        p["stt"] = json!(1);
        assert_eq!(
            ParsedToken::parse(&token(h.clone(), p.clone())).err(),
            Some(TokenParseError::WrongType)
        );
        p["stt"] = json!(0);
        assert!(ParsedToken::parse(&token(h.clone(), p.clone())).is_ok());
        let mut p = v5_payload();
        p.as_object_mut().expect("obj").remove("rsub");
        assert_eq!(
            ParsedToken::parse(&token(h.clone(), p.clone())).err(),
            Some(TokenParseError::Structure)
        );
        // Node does not require tId on v4/v5.
        let mut p = v5_payload();
        p.as_object_mut().expect("obj").remove("tId");
        let t = ParsedToken::parse(&token(h, p)).expect("no tId");
        assert_eq!(t.tenant_id(), None);
    }

    #[test]
    fn legacy_v2_header() {
        let p = json!({"userId":"u","expiryTime":2,"timeCreated":1,"sessionHandle":"h","refreshTokenHash1":"r","userData":{}});
        let raw = super::test_tokens::legacy_v2(&p);
        let t = ParsedToken::parse(&raw).expect("v2");
        assert_eq!(t.version, 2);
        assert_eq!(t.tenant_id().as_deref(), Some("public"));
    }

    #[test]
    fn node_base64_is_lenient() {
        assert_eq!(node_base64_decode("aGk"), b"hi");
        assert_eq!(node_base64_decode("aGk="), b"hi");
        assert_eq!(node_base64_decode("a G\nk"), b"hi");
        assert_eq!(node_base64_decode("-_-_"), vec![0xfb, 0xff, 0xbf]);
        assert_eq!(node_base64_decode("+/+/"), vec![0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn oversized_candidates_are_not_tokens() {
        let t = token(json!({"alg":"RS256","typ":"JWT","kid":"d-1","version":"5"}), v5_payload());
        // The signature segment is not decoded here: pad it to exactly the bound, then one past.
        let at_bound = format!("{t}{}", "A".repeat(MAX_TOKEN_BYTES - t.len()));
        assert!(ParsedToken::parse(&at_bound).is_ok());
        let over = format!("{at_bound}A");
        assert_eq!(ParsedToken::parse(&over).err(), Some(TokenParseError::TooLarge));
    }

    #[test]
    fn duplicate_keys_read_like_json_parse() {
        // JSON.parse (the SDK) keeps the last duplicate; so must we, in header and payload alike,
        // or the two could disagree on `alg` or `sub` of the same bytes.
        let h = r#"{"alg":"none","typ":"JWT","kid":"d-1","version":"5","alg":"RS256"}"#;
        let p = r#"{"sub":"victim","exp":2,"iat":1,"rsub":"u","sessionHandle":"h","refreshTokenHash1":"r","sub":"u"}"#;
        let raw = format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(p));
        let t = ParsedToken::parse(&raw).expect("parse");
        assert_eq!(t.header.get("alg"), Some(&json!("RS256")));
        assert_eq!(t.user_id(), "u");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(ParsedToken::parse("abc").err(), Some(TokenParseError::Segments));
        assert_eq!(ParsedToken::parse("a.b.c.d").err(), Some(TokenParseError::Segments));
        assert!(ParsedToken::parse("eyJ9.e30.x").is_err());
    }
}
