//! The identity assertion: a short-lived JWT, signed here, that tells the backend who the user is
//! and that the request passed the authorizer. A backend checks it with any JWT library against
//! `GET /.well-known/jwks.json`, instead of trusting `x-user-id` because of the network path.
//!
//! One assertion is reused for the same access token, route and method while at least half of
//! its lifetime is left, so a busy session costs one signature per half lifetime.

pub mod keys;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quick_cache::Equivalent;
use serde_json::{Map, Value, json};

use crate::clock::SharedClock;
use crate::session::SessionInfo;
use crate::settings::AssertionSettings;
use crate::verification::cache::TokenKey;
use keys::{KeyError, SigningKey};

/// A key no longer signing, still published until `until_ms` (one assertion lifetime after it
/// was replaced), so that assertions it signed verify to their end.
struct Retired {
    jwk: Value,
    until_ms: u64,
}

/// The signer of one configuration: its key, the keys it replaced, and the assertions signed.
pub struct Assertions {
    settings: AssertionSettings,
    key: Arc<SigningKey>,
    retired: Vec<Retired>,
    /// `base64url({"alg","kid","typ"})`, the same for every assertion of this key.
    header: String,
    cache: quick_cache::sync::Cache<Reuse, Arc<Signed>>,
    clock: SharedClock,
    metrics: Option<Arc<crate::observe::metrics::Metrics>>,
}

struct Signed {
    jwt: Arc<str>,
    reuse_until_ms: u64,
}

/// What an assertion is reused for: the same access token (its SHA-256), route and method.
#[derive(PartialEq, Eq, Hash)]
struct Reuse {
    token: TokenKey,
    route: usize,
    method: Box<str>,
}

/// `Reuse` borrowed, for lookups without an allocation; hashes exactly as `Reuse` does.
struct ReuseRef<'a> {
    token: &'a TokenKey,
    route: usize,
    method: &'a str,
}

impl Hash for ReuseRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.token.hash(state);
        self.route.hash(state);
        self.method.hash(state);
    }
}

impl Equivalent<Reuse> for ReuseRef<'_> {
    fn equivalent(&self, key: &Reuse) -> bool {
        *self.token == key.token && self.route == key.route && *self.method == *key.method
    }
}

/// The request an assertion is for.
pub struct Subject<'a> {
    pub session: &'a SessionInfo,
    /// The access token's cache key; `None` for a token the core just minted (not reused).
    pub token: Option<&'a TokenKey>,
    /// The matched route's pattern, and an id for it that is stable while this signer lives.
    pub route: &'a str,
    pub route_id: usize,
    pub method: &'a str,
}

impl Assertions {
    /// The signer for `settings`, `None` when assertions are off. A key generated before is kept
    /// while no key file is named; a replaced key stays published for one `ttl_secs`.
    pub fn build(
        settings: &AssertionSettings,
        previous: Option<&Assertions>,
        clock: SharedClock,
        max_entries: u64,
    ) -> Result<Option<Self>, KeyError> {
        if !settings.enabled {
            return Ok(None);
        }
        let now = clock.now_ms();
        let key = match (&settings.key_file, previous) {
            (Some(path), _) => {
                let read = SigningKey::from_file(settings.algorithm, path)?;
                match previous {
                    Some(p) if p.key.kid == read.kid => p.key.clone(),
                    _ => Arc::new(read),
                }
            }
            (None, Some(p)) if p.key.source.is_none() && p.key.algorithm == settings.algorithm => p.key.clone(),
            (None, _) => {
                tracing::warn!(
                    algorithm = settings.algorithm.as_str(),
                    "assertion key generated at start: fine for one replica; replicas each sign with their own key, so give them one with assertion.key_file"
                );
                Arc::new(SigningKey::generate(settings.algorithm)?)
            }
        };
        let mut retired: Vec<Retired> = Vec::new();
        if let Some(p) = previous {
            retired.extend(p.retired.iter().filter(|r| r.until_ms > now).map(|r| Retired {
                jwk: r.jwk.clone(),
                until_ms: r.until_ms,
            }));
            if p.key.kid != key.kid {
                retired.push(Retired {
                    jwk: p.key.jwk.clone(),
                    until_ms: now.saturating_add(p.settings.ttl_secs.saturating_mul(1000)),
                });
            }
        }
        let header = URL_SAFE_NO_PAD.encode(
            json!({"alg": settings.algorithm.as_str(), "kid": key.kid, "typ": "JWT"})
                .to_string()
                .as_bytes(),
        );
        let entries = usize::try_from(max_entries).unwrap_or(usize::MAX).clamp(1, 1 << 20);
        Ok(Some(Self {
            settings: settings.clone(),
            key,
            retired,
            header,
            cache: quick_cache::sync::Cache::new(entries),
            clock,
            metrics: None,
        }))
    }

    /// Counts each assertion in `assertions_total`.
    pub fn with_metrics(mut self, metrics: Arc<crate::observe::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, result: &'static str) {
        if let Some(m) = &self.metrics {
            m.assertion(result);
        }
    }

    /// The key set a backend verifies with: the signing key, then the keys it replaced within
    /// the last assertion lifetime.
    pub fn jwks(&self) -> Value {
        let now = self.clock.now_ms();
        let keys: Vec<&Value> = std::iter::once(&self.key.jwk)
            .chain(self.retired.iter().filter(|r| r.until_ms > now).map(|r| &r.jwk))
            .collect();
        json!({ "keys": keys })
    }

    /// The assertion for an allowed request: reused when one for the same token, route and
    /// method has half its lifetime left, else signed now.
    pub fn for_request(&self, subject: &Subject<'_>) -> Result<Arc<str>, KeyError> {
        let now = self.clock.now_ms();
        if let Some(token) = subject.token {
            let lookup = ReuseRef {
                token,
                route: subject.route_id,
                method: subject.method,
            };
            if let Some(signed) = self.cache.get(&lookup)
                && now < signed.reuse_until_ms
            {
                self.count("reused");
                return Ok(signed.jwt.clone());
            }
        }
        let jwt: Arc<str> = match self.sign(subject, now) {
            Ok(jwt) => jwt.into(),
            Err(e) => {
                self.count("error");
                return Err(e);
            }
        };
        self.count("signed");
        if let Some(token) = subject.token {
            let ttl_ms = self.settings.ttl_secs.saturating_mul(1000);
            let signed = Arc::new(Signed {
                jwt: jwt.clone(),
                reuse_until_ms: now.saturating_add(ttl_ms / 2),
            });
            let key = Reuse {
                token: *token,
                route: subject.route_id,
                method: subject.method.into(),
            };
            self.cache.insert(key, signed);
        }
        Ok(jwt)
    }

    fn sign(&self, subject: &Subject<'_>, now_ms: u64) -> Result<String, KeyError> {
        let iat = now_ms / 1000;
        let mut claims = Map::new();
        claims.insert("iss".into(), Value::String(self.settings.issuer.clone()));
        claims.insert("aud".into(), Value::String(self.settings.audience.clone()));
        claims.insert("sub".into(), Value::String(subject.session.user_id().to_owned()));
        claims.insert("iat".into(), iat.into());
        claims.insert("nbf".into(), iat.into());
        claims.insert("exp".into(), iat.saturating_add(self.settings.ttl_secs).into());
        claims.insert("jti".into(), Value::String(jti()));
        // Bound to what was judged: the method and the route (not the path, so that one
        // assertion serves a session's requests to one route).
        claims.insert("htm".into(), Value::String(subject.method.to_owned()));
        claims.insert("route".into(), Value::String(subject.route.to_owned()));
        let token_claims = subject.session.claims();
        for name in &self.settings.claims {
            if let Some(value) = claim_value(name, subject.session, &token_claims) {
                claims.insert(name.clone(), value);
            }
        }
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string().as_bytes());
        let signing_input = format!("{}.{payload}", self.header);
        let signature = self.key.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// A claim the assertion copies: the session's tenant and handle, the role and permission
/// claims' values, or an access-token claim with a primitive value (or a `{v: ...}` claim's).
fn claim_value(name: &str, session: &SessionInfo, claims: &Map<String, Value>) -> Option<Value> {
    let value_of = |claim: &str| match claims.get(claim)? {
        Value::Object(o) => o.get("v").cloned(),
        other => Some(other.clone()),
    };
    let value = match name {
        "tenant_id" => Some(Value::String(session.tenant_or_default().to_owned())),
        "session_handle" => Some(Value::String(session.session_handle().to_owned())),
        "roles" => value_of("st-role"),
        "permissions" => value_of("st-perm"),
        other => value_of(other),
    }?;
    let primitive = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match &value {
        v if primitive(v) => Some(value),
        Value::Array(items) if items.iter().all(primitive) => Some(value),
        _ => None,
    }
}

fn jti() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness the time and a counter keep ids apart.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, jwk::JwkSet};

    use super::*;
    use crate::clock::ManualClock;
    use crate::credentials::token::test_tokens::parsed_v5;
    use crate::settings::AssertionAlgorithm;
    use crate::verification::facts::SessionToken;

    const NOW: u64 = 1_767_225_600_000;

    fn session() -> SessionInfo {
        let payload = json!({"sub": "alice", "exp": 1_767_229_200u64, "iat": 1_767_225_600u64, "tId": "acme", "rsub": "alice",
            "sessionHandle": "h-1", "refreshTokenHash1": "r", "parentRefreshTokenHash1": null, "antiCsrfToken": null,
            "st-role": {"v": ["admin", "viewer"], "t": 1}, "st-perm": {"v": ["read"], "t": 1}, "plan": "gold", "nested": {"a": {"b": 1}}});
        SessionInfo::from_token(&Arc::new(SessionToken::from_parsed(&parsed_v5(&payload))))
    }

    fn settings(algorithm: AssertionAlgorithm) -> AssertionSettings {
        AssertionSettings {
            enabled: true,
            audience: "orders-api".into(),
            algorithm,
            claims: ["tenant_id", "session_handle", "roles", "permissions", "plan", "nested"]
                .map(String::from)
                .to_vec(),
            ..AssertionSettings::default()
        }
    }

    fn signer(algorithm: AssertionAlgorithm, clock: &ManualClock) -> Assertions {
        Assertions::build(&settings(algorithm), None, Arc::new(clock.clone()), 100)
            .expect("build")
            .expect("enabled")
    }

    /// Verifies `jwt` as a backend would: the key from the published set by `kid`, then
    /// signature, `aud`, `iss` and `exp`.
    fn verify(jwt: &str, jwks: &Value, algorithm: Algorithm, now_s: u64) -> Result<Map<String, Value>, String> {
        let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
        let kid = jsonwebtoken::decode_header(jwt).map_err(|e| e.to_string())?.kid.ok_or("no kid")?;
        let jwk = set.find(&kid).ok_or("kid not published")?;
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&["orders-api"]);
        validation.set_issuer(&["session-authorizer"]);
        validation.leeway = 0;
        // `exp` against the test's clock, below, not the wall clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "aud", "iss", "sub"].map(String::from).into_iter().collect();
        let data = decode::<Map<String, Value>>(jwt, &DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?, &validation)
            .map_err(|e| e.to_string())?;
        let exp = data.claims.get("exp").and_then(Value::as_u64).ok_or("no exp")?;
        if exp <= now_s {
            return Err("expired".into());
        }
        Ok(data.claims)
    }

    fn subject<'a>(session: &'a SessionInfo, token: &'a TokenKey, method: &'a str) -> Subject<'a> {
        Subject {
            session,
            token: Some(token),
            route: "/orders/**",
            route_id: 7,
            method,
        }
    }

    #[test]
    fn both_algorithms_sign_what_a_standard_library_verifies_against_the_published_keys() {
        let clock = ManualClock::new(NOW);
        for (algorithm, jose) in [
            (AssertionAlgorithm::Es256, Algorithm::ES256),
            (AssertionAlgorithm::EdDsa, Algorithm::EdDSA),
        ] {
            let assertions = signer(algorithm, &clock);
            let session = session();
            let jwt = assertions.for_request(&subject(&session, &[1; 32], "GET")).expect("sign");
            let claims = verify(&jwt, &assertions.jwks(), jose, NOW / 1000).expect("verifies");
            assert_eq!(claims["sub"], "alice");
            assert_eq!(claims["exp"], json!(NOW / 1000 + 60));
            assert_eq!(claims["iat"], json!(NOW / 1000));
            assert_eq!(claims["tenant_id"], "acme");
            assert_eq!(claims["session_handle"], "h-1");
            assert_eq!(claims["roles"], json!(["admin", "viewer"]));
            assert_eq!(claims["permissions"], json!(["read"]));
            assert_eq!(claims["plan"], "gold");
            assert!(claims.get("nested").is_none(), "only primitive claims are copied");
            assert_eq!(
                (claims["htm"].as_str(), claims["route"].as_str()),
                (Some("GET"), Some("/orders/**"))
            );
            assert_eq!(claims["jti"].as_str().map(str::len), Some(32));
            // The published key is a JWK whose kid is its RFC 7638 thumbprint.
            let jwk = &assertions.jwks()["keys"][0];
            assert_eq!(jwk["alg"], algorithm.as_str());
            assert_eq!(jwk["kid"].as_str().map(str::len), Some(43));
            // A tampered payload, another audience, a foreign key: refused.
            let mut parts: Vec<&str> = jwt.split('.').collect();
            let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"mallory","aud":"orders-api","iss":"session-authorizer","exp":9999999999}"#);
            parts[1] = &forged;
            assert!(verify(&parts.join("."), &assertions.jwks(), jose, NOW / 1000).is_err());
            let other = signer(algorithm, &clock);
            assert!(
                verify(&jwt, &other.jwks(), jose, NOW / 1000).is_err(),
                "another key's set does not verify it"
            );
            assert!(verify(&jwt, &assertions.jwks(), jose, NOW / 1000 + 60).is_err(), "expired at exp");
        }
    }

    #[test]
    fn an_assertion_is_reused_for_the_same_token_route_and_method_for_half_its_life() {
        let clock = ManualClock::new(NOW);
        let assertions = signer(AssertionAlgorithm::Es256, &clock);
        let session = session();
        let first = assertions.for_request(&subject(&session, &[1; 32], "GET")).expect("sign");
        assert_eq!(assertions.for_request(&subject(&session, &[1; 32], "GET")).expect("sign"), first);
        assert_ne!(
            assertions.for_request(&subject(&session, &[1; 32], "POST")).expect("sign"),
            first,
            "another method"
        );
        assert_ne!(
            assertions.for_request(&subject(&session, &[2; 32], "GET")).expect("sign"),
            first,
            "another token"
        );
        let other_route = Subject {
            route_id: 8,
            ..subject(&session, &[1; 32], "GET")
        };
        assert_ne!(assertions.for_request(&other_route).expect("sign"), first, "another route");
        clock.advance(29_999);
        assert_eq!(assertions.for_request(&subject(&session, &[1; 32], "GET")).expect("sign"), first);
        clock.advance(1);
        let renewed = assertions.for_request(&subject(&session, &[1; 32], "GET")).expect("sign");
        assert_ne!(renewed, first, "signed again with half its life gone");
        let minted = Subject {
            token: None,
            ..subject(&session, &[1; 32], "GET")
        };
        assert_ne!(
            assertions.for_request(&minted).expect("sign"),
            renewed,
            "a token the core just minted is not reused"
        );
    }

    #[test]
    fn a_rotated_key_stays_published_for_one_lifetime_and_a_generated_one_is_kept() {
        let clock = ManualClock::new(NOW);
        let dir = std::env::temp_dir().join(format!("assertion-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let write_key = |name: &str| {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let der = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("key");
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(der.as_ref())
            );
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write");
            path
        };
        let mut with_file = settings(AssertionAlgorithm::Es256);
        with_file.key_file = Some(write_key("old.pem"));
        let shared: SharedClock = Arc::new(clock.clone());
        let old = Assertions::build(&with_file, None, shared.clone(), 100)
            .expect("build")
            .expect("on");
        let session = session();
        let before = old.for_request(&subject(&session, &[1; 32], "GET")).expect("sign");
        // The same file again: the same key, nothing retired.
        let same = Assertions::build(&with_file, Some(&old), shared.clone(), 100)
            .expect("build")
            .expect("on");
        assert_eq!(same.jwks()["keys"].as_array().map(Vec::len), Some(1));
        // A new file and a reload: both published, both verify.
        with_file.key_file = Some(write_key("new.pem"));
        let new = Assertions::build(&with_file, Some(&same), shared.clone(), 100)
            .expect("build")
            .expect("on");
        let after = new.for_request(&subject(&session, &[1; 32], "GET")).expect("sign");
        assert_ne!(
            jsonwebtoken::decode_header(&*before).expect("h").kid,
            jsonwebtoken::decode_header(&*after).expect("h").kid
        );
        let published = new.jwks();
        assert_eq!(published["keys"].as_array().map(Vec::len), Some(2));
        verify(&before, &published, Algorithm::ES256, NOW / 1000).expect("the old key's assertion verifies in the overlap");
        verify(&after, &published, Algorithm::ES256, NOW / 1000).expect("the new key's verifies");
        // One lifetime later only the new key is published.
        clock.advance(60_000);
        let published = new.jwks();
        assert_eq!(published["keys"].as_array().map(Vec::len), Some(1));
        assert!(verify(&before, &published, Algorithm::ES256, NOW / 1000).is_err());
        // A generated key survives a reload that names no file.
        let generated = signer(AssertionAlgorithm::EdDsa, &clock);
        let again = Assertions::build(&settings(AssertionAlgorithm::EdDsa), Some(&generated), shared, 100)
            .expect("build")
            .expect("on");
        assert_eq!(generated.jwks(), again.jwks());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever the user id and claims hold (quotes, any printable Unicode, nested JSON), the
        /// assertion verifies and says exactly the session's user; a copied claim is a primitive or a
        /// list of primitives, never a structure that could shadow a registered claim.
        #[test]
        fn any_user_and_claims_round_trip_without_injection(user in "\\PC{1,40}", plan in json_value()) {
            let clock = ManualClock::new(NOW);
            let assertions = signer(AssertionAlgorithm::EdDsa, &clock);
            let payload = json!({"sub": user, "exp": 1_767_229_200u64, "iat": 1_767_225_600u64, "tId": "public", "rsub": user,
                "sessionHandle": "h", "refreshTokenHash1": "r", "parentRefreshTokenHash1": null, "antiCsrfToken": null,
                "plan": plan, "nested": {"v": plan}});
            let session = SessionInfo::from_token(&Arc::new(SessionToken::from_parsed(&parsed_v5(&payload))));
            let jwt = assertions.for_request(&subject(&session, &[3; 32], "GET")).expect("sign");
            let claims = verify(&jwt, &assertions.jwks(), Algorithm::EdDSA, NOW / 1000).expect("verifies");
            // The session's user id is the token's `sub` trimmed, as the SDK's getUserId() reads it.
            proptest::prop_assert_eq!(claims["sub"].as_str(), Some(user.trim()));
            proptest::prop_assert_eq!(claims["sub"].as_str(), Some(session.user_id()));
            proptest::prop_assert_eq!(claims["aud"].as_str(), Some("orders-api"));
            for name in ["plan", "nested"] {
                if let Some(v) = claims.get(name) {
                    let primitive = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
                    let ok = primitive(v) || v.as_array().is_some_and(|a| a.iter().all(primitive));
                    proptest::prop_assert!(ok, "{name} copied as {v}");
                }
            }
        }
    }

    #[test]
    fn a_key_file_that_is_not_a_pkcs8_key_of_the_algorithm_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("assertion-bad-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let ed = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let path = dir.join("ed.pem");
        std::fs::write(
            &path,
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(ed.as_ref())
            ),
        )
        .expect("write");
        let mut s = settings(AssertionAlgorithm::Es256);
        s.key_file = Some(path);
        let clock: SharedClock = Arc::new(ManualClock::new(NOW));
        let err = Assertions::build(&s, None, clock.clone(), 10).err().expect("refused").to_string();
        assert!(err.contains("assertion.key_file") && err.contains("ES256"), "{err}");
        s.key_file = Some(dir.join("missing.pem"));
        let err = Assertions::build(&s, None, clock, 10).err().expect("refused").to_string();
        assert!(err.contains("assertion.key_file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
