//! Verified access tokens kept in memory, keyed by the SHA-256 of the raw token (never the token
//! itself): a hit skips parsing and the RSA check. Entries never outlive the token's `exp` (nor
//! `cache.max_ttl_secs`); times, anti-CSRF, route policy and claims are still checked on every
//! request. Tokens whose signature failed go to a small negative cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use moka::Expiry;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::session::token::ParsedToken;
use crate::session::verify::VerifyError;

pub type TokenKey = [u8; 32];

pub fn token_key(raw: &str) -> TokenKey {
    Sha256::digest(raw.as_bytes()).into()
}

/// Payload keys not kept for claims: refresh hashes are bulky and the anti-CSRF token is a secret.
const DROPPED_FROM_CLAIMS: [&str; 3] = ["refreshTokenHash1", "parentRefreshTokenHash1", "antiCsrfToken"];

/// The facts of an access token the decision reads, compact enough to cache by the hundred thousand.
#[derive(Debug)]
pub struct SessionToken {
    pub version: u64,
    pub dynamic_key: bool,
    pub user_id: Arc<str>,
    pub recipe_user_id: Option<Arc<str>>,
    pub session_handle: Arc<str>,
    pub tenant_id: Option<Arc<str>>,
    pub anti_csrf_token: Option<Box<str>>,
    pub has_parent_refresh_token: bool,
    /// `exp`, `nbf`, `iat` (seconds) for v3+; `None` when absent.
    pub exp_s: Option<f64>,
    pub nbf_s: Option<f64>,
    /// Expiry in ms (`exp * 1000` or v2's `expiryTime`) and creation in ms.
    pub expiry_ms: f64,
    pub created_ms: f64,
    /// Claims (the payload, or v2's `userData`) without the keys in `DROPPED_FROM_CLAIMS`, as JSON.
    claims_json: Box<str>,
    claims: OnceLock<Arc<Map<String, Value>>>,
}

impl SessionToken {
    pub fn from_parsed(t: &ParsedToken) -> Self {
        let number = |k: &str| t.payload.get(k).and_then(Value::as_f64);
        let mut claims = (*t.claims_payload()).clone();
        for k in DROPPED_FROM_CLAIMS {
            claims.shift_remove(k);
        }
        let user_id: Arc<str> = t.user_id().into();
        let recipe = t.recipe_user_id();
        Self {
            version: t.version,
            dynamic_key: t.kid.as_deref().is_some_and(|k| k.starts_with("d-")),
            recipe_user_id: (recipe != &*user_id).then(|| recipe.into()),
            user_id,
            session_handle: t.session_handle().into(),
            tenant_id: t.tenant_id().map(Into::into),
            anti_csrf_token: t.anti_csrf_token().map(Into::into),
            has_parent_refresh_token: t.parent_refresh_token_hash1().is_some(),
            exp_s: if t.version >= 3 { number("exp") } else { None },
            nbf_s: number("nbf"),
            expiry_ms: t.expiry_ms(),
            created_ms: t.created_ms(),
            claims_json: serde_json::to_string(&claims).unwrap_or_else(|_| "{}".into()).into(),
            claims: OnceLock::new(),
        }
    }

    pub fn recipe_user_id(&self) -> Arc<str> {
        self.recipe_user_id.clone().unwrap_or_else(|| self.user_id.clone())
    }

    /// The claims payload, parsed on first use (most requests never need it).
    pub fn claims(&self) -> Arc<Map<String, Value>> {
        self.claims
            .get_or_init(|| Arc::new(serde_json::from_str(&self.claims_json).unwrap_or_default()))
            .clone()
    }

    /// jose's `exp`/`nbf` rules (seconds, `now = floor(Date.now()/1000)`), then the SDK's own
    /// `expiryTime < Date.now()` check: with no leeway a token is valid iff `now_ms < exp * 1000`.
    pub fn check_times(&self, now_ms: u64, skew_ms: u64) -> Result<(), VerifyError> {
        let now_s = (now_ms / 1000) as f64;
        let skew_s = (skew_ms / 1000) as f64;
        if let Some(nbf) = self.nbf_s
            && nbf > now_s + skew_s
        {
            return Err(VerifyError::NotYetValid);
        }
        if let Some(exp) = self.exp_s
            && exp <= now_s - skew_s
        {
            return Err(VerifyError::Expired);
        }
        if self.expiry_ms + (skew_ms as f64) < now_ms as f64 {
            return Err(VerifyError::Expired);
        }
        Ok(())
    }

    /// How long a cache entry may live: until the token expires, at most `max_ttl_ms`.
    fn cache_until_ms(&self, now_ms: u64, max_ttl_ms: u64) -> u64 {
        let exp = if self.expiry_ms.is_finite() && self.expiry_ms > 0.0 {
            self.expiry_ms as u64
        } else {
            0
        };
        exp.min(now_ms.saturating_add(max_ttl_ms))
    }
}

struct Entry {
    token: Arc<SessionToken>,
    until_ms: u64,
}

struct UntilExpiry {
    clock: SharedClock,
}

impl Expiry<TokenKey, Arc<Entry>> for UntilExpiry {
    fn expire_after_create(&self, _key: &TokenKey, value: &Arc<Entry>, _created_at: Instant) -> Option<Duration> {
        Some(Duration::from_millis(value.until_ms.saturating_sub(self.clock.now_ms())))
    }
}

/// Counters, copied into the Prometheus registry when `/metrics` is scraped.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: Arc<AtomicU64>,
    pub rejected_hits: AtomicU64,
    /// Signature checks actually run (concurrent misses on one token count once).
    pub verifications: AtomicU64,
}

pub struct TokenCache {
    verified: Option<moka::future::Cache<TokenKey, Arc<Entry>>>,
    rejected: moka::future::Cache<TokenKey, VerifyError>,
    clock: SharedClock,
    max_ttl_ms: u64,
    pub stats: CacheStats,
}

impl TokenCache {
    pub fn new(max_entries: u64, max_ttl_secs: u64, clock: SharedClock) -> Self {
        let stats = CacheStats::default();
        let evictions = stats.evictions.clone();
        let verified = (max_entries > 0 && max_ttl_secs > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExpiry { clock: clock.clone() })
                .eviction_listener(move |_k, _v, cause| {
                    if cause.was_evicted() {
                        evictions.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .build()
        });
        let rejected = moka::future::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(60))
            .build();
        Self {
            verified,
            rejected,
            clock,
            max_ttl_ms: max_ttl_secs.saturating_mul(1000),
            stats,
        }
    }

    /// The exact entry count, after pending maintenance (tests and the RSS benchmark).
    pub async fn entries_now(&self) -> u64 {
        match &self.verified {
            Some(c) => {
                c.run_pending_tasks().await;
                c.entry_count()
            }
            None => 0,
        }
    }

    pub async fn get(&self, key: &TokenKey) -> Option<Arc<SessionToken>> {
        let hit = match &self.verified {
            Some(c) => c
                .get(key)
                .await
                .filter(|e| e.until_ms > self.clock.now_ms())
                .map(|e| e.token.clone()),
            None => None,
        };
        let counter = if hit.is_some() { &self.stats.hits } else { &self.stats.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    pub async fn rejected(&self, key: &TokenKey) -> Option<VerifyError> {
        let r = self.rejected.get(key).await;
        if r.is_some() {
            self.stats.rejected_hits.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Verifies once for every concurrent caller with the same token and caches the success;
    /// a failed signature goes to the negative cache.
    pub async fn verify_once<F>(&self, key: TokenKey, token: &ParsedToken, verify: F) -> Result<Arc<SessionToken>, VerifyError>
    where
        F: Future<Output = Result<(), VerifyError>>,
    {
        let Some(cache) = &self.verified else {
            self.stats.verifications.fetch_add(1, Ordering::Relaxed);
            verify.await?;
            return Ok(Arc::new(SessionToken::from_parsed(token)));
        };
        let now = self.clock.now_ms();
        let max_ttl = self.max_ttl_ms;
        let result = cache
            .try_get_with(key, async move {
                self.stats.verifications.fetch_add(1, Ordering::Relaxed);
                verify.await?;
                let facts = Arc::new(SessionToken::from_parsed(token));
                let until_ms = facts.cache_until_ms(now, max_ttl);
                Ok::<_, VerifyError>(Arc::new(Entry { token: facts, until_ms }))
            })
            .await;
        match result {
            Ok(entry) => Ok(entry.token.clone()),
            Err(e) => {
                let e = (*e).clone();
                if e.is_permanent() {
                    self.rejected.insert(key, e.clone()).await;
                }
                Err(e)
            }
        }
    }

    /// Remembers a token that can never pass (an expired one stays expired).
    pub async fn reject(&self, key: TokenKey, e: VerifyError) {
        self.rejected.insert(key, e).await;
    }

    /// Drops a token the core has revoked.
    pub async fn invalidate(&self, key: &TokenKey) {
        if let Some(c) = &self.verified {
            c.invalidate(key).await;
        }
    }
}
