//! The embedded issuer behind `session-authorizer dev`, also the stub core of the test suites:
//! a fresh RS256 key, a JWKS served over HTTP like a core's `/.well-known/jwks.json`, access
//! tokens minted in the core's v5 format, and `/recipe/session/verify` as a CDI 5.4 core
//! answers it (a new token on the first use after a refresh; UNAUTHORISED once revoked).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::clock::{SharedClock, SystemClock};
use crate::session::token::ParsedToken;

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("RSA key generation failed")]
    KeyGen,
    #[error("signing failed")]
    Sign,
    #[error("cannot bind the issuer: {0}")]
    Bind(#[from] std::io::Error),
}

struct SigningKey {
    kid: String,
    pair: KeyPair,
}

impl SigningKey {
    fn generate(kid: String) -> Result<Self, IssuerError> {
        Ok(Self {
            kid,
            pair: KeyPair::generate(KeySize::Rsa2048).map_err(|_| IssuerError::KeyGen)?,
        })
    }

    fn jwk(&self) -> Value {
        let pk = self.pair.public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero()),
            "alg": "RS256",
            "use": "sig",
        })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| IssuerError::Sign)?;
        Ok(sig)
    }
}

/// Which key signs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyChoice {
    #[default]
    Dynamic,
    Static,
    /// A key that is not in the JWKS (same kid as the dynamic key).
    Rogue,
}

/// What a minted token says. Defaults give a valid v5 session for `user-1` valid for an hour.
#[derive(Debug, Clone)]
pub struct MintOptions {
    pub user_id: String,
    pub recipe_user_id: Option<String>,
    /// `None` leaves `tId` out.
    pub tenant_id: Option<String>,
    pub session_handle: String,
    /// Seconds from now until `exp`; negative mints an expired token.
    pub ttl_secs: i64,
    pub anti_csrf_token: Option<String>,
    pub parent_refresh_token_hash1: Option<String>,
    /// Custom claims (`st-ev`, `st-role`, ...), placed first as the core does.
    pub claims: Map<String, Value>,
    pub key: KeyChoice,
    pub version: u32,
}

impl Default for MintOptions {
    fn default() -> Self {
        Self {
            user_id: "user-1".into(),
            recipe_user_id: None,
            tenant_id: Some("public".into()),
            session_handle: "session-1".into(),
            ttl_secs: 3600,
            anti_csrf_token: None,
            parent_refresh_token_hash1: None,
            claims: Map::new(),
            key: KeyChoice::Dynamic,
            version: 5,
        }
    }
}

/// How `/recipe/session/verify` misbehaves, for fault tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum VerifyMode {
    Normal = 0,
    Http500 = 1,
    TryRefresh = 2,
}

pub struct Issuer {
    dynamic: SigningKey,
    statik: SigningKey,
    rogue: SigningKey,
    clock: SharedClock,
    revoked: Mutex<HashSet<String>>,
    verify_mode: AtomicU8,
    jwks_down: AtomicU8,
    pub jwks_requests: AtomicU64,
    pub verify_requests: AtomicU64,
    /// Bodies of `/recipe/session/verify` calls, newest last.
    pub verify_bodies: Mutex<Vec<Value>>,
    /// Lifetime of tokens the core mints on verify.
    pub access_token_validity_secs: u64,
}

impl Issuer {
    pub fn new() -> Result<Arc<Self>, IssuerError> {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: SharedClock) -> Result<Arc<Self>, IssuerError> {
        let now = clock.now_ms();
        Ok(Arc::new(Self {
            dynamic: SigningKey::generate(format!("d-{now}"))?,
            statik: SigningKey::generate(format!("s-{:032x}", u128::from(now) * 7919))?,
            rogue: SigningKey::generate(format!("d-{now}"))?,
            clock,
            revoked: Mutex::new(HashSet::new()),
            verify_mode: AtomicU8::new(VerifyMode::Normal as u8),
            jwks_down: AtomicU8::new(0),
            jwks_requests: AtomicU64::new(0),
            verify_requests: AtomicU64::new(0),
            verify_bodies: Mutex::new(Vec::new()),
            access_token_validity_secs: 3600,
        }))
    }

    pub fn dynamic_kid(&self) -> &str {
        &self.dynamic.kid
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.dynamic.jwk(), self.statik.jwk()] })
    }

    /// The dynamic key's public JWK (e.g. for HS256-with-the-public-key attacks in tests).
    pub fn public_jwk(&self) -> Value {
        self.dynamic.jwk()
    }

    pub fn revoke(&self, session_handle: &str) {
        if let Ok(mut r) = self.revoked.lock() {
            r.insert(session_handle.to_owned());
        }
    }

    pub fn set_verify_mode(&self, mode: VerifyMode) {
        self.verify_mode.store(mode as u8, Ordering::SeqCst);
    }

    /// While down, the JWKS endpoint answers 503.
    pub fn set_jwks_down(&self, down: bool) {
        self.jwks_down.store(u8::from(down), Ordering::SeqCst);
    }

    /// Signs arbitrary header and payload JSON with the chosen key (tests craft attacks with it).
    pub fn sign_raw(&self, header: &Value, payload: &Value, key: KeyChoice) -> Result<String, IssuerError> {
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).map_err(|_| IssuerError::Sign)?);
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).map_err(|_| IssuerError::Sign)?);
        let input = format!("{h}.{p}");
        let key = match key {
            KeyChoice::Dynamic => &self.dynamic,
            KeyChoice::Static => &self.statik,
            KeyChoice::Rogue => &self.rogue,
        };
        let sig = key.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    pub fn header_for(&self, key: KeyChoice, version: u32) -> Value {
        let kid = match key {
            KeyChoice::Static => &self.statik.kid,
            KeyChoice::Dynamic | KeyChoice::Rogue => &self.dynamic.kid,
        };
        json!({"alg": "RS256", "typ": "JWT", "kid": kid, "version": version.to_string()})
    }

    /// The payload the core would put in a token, in its key order.
    pub fn payload_for(&self, o: &MintOptions) -> Value {
        let now_s = (self.clock.now_ms() / 1000) as i64;
        let mut p = o.claims.clone();
        p.insert("sub".into(), json!(o.user_id));
        if o.version >= 5 {
            p.insert("rsub".into(), json!(o.recipe_user_id.clone().unwrap_or_else(|| o.user_id.clone())));
        }
        if let Some(t) = &o.tenant_id
            && o.version >= 4
        {
            p.insert("tId".into(), json!(t));
        }
        p.insert("sessionHandle".into(), json!(o.session_handle));
        p.insert("refreshTokenHash1".into(), json!("rth1-".to_owned() + &o.session_handle));
        p.insert("parentRefreshTokenHash1".into(), json!(o.parent_refresh_token_hash1));
        p.insert("antiCsrfToken".into(), json!(o.anti_csrf_token));
        p.insert("iat".into(), json!(now_s.min(now_s + o.ttl_secs)));
        p.insert("exp".into(), json!(now_s + o.ttl_secs));
        Value::Object(p)
    }

    pub fn mint(&self, o: &MintOptions) -> Result<String, IssuerError> {
        self.sign_raw(&self.header_for(o.key, o.version), &self.payload_for(o), o.key)
    }

    /// Serves the core endpoints on `addr` in the background; returns the bound address.
    pub async fn serve(self: &Arc<Self>, addr: SocketAddr) -> Result<SocketAddr, IssuerError> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = self.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "embedded issuer stopped");
            }
        });
        Ok(bound)
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/jwks.json", get(jwks_handler))
            .route("/apiversion", get(|| async { Json(json!({"versions": ["5.4"]})) }))
            .route("/recipe/session/verify", post(verify_handler))
            .with_state(self.clone())
    }

    fn verify(&self, body: &VerifyBody) -> Value {
        let Ok(token) = ParsedToken::parse(&body.access_token) else {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "Token parsing failed"});
        };
        let key = match token.kid.as_deref() {
            Some(k) if k == self.dynamic.kid => &self.dynamic,
            Some(k) if k == self.statik.kid => &self.statik,
            _ => return json!({"status": "TRY_REFRESH_TOKEN", "message": "unknown kid"}),
        };
        let jwk = key.jwk();
        let genuine = jsonwebtoken::DecodingKey::from_rsa_components(
            jwk.get("n").and_then(Value::as_str).unwrap_or_default(),
            jwk.get("e").and_then(Value::as_str).unwrap_or_default(),
        )
        .ok()
        .and_then(|k| jsonwebtoken::crypto::verify(token.signature(), token.signing_input(), &k, jsonwebtoken::Algorithm::RS256).ok())
        .unwrap_or(false);
        if !genuine || token.expiry_ms() <= self.clock.now_ms() as f64 {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "Access token expired or invalid"});
        }
        if body.enable_anti_csrf && body.do_anti_csrf_check && token.anti_csrf_token() != body.anti_csrf_token.as_deref() {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "anti-csrf check failed"});
        }
        let handle = token.session_handle().to_owned();
        let revoked = self.revoked.lock().map(|r| r.contains(&handle)).unwrap_or(true);
        if revoked {
            return json!({"status": "UNAUTHORISED", "message": "Either the session has ended or has been blacklisted"});
        }
        let protected = [
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
        let custom: Map<String, Value> = token
            .payload
            .iter()
            .filter(|(k, _)| !protected.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let session = json!({
            "handle": handle,
            "userId": token.user_id(),
            "recipeUserId": token.recipe_user_id(),
            "userDataInJWT": custom,
            "tenantId": token.tenant_id().unwrap_or_else(|| "public".into()),
        });
        if token.parent_refresh_token_hash1().is_none() {
            return json!({"status": "OK", "session": session});
        }
        // First use after a refresh: promote and mint a token without the parent hash.
        let now_ms = self.clock.now_ms();
        let mut payload = (*token.payload).clone();
        payload.insert("parentRefreshTokenHash1".into(), Value::Null);
        payload.insert("iat".into(), json!(now_ms / 1000));
        let exp = now_ms / 1000 + self.access_token_validity_secs;
        payload.insert("exp".into(), json!(exp));
        let signing = if key.kid == self.statik.kid {
            KeyChoice::Static
        } else {
            KeyChoice::Dynamic
        };
        match self.sign_raw(&Value::Object(token.header.clone()), &Value::Object(payload), signing) {
            Ok(new_token) => {
                json!({"status": "OK", "session": session, "accessToken": {"token": new_token, "expiry": exp * 1000, "createdTime": now_ms}})
            }
            Err(_) => json!({"status": "TRY_REFRESH_TOKEN", "message": "signing failed"}),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyBody {
    access_token: String,
    #[serde(default)]
    anti_csrf_token: Option<String>,
    #[serde(default)]
    do_anti_csrf_check: bool,
    #[serde(default)]
    enable_anti_csrf: bool,
}

async fn jwks_handler(State(issuer): State<Arc<Issuer>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    issuer.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if issuer.jwks_down.load(Ordering::SeqCst) != 0 {
        return (http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    Json(issuer.jwks()).into_response()
}

async fn verify_handler(State(issuer): State<Arc<Issuer>>, Json(body): Json<Value>) -> axum::response::Response {
    use axum::response::IntoResponse;
    issuer.verify_requests.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut bodies) = issuer.verify_bodies.lock() {
        bodies.push(body.clone());
    }
    match issuer.verify_mode.load(Ordering::SeqCst) {
        1 => return (http::StatusCode::INTERNAL_SERVER_ERROR, "core failure").into_response(),
        2 => {
            return Json(json!({"status": "TRY_REFRESH_TOKEN", "message": "forced"})).into_response();
        }
        _ => {}
    }
    match serde_json::from_value::<VerifyBody>(body) {
        Ok(b) => Json(issuer.verify(&b)).into_response(),
        Err(e) => (http::StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}
