//! The issuer: mints access tokens in the core's v5 format (and older ones on request),
//! publishes its keys as a JWKS, and keeps what the core's lookups answer from: revoked
//! sessions, users, roles and permissions.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::IssuerError;
use super::keys::{KeyChoice, SigningKey};
use crate::clock::{SharedClock, SystemClock};
use crate::credentials::token::DEFAULT_TENANT;

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
            tenant_id: Some(DEFAULT_TENANT.into()),
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
pub(super) struct Directory {
    pub(super) users: HashMap<String, StubUser>,
    pub(super) roles: HashMap<(String, String), Vec<String>>,
    pub(super) permissions: HashMap<String, Vec<String>>,
}

pub struct Issuer {
    /// The newest dynamic key signs; retired ones stay in the JWKS, as the core keeps them while
    /// tokens may still use them.
    pub(super) dynamic: std::sync::RwLock<Arc<SigningKey>>,
    pub(super) retired: std::sync::RwLock<Vec<Arc<SigningKey>>>,
    pub(super) statik: Arc<SigningKey>,
    pub(super) rogue: SigningKey,
    pub(super) clock: SharedClock,
    pub(super) revoked: Mutex<HashSet<String>>,
    pub(super) directory: Mutex<Directory>,
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
            directory: Mutex::new(Directory::default()),
            access_token_validity_secs: 3600,
        }))
    }

    pub(super) fn current(&self) -> Arc<SigningKey> {
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
}
