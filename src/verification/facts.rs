//! `SessionToken`: the facts of a verified access token that decisions read, packed so that a
//! hundred thousand of them fit in a few tens of MiB. The strings live in one allocation, and the
//! standard claims that the typed fields already hold (`sub`, `rsub`, `tId`, `sessionHandle`,
//! `iat`, `exp`) are not stored a second time as JSON: `claims()` puts them back.

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Number, Value};

use crate::credentials::token::ParsedToken;
use crate::verification::signature::VerifyError;

/// Payload keys never kept: refresh hashes are bulky and the anti-CSRF token is a secret (it is
/// kept apart, for the anti-CSRF check only).
const DROPPED_FROM_CLAIMS: [&str; 3] = ["refreshTokenHash1", "parentRefreshTokenHash1", "antiCsrfToken"];

/// Standard claims `claims()` rebuilds from the typed fields, in this bit order.
const REBUILT: [&str; 6] = ["sub", "rsub", "tId", "sessionHandle", "iat", "exp"];

/// Which optional strings are present, and which standard claims are rebuilt.
const HAS_RECIPE: u8 = 1;
const HAS_TENANT: u8 = 2;
const HAS_CSRF: u8 = 4;

#[derive(Debug)]
pub struct SessionToken {
    /// `exp`, `nbf` (seconds, v3+; NaN when absent), expiry and creation in ms.
    exp_s: f64,
    nbf_s: f64,
    pub expiry_ms: f64,
    pub created_ms: f64,
    /// User id, recipe user id, session handle, tenant id, anti-CSRF token, then the claims JSON
    /// (without the rebuilt and dropped keys), back to back.
    text: Box<str>,
    /// End offsets in `text` of the first five strings.
    ends: [u16; 5],
    pub version: u8,
    pub dynamic_key: bool,
    pub has_parent_refresh_token: bool,
    present: u8,
    /// Bit i set: `REBUILT[i]` was in the payload and `claims()` puts it back.
    rebuilt: u8,
    /// v2: the claims are `userData` and nothing is rebuilt.
    legacy: bool,
    claims: OnceLock<Arc<Map<String, Value>>>,
}

/// A standard claim as the typed fields can give it back, byte for byte.
enum Standard<'a> {
    Text(&'a str),
    Whole(u64),
}

impl SessionToken {
    pub fn from_parsed(t: &ParsedToken) -> Self {
        let number = |k: &str| t.payload.get(k).and_then(Value::as_f64);
        let user_id = t.user_id();
        let recipe = t.recipe_user_id();
        let handle = t.session_handle();
        let tenant = t.tenant_id();
        let csrf = t.anti_csrf_token();
        let mut present = 0;
        let mut text = String::with_capacity(user_id.len() + handle.len() + 16);
        let mut ends = [0u16; 5];
        let mut push = |i: usize, s: Option<&str>, flag: u8| {
            if let Some(s) = s {
                text.push_str(s);
                present |= flag;
            }
            // Parsed tokens are at most MAX_TOKEN_BYTES (16 KiB), so offsets fit.
            if let Some(end) = ends.get_mut(i) {
                *end = u16::try_from(text.len()).unwrap_or(u16::MAX);
            }
        };
        push(0, Some(user_id), 0);
        push(1, (recipe != user_id).then_some(recipe), HAS_RECIPE);
        push(2, Some(handle), 0);
        push(3, tenant.as_deref(), HAS_TENANT);
        push(4, csrf, HAS_CSRF);
        let mut facts = Self {
            exp_s: if t.version >= 3 {
                number("exp").unwrap_or(f64::NAN)
            } else {
                f64::NAN
            },
            nbf_s: number("nbf").unwrap_or(f64::NAN),
            expiry_ms: t.expiry_ms(),
            created_ms: t.created_ms(),
            text: text.into_boxed_str(),
            ends,
            version: u8::try_from(t.version).unwrap_or(u8::MAX),
            dynamic_key: t.kid.as_deref().is_some_and(|k| k.starts_with("d-")),
            has_parent_refresh_token: t.parent_refresh_token_hash1().is_some(),
            present,
            rebuilt: 0,
            legacy: t.version < 3,
            claims: OnceLock::new(),
        };
        let extra: Map<String, Value> = if facts.legacy {
            t.claims_payload().as_ref().clone()
        } else {
            let mut extra = Map::new();
            for (k, v) in t.payload.iter() {
                if DROPPED_FROM_CLAIMS.contains(&k.as_str()) {
                    continue;
                }
                // Left out of the stored JSON only when the typed fields give it back identical.
                if let Some(i) = REBUILT.iter().position(|r| r == k)
                    && facts.standard(i).is_some_and(|s| s.equals(v))
                {
                    facts.rebuilt |= 1 << i;
                    continue;
                }
                extra.insert(k.clone(), v.clone());
            }
            extra
        };
        if !extra.is_empty() {
            let mut text = std::mem::take(&mut facts.text).into_string();
            text.push_str(&serde_json::to_string(&extra).unwrap_or_else(|_| "{}".into()));
            facts.text = text.into_boxed_str();
        }
        facts
    }

    /// What the typed fields give back for `REBUILT[i]`; `None` when they cannot.
    fn standard(&self, i: usize) -> Option<Standard<'_>> {
        match i {
            0 => Some(Standard::Text(self.user_id())),
            // `rsub` is kept apart only when it differs from the user id.
            1 => Some(Standard::Text(self.recipe_user_id())),
            2 => self.tenant_id().map(Standard::Text),
            3 => Some(Standard::Text(self.session_handle())),
            4 => Standard::whole(self.created_ms / 1000.0),
            _ => Standard::whole(self.exp_s),
        }
    }

    fn part(&self, i: usize) -> &str {
        let end_of = |j: usize| self.ends.get(j).map(|e| usize::from(*e));
        let start = i.checked_sub(1).and_then(end_of).unwrap_or(0);
        let end = end_of(i).unwrap_or(start);
        self.text.get(start..end).unwrap_or_default()
    }

    fn optional(&self, i: usize, flag: u8) -> Option<&str> {
        (self.present & flag != 0).then(|| self.part(i))
    }

    /// `getUserId()`.
    pub fn user_id(&self) -> &str {
        self.part(0)
    }

    /// `getRecipeUserId()`: `rsub`, else the user id.
    pub fn recipe_user_id(&self) -> &str {
        self.optional(1, HAS_RECIPE).unwrap_or_else(|| self.user_id())
    }

    pub fn session_handle(&self) -> &str {
        self.part(2)
    }

    pub fn tenant_id(&self) -> Option<&str> {
        self.optional(3, HAS_TENANT)
    }

    pub fn anti_csrf_token(&self) -> Option<&str> {
        self.optional(4, HAS_CSRF)
    }

    /// The claims payload (v3+: the payload without refresh hashes and the anti-CSRF token; v2:
    /// `userData`), parsed on first use: most requests never need it.
    pub fn claims(&self) -> Arc<Map<String, Value>> {
        self.claims.get_or_init(|| Arc::new(self.build_claims())).clone()
    }

    fn build_claims(&self) -> Map<String, Value> {
        let json = self.text.get(usize::from(self.ends[4])..).unwrap_or_default();
        let extra: Map<String, Value> = if json.is_empty() {
            Map::new()
        } else {
            serde_json::from_str(json).unwrap_or_default()
        };
        if self.legacy || self.rebuilt == 0 {
            return extra;
        }
        let mut claims = Map::with_capacity(extra.len() + REBUILT.len());
        for (i, key) in REBUILT.iter().enumerate() {
            if self.rebuilt & (1 << i) != 0
                && let Some(value) = self.standard(i)
            {
                claims.insert((*key).to_owned(), value.to_value());
            }
        }
        claims.extend(extra);
        claims
    }

    /// jose's `exp`/`nbf` rules (seconds, `now = floor(Date.now()/1000)`), then the SDK's own
    /// `expiryTime < Date.now()` check: with no leeway a token is valid iff `now_ms < exp * 1000`.
    pub fn check_times(&self, now_ms: u64, skew_ms: u64) -> Result<(), VerifyError> {
        let now_s = (now_ms / 1000) as f64;
        let skew_s = (skew_ms / 1000) as f64;
        // NaN (absent) compares false either way.
        if self.nbf_s > now_s + skew_s {
            return Err(VerifyError::NotYetValid);
        }
        if self.exp_s <= now_s - skew_s {
            return Err(VerifyError::Expired);
        }
        if self.expiry_ms + (skew_ms as f64) < now_ms as f64 {
            return Err(VerifyError::Expired);
        }
        Ok(())
    }

    /// How long a cache entry may live: until the token expires, at most `max_ttl_ms`.
    pub fn cache_until_ms(&self, now_ms: u64, max_ttl_ms: u64) -> u64 {
        let exp = if self.expiry_ms.is_finite() && self.expiry_ms > 0.0 {
            self.expiry_ms as u64
        } else {
            0
        };
        exp.min(now_ms.saturating_add(max_ttl_ms))
    }
}

impl Standard<'_> {
    /// A whole number as JavaScript holds it (an f64), if it is one.
    fn whole(n: f64) -> Option<Self> {
        (n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n < 9_007_199_254_740_992.0).then_some(Standard::Whole(n as u64))
    }

    /// Only a value that comes back identical (untrimmed text, a whole number written as one)
    /// may be left out of the stored JSON.
    fn equals(&self, v: &Value) -> bool {
        match (self, v) {
            (Standard::Text(s), Value::String(t)) => s == t,
            (Standard::Whole(n), Value::Number(m)) => m.as_u64() == Some(*n) && !m.is_f64(),
            _ => false,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Standard::Text(s) => Value::String((*s).to_owned()),
            Standard::Whole(n) => Value::Number(Number::from(*n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::token::test_tokens::parsed_v5;
    use serde_json::json;

    fn parsed(payload: Value) -> ParsedToken {
        parsed_v5(&payload)
    }

    fn expected_claims(t: &ParsedToken) -> Map<String, Value> {
        let mut m = (*t.claims_payload()).clone();
        for k in DROPPED_FROM_CLAIMS {
            m.shift_remove(k);
        }
        m
    }

    #[test]
    fn facts_and_claims_come_back_whole() {
        let cases = [
            json!({"sub":"u1","rsub":"u1","tId":"public","sessionHandle":"h","refreshTokenHash1":"r","parentRefreshTokenHash1":null,
                   "antiCsrfToken":"csrf","iat":1,"exp":2}),
            json!({"sub":" padded ","rsub":"r2","sessionHandle":"h","refreshTokenHash1":"r","parentRefreshTokenHash1":"p",
                   "iat":1.5,"exp":2,"nbf":1,"st-ev":{"v":true,"t":5},"st-role":{"v":["admin"],"t":5},"iss":"https://x"}),
            json!({"sub":"u","rsub":"u","tId":" t ","sessionHandle":"h","refreshTokenHash1":"r","iat":1,"exp":2.0,"custom":null}),
        ];
        for payload in cases {
            let t = parsed(payload);
            let f = SessionToken::from_parsed(&t);
            assert_eq!(f.user_id(), t.user_id());
            assert_eq!(f.recipe_user_id(), t.recipe_user_id());
            assert_eq!(f.session_handle(), t.session_handle());
            assert_eq!(f.tenant_id(), t.tenant_id().as_deref());
            assert_eq!(f.anti_csrf_token(), t.anti_csrf_token());
            assert_eq!(f.has_parent_refresh_token, t.parent_refresh_token_hash1().is_some());
            let mut got: Vec<_> = f.claims().iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
            let mut want: Vec<_> = expected_claims(&t).iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_plain_token_stores_no_json() {
        let t = parsed(
            json!({"sub":"user-1","rsub":"user-1","tId":"public","sessionHandle":"s-1","refreshTokenHash1":"r",
                              "parentRefreshTokenHash1":null,"antiCsrfToken":null,"iat":1,"exp":2}),
        );
        let f = SessionToken::from_parsed(&t);
        assert_eq!(&*f.text, "user-1s-1public");
        let bytes = std::mem::size_of::<SessionToken>() + f.text.len();
        assert!(bytes < 128, "{bytes} bytes");
    }
}
