//! The core's JWKS held in memory: refreshed after `jwks_refresh_interval_secs`, refetched on an
//! unknown `kid` at most once per cooldown, concurrent fetches coalesced into one, and the keys
//! already held kept (up to `jwks_max_stale_secs`) while the core cannot be reached.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::clock::SharedClock;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JwksError {
    #[error("JWKS fetch failed: {0}")]
    Fetch(String),
    #[error("JWKS is malformed: {0}")]
    Malformed(String),
    #[error("no key with kid `{0}`")]
    UnknownKid(String),
    #[error("no signing keys are available")]
    NoKeys,
}

/// One verification key as published by the core.
#[derive(Clone)]
pub struct VerificationKey {
    pub kid: String,
    pub key: Arc<DecodingKey>,
}

/// Where keys come from: the core over HTTP in production, a fake in tests.
pub trait JwksSource: Send + Sync + 'static {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<VerificationKey>, JwksError>> + Send + '_>>;
}

/// The JSON a core serves at `/.well-known/jwks.json`.
#[derive(Deserialize)]
struct JwkSetDoc {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RsaJwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
}

/// Keeps the keys usable for RS256 signatures, as jose's key selection would: RSA, `alg` absent
/// or RS256, `use` absent or `sig`, `key_ops` absent or containing `verify`.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<VerificationKey>, JwksError> {
    let doc: JwkSetDoc = serde_json::from_slice(body).map_err(|e| JwksError::Malformed(e.to_string()))?;
    let mut keys = Vec::new();
    for raw in doc.keys {
        let Ok(jwk) = serde_json::from_value::<RsaJwk>(raw) else {
            continue;
        };
        let usable = jwk.kty == "RSA"
            && jwk.alg.as_deref().is_none_or(|a| a == "RS256")
            && jwk.use_.as_deref().is_none_or(|u| u == "sig")
            && jwk.key_ops.as_ref().is_none_or(|ops| ops.iter().any(|o| o == "verify"));
        let (Some(kid), Some(n), Some(e), true) = (jwk.kid, jwk.n, jwk.e, usable) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_rsa_components(&n, &e) {
            keys.push(VerificationKey { kid, key: Arc::new(key) });
        }
    }
    Ok(keys)
}

struct KeySet {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    all: Vec<Arc<DecodingKey>>,
    /// When this set was fetched (ms since epoch); 0 for "never".
    fetched_at_ms: u64,
    generation: u64,
}

impl KeySet {
    fn empty() -> Self {
        Self {
            by_kid: HashMap::new(),
            all: Vec::new(),
            fetched_at_ms: 0,
            generation: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksPolicy {
    pub max_age_ms: u64,
    pub cooldown_ms: u64,
    pub max_stale_ms: u64,
}

/// Snapshot for readiness and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksStatus {
    pub keys: usize,
    pub age_ms: Option<u64>,
    pub fresh: bool,
    /// Past the refresh time but still within the stale allowance.
    pub usable: bool,
}

pub struct JwksCache {
    source: Box<dyn JwksSource>,
    clock: SharedClock,
    policy: JwksPolicy,
    // Readers never lock: they load the current set and look up by kid.
    keys: ArcSwap<KeySet>,
    last_attempt_ms: AtomicU64,
    fetches: AtomicU64,
    // Serialises fetches; waiters see the set the winner stored instead of fetching again.
    refresh: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub fn new(source: impl JwksSource, clock: SharedClock, policy: JwksPolicy) -> Self {
        Self {
            source: Box::new(source),
            clock,
            policy,
            keys: ArcSwap::from_pointee(KeySet::empty()),
            last_attempt_ms: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Starts from the keys `other` holds (the same core's, after a reload changed how they are
    /// fetched), with their age.
    pub fn adopt_keys(&self, other: &JwksCache) {
        self.keys.store(other.keys.load_full());
    }

    /// How many times the source was asked (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> JwksStatus {
        let set = self.keys.load();
        let now = self.clock.now_ms();
        if set.generation == 0 {
            return JwksStatus {
                keys: 0,
                age_ms: None,
                fresh: false,
                usable: false,
            };
        }
        let age = now.saturating_sub(set.fetched_at_ms);
        JwksStatus {
            keys: set.by_kid.len(),
            age_ms: Some(age),
            fresh: age < self.policy.max_age_ms,
            usable: !set.all.is_empty() && age < self.policy.max_age_ms.saturating_add(self.policy.max_stale_ms),
        }
    }

    /// The key for `kid`, fetching the JWKS when it is missing, stale, or lacks that kid.
    pub async fn key_for(&self, kid: &str) -> Result<Arc<DecodingKey>, JwksError> {
        let set = self.keys.load_full();
        let now = self.clock.now_ms();
        if self.is_fresh(&set, now) {
            if let Some(k) = set.by_kid.get(kid) {
                return Ok(k.clone());
            }
            if self.cooling_down(now) {
                return Err(JwksError::UnknownKid(kid.to_owned()));
            }
        }
        match self.reload(set.generation).await {
            Ok(new_set) => new_set
                .by_kid
                .get(kid)
                .cloned()
                .ok_or_else(|| JwksError::UnknownKid(kid.to_owned())),
            Err(e) => self.stale_key(kid).ok_or(e),
        }
    }

    /// Every key held (v2 tokens carry no kid), fetching first if none is fresh.
    pub async fn all_keys(&self) -> Result<Vec<Arc<DecodingKey>>, JwksError> {
        let set = self.keys.load_full();
        let now = self.clock.now_ms();
        if self.is_fresh(&set, now) {
            return Ok(set.all.clone());
        }
        match self.reload(set.generation).await {
            Ok(new_set) if !new_set.all.is_empty() => Ok(new_set.all.clone()),
            Ok(_) => Err(JwksError::NoKeys),
            Err(e) => {
                let set = self.keys.load();
                if self.within_stale(&set) && !set.all.is_empty() {
                    Ok(set.all.clone())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Fetches now unless another fetch did since `seen_generation` (then its result is used).
    async fn reload(&self, seen_generation: u64) -> Result<Arc<KeySet>, JwksError> {
        let _guard = self.refresh.lock().await;
        let current = self.keys.load_full();
        if current.generation != seen_generation {
            return Ok(current);
        }
        let now = self.clock.now_ms();
        self.last_attempt_ms.store(now.max(1), Ordering::SeqCst);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let keys = self.source.fetch().await?;
        let mut by_kid = HashMap::with_capacity(keys.len());
        let mut all = Vec::with_capacity(keys.len());
        for k in keys {
            all.push(k.key.clone());
            by_kid.insert(k.kid, k.key);
        }
        let set = KeySet {
            by_kid,
            all,
            fetched_at_ms: self.clock.now_ms(),
            generation: current.generation + 1,
        };
        let set = Arc::new(set);
        self.keys.store(set.clone());
        Ok(set)
    }

    /// Fetches now (the background refresher), unless a fetch running meanwhile already did.
    pub async fn reload_now(&self) -> Result<(), JwksError> {
        let generation = self.keys.load().generation;
        self.reload(generation).await.map(|_| ())
    }

    fn is_fresh(&self, set: &KeySet, now: u64) -> bool {
        set.generation > 0 && now < set.fetched_at_ms.saturating_add(self.policy.max_age_ms)
    }

    fn cooling_down(&self, now: u64) -> bool {
        let last = self.last_attempt_ms.load(Ordering::SeqCst);
        last != 0 && now < last.saturating_add(self.policy.cooldown_ms)
    }

    fn within_stale(&self, set: &KeySet) -> bool {
        set.generation > 0
            && self.clock.now_ms()
                < set
                    .fetched_at_ms
                    .saturating_add(self.policy.max_age_ms)
                    .saturating_add(self.policy.max_stale_ms)
    }

    fn stale_key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        let set = self.keys.load();
        if self.within_stale(&set) {
            set.by_kid.get(kid).cloned()
        } else {
            None
        }
    }
}
