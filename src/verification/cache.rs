//! Verified access tokens kept in memory, keyed by the SHA-256 of the raw token (never the token
//! itself): a hit skips parsing and the RSA check. Entries are never used past the token's `exp`
//! (nor `cache.max_ttl_secs`); times, anti-CSRF, route policy and claims are still checked on
//! every request. Tokens whose signature failed go to a small negative cache.
//!
//! The store is `quick_cache` rather than moka: moka keeps about 380 bytes of its own per entry
//! (measured: 100k entries of an `Arc<u64>`), which alone would spend most of the memory budget
//! for 100k sessions; quick_cache keeps tens. It has no per-entry expiry, so each entry carries
//! its deadline and a read past it is a miss that removes the entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, UnitWeighter};
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::credentials::token::ParsedToken;
pub use crate::verification::facts::SessionToken;
use crate::verification::signature::VerifyError;

pub type TokenKey = [u8; 32];

pub fn token_key(raw: &str) -> TokenKey {
    Sha256::digest(raw.as_bytes()).into()
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Forged or malformed tokens remembered, and for how long.
const REJECTED_ENTRIES: usize = 10_000;
const REJECTED_TTL_MS: u64 = 60_000;

#[derive(Clone)]
struct Entry {
    token: Arc<SessionToken>,
    until_ms: u64,
}

#[derive(Clone)]
struct Rejected {
    error: VerifyError,
    until_ms: u64,
}

/// Counts entries pushed out by the capacity bound (not expiries).
#[derive(Clone)]
struct CountEvictions(Arc<AtomicU64>);

impl<K, V> Lifecycle<K, V> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: K, _val: V) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every entry weighs one: `cache.max_entries` bounds the count (the bytes follow from it).
type Verified = Cache<TokenKey, Entry, UnitWeighter, quick_cache::DefaultHashBuilder, CountEvictions>;

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

impl CacheStats {
    /// The counters as `(event, total)`, named as the metrics label them.
    pub fn totals(&self) -> [(&'static str, u64); 5] {
        use std::sync::atomic::Ordering::Relaxed;
        [
            ("hit", self.hits.load(Relaxed)),
            ("miss", self.misses.load(Relaxed)),
            ("eviction", self.evictions.load(Relaxed)),
            ("rejected", self.rejected_hits.load(Relaxed)),
            ("verification", self.verifications.load(Relaxed)),
        ]
    }
}

pub struct TokenCache {
    verified: Option<Verified>,
    rejected: Cache<TokenKey, Rejected>,
    clock: SharedClock,
    max_ttl_ms: u64,
    pub stats: CacheStats,
    /// Tells caches apart for the metrics: a reload may put a new one, counting from zero, in
    /// place of the old.
    pub id: u64,
}

impl TokenCache {
    pub fn new(max_entries: u64, max_ttl_secs: u64, clock: SharedClock) -> Self {
        let stats = CacheStats::default();
        let verified = (max_entries > 0 && max_ttl_secs > 0).then(|| {
            let items = usize::try_from(max_entries).unwrap_or(usize::MAX);
            Cache::with(
                items,
                max_entries,
                UnitWeighter,
                quick_cache::DefaultHashBuilder::default(),
                CountEvictions(stats.evictions.clone()),
            )
        });
        Self {
            verified,
            rejected: Cache::new(REJECTED_ENTRIES),
            clock,
            max_ttl_ms: max_ttl_secs.saturating_mul(1000),
            stats,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Entries held (expired ones linger until read or pushed out; they are never used).
    pub fn entries(&self) -> u64 {
        self.verified.as_ref().map_or(0, |c| c.len() as u64)
    }

    /// The verified token for `key`, if cached and before its deadline at `now_ms` (the caller's
    /// one clock reading for the request).
    pub fn get(&self, key: &TokenKey, now_ms: u64) -> Option<Arc<SessionToken>> {
        let hit = self.verified.as_ref().and_then(|c| self.live(c, key, now_ms));
        let counter = if hit.is_some() { &self.stats.hits } else { &self.stats.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// The entry for `key` if it is still within its deadline; a stale one is removed.
    fn live(&self, cache: &Verified, key: &TokenKey, now_ms: u64) -> Option<Arc<SessionToken>> {
        let entry = cache.get(key)?;
        if entry.until_ms > now_ms {
            Some(entry.token)
        } else {
            cache.remove(key);
            None
        }
    }

    pub fn rejected(&self, key: &TokenKey) -> Option<VerifyError> {
        let r = self.rejected.get(key)?;
        if r.until_ms <= self.clock.now_ms() {
            self.rejected.remove(key);
            return None;
        }
        self.stats.rejected_hits.fetch_add(1, Ordering::Relaxed);
        Some(r.error)
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
        // Concurrent misses on one key wait on the first caller's guard; a caller that gives up
        // the guard without a value (the check failed) passes it to the next waiter.
        let guard = match cache.get_value_or_guard_async(&key).await {
            Ok(entry) if entry.until_ms > self.clock.now_ms() => return Ok(entry.token),
            Ok(_) => {
                cache.remove(&key);
                match cache.get_value_or_guard_async(&key).await {
                    Ok(entry) => return Ok(entry.token),
                    Err(guard) => guard,
                }
            }
            Err(guard) => guard,
        };
        // A waiter handed the guard after the first caller failed: that answer stands.
        if let Some(e) = self.rejected(&key) {
            return Err(e);
        }
        self.stats.verifications.fetch_add(1, Ordering::Relaxed);
        match verify.await {
            Ok(()) => {
                let token = Arc::new(SessionToken::from_parsed(token));
                let until_ms = token.cache_until_ms(self.clock.now_ms(), self.max_ttl_ms);
                let _ = guard.insert(Entry {
                    token: token.clone(),
                    until_ms,
                });
                Ok(token)
            }
            Err(e) => {
                if e.is_permanent() {
                    self.reject(key, e.clone());
                }
                Err(e)
            }
        }
    }

    /// Remembers a token that can never pass (an expired one stays expired).
    pub fn reject(&self, key: TokenKey, error: VerifyError) {
        let until_ms = self.clock.now_ms().saturating_add(REJECTED_TTL_MS);
        self.rejected.insert(key, Rejected { error, until_ms });
    }

    /// Drops a token the core has revoked.
    pub fn invalidate(&self, key: &TokenKey) {
        if let Some(c) = &self.verified {
            c.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn token(exp_s: u64) -> ParsedToken {
        crate::credentials::token::test_tokens::parsed_v5(
            &serde_json::json!({"sub": "u", "rsub": "u", "sessionHandle": "h", "refreshTokenHash1": "r", "iat": 1, "exp": exp_s}),
        )
    }

    #[tokio::test]
    async fn entries_are_never_used_past_their_deadline() {
        let clock = ManualClock::new(1_000_000);
        let cache = TokenCache::new(10, 3600, Arc::new(clock.clone()));
        let t = token(1_010); // expires 10 s from now
        let key = token_key("a");
        cache.verify_once(key, &t, async { Ok(()) }).await.expect("verify");
        assert!(cache.get(&key, clock.now_ms()).is_some());
        clock.advance(9_999);
        assert!(cache.get(&key, clock.now_ms()).is_some());
        clock.advance(1);
        assert!(cache.get(&key, clock.now_ms()).is_none(), "an entry at its deadline is a miss");
        assert_eq!(cache.entries(), 0, "and it is removed");
    }

    #[tokio::test]
    async fn capacity_evicts_and_counts() {
        let clock = ManualClock::new(1_000_000);
        let cache = TokenCache::new(50, 3600, Arc::new(clock));
        let t = token(2_000);
        for i in 0..500u32 {
            cache
                .verify_once(token_key(&i.to_string()), &t, async { Ok(()) })
                .await
                .expect("verify");
        }
        assert!(cache.entries() <= 60, "{} entries", cache.entries());
        assert!(cache.stats.evictions.load(Ordering::Relaxed) >= 440);
    }

    #[tokio::test]
    async fn forged_tokens_are_remembered_for_a_while() {
        let clock = ManualClock::new(1_000_000);
        let cache = TokenCache::new(10, 3600, Arc::new(clock.clone()));
        let key = token_key("forged");
        let e = cache.verify_once(key, &token(2_000), async { Err(VerifyError::Signature) }).await;
        assert_eq!(e.err(), Some(VerifyError::Signature));
        assert_eq!(cache.rejected(&key), Some(VerifyError::Signature));
        clock.advance(REJECTED_TTL_MS);
        assert_eq!(cache.rejected(&key), None);
    }
}
