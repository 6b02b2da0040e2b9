//! The embedded issuer behind `session-authorizer dev`, also the stub core of the test suites:
//! a fresh RS256 key, a JWKS served over HTTP like a core's `/.well-known/jwks.json`, access
//! tokens minted in the core's v5 format, `/recipe/session/verify` and `/regenerate` as a CDI 5.4
//! core answers them (a new token on the first use after a refresh; UNAUTHORISED once revoked),
//! and the user, email-verification and role lookups claim refetches make.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::clock::{SharedClock, SystemClock};
use crate::credentials::token::ParsedToken;

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

/// A user as the stub core knows it: one login method whose recipe user id is the user id.
#[derive(Debug, Clone, Default)]
pub struct StubUser {
    pub email: Option<String>,
    pub email_verified: bool,
}

/// What the stub core stores besides sessions: users, roles per tenant, permissions per role.
#[derive(Debug, Default)]
struct Directory {
    users: HashMap<String, StubUser>,
    roles: HashMap<(String, String), Vec<String>>,
    permissions: HashMap<String, Vec<String>>,
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
    /// The newest dynamic key signs; retired ones stay in the JWKS, as the core keeps them while
    /// tokens may still use them.
    dynamic: std::sync::RwLock<Arc<SigningKey>>,
    retired: std::sync::RwLock<Vec<Arc<SigningKey>>>,
    statik: Arc<SigningKey>,
    rogue: SigningKey,
    clock: SharedClock,
    revoked: Mutex<HashSet<String>>,
    verify_mode: AtomicU8,
    jwks_down: AtomicU8,
    lookups_down: AtomicU8,
    directory: Mutex<Directory>,
    /// `api-key` headers seen on session, user and role calls, newest last.
    pub api_keys_seen: Mutex<Vec<Option<String>>>,
    pub regenerate_requests: AtomicU64,
    pub lookup_requests: AtomicU64,
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
            dynamic: std::sync::RwLock::new(Arc::new(SigningKey::generate(format!("d-{now}"))?)),
            retired: std::sync::RwLock::new(Vec::new()),
            statik: Arc::new(SigningKey::generate(format!("s-{:032x}", u128::from(now) * 7919))?),
            rogue: SigningKey::generate(format!("d-{now}"))?,
            clock,
            revoked: Mutex::new(HashSet::new()),
            verify_mode: AtomicU8::new(VerifyMode::Normal as u8),
            jwks_down: AtomicU8::new(0),
            lookups_down: AtomicU8::new(0),
            directory: Mutex::new(Directory::default()),
            api_keys_seen: Mutex::new(Vec::new()),
            regenerate_requests: AtomicU64::new(0),
            lookup_requests: AtomicU64::new(0),
            jwks_requests: AtomicU64::new(0),
            verify_requests: AtomicU64::new(0),
            verify_bodies: Mutex::new(Vec::new()),
            access_token_validity_secs: 3600,
        }))
    }

    fn current(&self) -> Arc<SigningKey> {
        match self.dynamic.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn dynamic_kid(&self) -> String {
        self.current().kid.clone()
    }

    /// A key rotation as the core does it: a new dynamic key signs from now on, the old one stays
    /// published. Returns the new kid.
    pub fn rotate_dynamic_key(&self) -> Result<String, IssuerError> {
        let n = self.retired.read().map(|r| r.len()).unwrap_or(0) + 1;
        let fresh = Arc::new(SigningKey::generate(format!("d-{}-{n}", self.clock.now_ms()))?);
        let kid = fresh.kid.clone();
        let old = match self.dynamic.write() {
            Ok(mut k) => std::mem::replace(&mut *k, fresh),
            Err(_) => return Err(IssuerError::KeyGen),
        };
        if let Ok(mut r) = self.retired.write() {
            r.push(old);
        }
        Ok(kid)
    }

    pub fn jwks(&self) -> Value {
        let mut keys = vec![self.current().jwk()];
        if let Ok(r) = self.retired.read() {
            keys.extend(r.iter().rev().map(|k| k.jwk()));
        }
        keys.push(self.statik.jwk());
        json!({ "keys": keys })
    }

    /// The dynamic key's public JWK (e.g. for HS256-with-the-public-key attacks in tests).
    pub fn public_jwk(&self) -> Value {
        self.current().jwk()
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

    /// While down, user, email-verification and role lookups answer 500 (JWKS and sessions work).
    pub fn set_lookups_down(&self, down: bool) {
        self.lookups_down.store(u8::from(down), Ordering::SeqCst);
    }

    pub fn upsert_user(&self, user_id: &str, user: StubUser) {
        if let Ok(mut d) = self.directory.lock() {
            d.users.insert(user_id.to_owned(), user);
        }
    }

    pub fn remove_user(&self, user_id: &str) {
        if let Ok(mut d) = self.directory.lock() {
            d.users.remove(user_id);
        }
    }

    pub fn set_roles(&self, tenant_id: &str, user_id: &str, roles: &[&str]) {
        if let Ok(mut d) = self.directory.lock() {
            d.roles.insert(
                (tenant_id.to_owned(), user_id.to_owned()),
                roles.iter().map(|r| (*r).to_owned()).collect(),
            );
        }
    }

    pub fn set_permissions(&self, role: &str, permissions: &[&str]) {
        if let Ok(mut d) = self.directory.lock() {
            d.permissions
                .insert(role.to_owned(), permissions.iter().map(|p| (*p).to_owned()).collect());
        }
    }

    /// Signs arbitrary header and payload JSON with the chosen key (tests craft attacks with it).
    pub fn sign_raw(&self, header: &Value, payload: &Value, key: KeyChoice) -> Result<String, IssuerError> {
        let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).map_err(|_| IssuerError::Sign)?);
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).map_err(|_| IssuerError::Sign)?);
        let input = format!("{h}.{p}");
        let sig = match key {
            KeyChoice::Dynamic => self.current().sign(input.as_bytes())?,
            KeyChoice::Static => self.statik.sign(input.as_bytes())?,
            KeyChoice::Rogue => self.rogue.sign(input.as_bytes())?,
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    pub fn header_for(&self, key: KeyChoice, version: u32) -> Value {
        let kid = match key {
            KeyChoice::Static => self.statik.kid.clone(),
            KeyChoice::Dynamic | KeyChoice::Rogue => self.dynamic_kid(),
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
            .route("/recipe/session/regenerate", post(regenerate_handler))
            .route("/user/id", get(user_handler))
            .route("/recipe/user/email/verify", get(email_verify_handler))
            .route("/{tenant}/recipe/user/roles", get(roles_handler))
            .route("/recipe/role/permissions", get(permissions_handler))
            .with_state(self.clone())
    }

    /// The signing key of a genuine token (any expiry), or the core's answer refusing it.
    fn genuine_key(&self, token: &ParsedToken) -> Result<Arc<SigningKey>, Value> {
        let current = self.current();
        let retired = self.retired.read().map(|r| r.clone()).unwrap_or_default();
        let key = match token.kid.as_deref() {
            Some(k) if k == current.kid => current,
            Some(k) if k == self.statik.kid => self.statik.clone(),
            Some(k) => match retired.into_iter().find(|r| r.kid == k) {
                Some(r) => r,
                None => return Err(json!({"status": "TRY_REFRESH_TOKEN", "message": "unknown kid"})),
            },
            None => return Err(json!({"status": "TRY_REFRESH_TOKEN", "message": "unknown kid"})),
        };
        let jwk = key.jwk();
        let genuine = jsonwebtoken::DecodingKey::from_rsa_components(
            jwk.get("n").and_then(Value::as_str).unwrap_or_default(),
            jwk.get("e").and_then(Value::as_str).unwrap_or_default(),
        )
        .ok()
        .and_then(|k| jsonwebtoken::crypto::verify(token.signature(), token.signing_input(), &k, jsonwebtoken::Algorithm::RS256).ok())
        .unwrap_or(false);
        if genuine {
            Ok(key)
        } else {
            Err(json!({"status": "TRY_REFRESH_TOKEN", "message": "Access token invalid"}))
        }
    }

    pub fn is_revoked(&self, handle: &str) -> bool {
        self.revoked.lock().map(|r| r.contains(handle)).unwrap_or(true)
    }

    fn session_json(token: &ParsedToken, user_data: &Map<String, Value>) -> Value {
        json!({
            "handle": token.session_handle(),
            "userId": token.user_id(),
            "recipeUserId": token.recipe_user_id(),
            "userDataInJWT": user_data,
            "tenantId": token.tenant_id().unwrap_or_else(|| "public".into()),
        })
    }

    /// The core's regenerate: same session and `exp`, `iat` now, the given custom claims; a new
    /// token only while the old one is unexpired.
    fn regenerate(&self, body: &RegenerateBody) -> Value {
        let Ok(token) = ParsedToken::parse(&body.access_token) else {
            return json!({"status": "UNAUTHORISED", "message": "Token parsing failed"});
        };
        let key = match self.genuine_key(&token) {
            Ok(k) => k,
            Err(_) => return json!({"status": "UNAUTHORISED", "message": "Access token invalid"}),
        };
        if self.is_revoked(token.session_handle()) {
            return json!({"status": "UNAUTHORISED", "message": "Session does not exist."});
        }
        let session = Self::session_json(&token, &body.user_data_in_jwt);
        let now_ms = self.clock.now_ms();
        if token.expiry_ms() <= now_ms as f64 {
            return json!({"status": "OK", "session": session});
        }
        let mut payload = body.user_data_in_jwt.clone();
        for (k, v) in token.payload.iter() {
            if crate::credentials::token::PROTECTED_PROPS.contains(&k.as_str()) {
                payload.insert(k.clone(), v.clone());
            }
        }
        payload.insert("iat".into(), json!(now_ms / 1000));
        self.reissue(&token, &key, payload, session, token.expiry_ms() as u64, "UNAUTHORISED")
    }

    /// The core's answer carrying a new token: the old header, signed by the key of the old one.
    fn reissue(
        &self,
        token: &ParsedToken,
        key: &SigningKey,
        payload: Map<String, Value>,
        session: Value,
        expiry_ms: u64,
        failure: &str,
    ) -> Value {
        let now_ms = self.clock.now_ms();
        let signing = if key.kid == self.statik.kid {
            KeyChoice::Static
        } else {
            KeyChoice::Dynamic
        };
        match self.sign_raw(&Value::Object(token.header.clone()), &Value::Object(payload), signing) {
            Ok(new_token) => {
                json!({"status": "OK", "session": session, "accessToken": {"token": new_token, "expiry": expiry_ms, "createdTime": now_ms}})
            }
            Err(_) => json!({"status": failure, "message": "signing failed"}),
        }
    }

    fn user(&self, user_id: &str) -> Value {
        let user = self.directory.lock().ok().and_then(|d| d.users.get(user_id).cloned());
        let Some(user) = user else {
            return json!({"status": "UNKNOWN_USER_ID_ERROR"});
        };
        let emails: Vec<&String> = user.email.iter().collect();
        let mut login = json!({
            "recipeId": if user.email.is_some() { "emailpassword" } else { "passwordless" },
            "recipeUserId": user_id,
            "tenantIds": ["public"],
            "timeJoined": 0,
            "verified": user.email_verified,
        });
        if let (Some(email), Some(obj)) = (&user.email, login.as_object_mut()) {
            obj.insert("email".into(), json!(email));
        }
        json!({"status": "OK", "user": {
            "id": user_id, "isPrimaryUser": false, "tenantIds": ["public"], "emails": emails,
            "phoneNumbers": [], "thirdParty": [], "webauthn": {"credentialIds": []},
            "loginMethods": [login], "timeJoined": 0,
        }})
    }

    fn verify(&self, body: &VerifyBody) -> Value {
        let Ok(token) = ParsedToken::parse(&body.access_token) else {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "Token parsing failed"});
        };
        let key = match self.genuine_key(&token) {
            Ok(k) => k,
            Err(answer) => return answer,
        };
        if token.expiry_ms() <= self.clock.now_ms() as f64 {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "Access token expired or invalid"});
        }
        if body.enable_anti_csrf && body.do_anti_csrf_check && token.anti_csrf_token() != body.anti_csrf_token.as_deref() {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "anti-csrf check failed"});
        }
        if self.is_revoked(token.session_handle()) {
            return json!({"status": "UNAUTHORISED", "message": "Either the session has ended or has been blacklisted"});
        }
        let custom: Map<String, Value> = token
            .payload
            .iter()
            .filter(|(k, _)| !crate::credentials::token::PROTECTED_PROPS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let session = Self::session_json(&token, &custom);
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
        self.reissue(&token, &key, payload, session, exp * 1000, "TRY_REFRESH_TOKEN")
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegenerateBody {
    access_token: String,
    #[serde(default)]
    #[serde(rename = "userDataInJWT")]
    user_data_in_jwt: Map<String, Value>,
}

fn record_api_key(issuer: &Issuer, headers: &http::HeaderMap) {
    let key = headers.get("api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Ok(mut seen) = issuer.api_keys_seen.lock() {
        seen.push(key);
    }
}

async fn regenerate_handler(State(issuer): State<Arc<Issuer>>, headers: http::HeaderMap, Json(body): Json<RegenerateBody>) -> Json<Value> {
    issuer.regenerate_requests.fetch_add(1, Ordering::SeqCst);
    record_api_key(&issuer, &headers);
    Json(issuer.regenerate(&body))
}

/// The user, email-verification and role lookups: 500 while `set_lookups_down(true)`.
fn lookup(issuer: &Issuer, headers: &http::HeaderMap, answer: impl FnOnce() -> Value) -> axum::response::Response {
    use axum::response::IntoResponse;
    issuer.lookup_requests.fetch_add(1, Ordering::SeqCst);
    record_api_key(issuer, headers);
    if issuer.lookups_down.load(Ordering::SeqCst) != 0 {
        return (http::StatusCode::INTERNAL_SERVER_ERROR, "core failure").into_response();
    }
    Json(answer()).into_response()
}

async fn user_handler(
    State(issuer): State<Arc<Issuer>>,
    headers: http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    lookup(&issuer, &headers, || issuer.user(q.get("userId").map_or("", String::as_str)))
}

async fn email_verify_handler(
    State(issuer): State<Arc<Issuer>>,
    headers: http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    lookup(&issuer, &headers, || {
        let user = issuer
            .directory
            .lock()
            .ok()
            .and_then(|d| d.users.get(q.get("userId").map_or("", String::as_str)).cloned());
        let verified = user.is_some_and(|u| u.email_verified && u.email.as_ref() == q.get("email"));
        json!({"status": "OK", "isVerified": verified})
    })
}

async fn roles_handler(
    State(issuer): State<Arc<Issuer>>,
    Path(tenant): Path<String>,
    headers: http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    lookup(&issuer, &headers, || {
        let user = q.get("userId").cloned().unwrap_or_default();
        let roles = issuer
            .directory
            .lock()
            .ok()
            .and_then(|d| d.roles.get(&(tenant, user)).cloned())
            .unwrap_or_default();
        json!({"status": "OK", "roles": roles})
    })
}

async fn permissions_handler(
    State(issuer): State<Arc<Issuer>>,
    headers: http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> axum::response::Response {
    lookup(&issuer, &headers, || {
        let role = q.get("role").cloned().unwrap_or_default();
        match issuer.directory.lock().ok().and_then(|d| d.permissions.get(&role).cloned()) {
            Some(p) => json!({"status": "OK", "permissions": p}),
            None => json!({"status": "UNKNOWN_ROLE_ERROR"}),
        }
    })
}

async fn jwks_handler(State(issuer): State<Arc<Issuer>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    issuer.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if issuer.jwks_down.load(Ordering::SeqCst) != 0 {
        return (http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    Json(issuer.jwks()).into_response()
}

async fn verify_handler(State(issuer): State<Arc<Issuer>>, headers: http::HeaderMap, Json(body): Json<Value>) -> axum::response::Response {
    use axum::response::IntoResponse;
    issuer.verify_requests.fetch_add(1, Ordering::SeqCst);
    record_api_key(&issuer, &headers);
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
