//! JWKS cache behaviour with an injected clock and a scripted key source: refetch on an unknown
//! kid after the cooldown, one fetch for a burst, coalesced concurrent misses, keys kept while
//! the core is down (up to the stale allowance), refresh after the max age.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::DecodingKey;
use session_authorizer::clock::ManualClock;
use session_authorizer::dev::Issuer;
use session_authorizer::verification::jwks::{JwksCache, JwksError, JwksPolicy, JwksSource, VerificationKey, parse_jwks};

/// Serves a scripted list of kids, counting fetches; can fail or be slow on demand.
#[derive(Clone)]
struct Scripted {
    kids: Arc<std::sync::Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    fetches: Arc<AtomicU64>,
    key: Arc<DecodingKey>,
}

impl Scripted {
    fn new(kids: &[&str]) -> Self {
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xc3u8; 256]);
        Self {
            kids: Arc::new(std::sync::Mutex::new(kids.iter().map(|k| k.to_string()).collect())),
            down: Arc::new(AtomicBool::new(false)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            fetches: Arc::new(AtomicU64::new(0)),
            key: Arc::new(DecodingKey::from_rsa_components(&n, "AQAB").expect("key")),
        }
    }
    fn set_kids(&self, kids: &[&str]) {
        *self.kids.lock().expect("lock") = kids.iter().map(|k| k.to_string()).collect();
    }
}

impl JwksSource for Scripted {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<VerificationKey>, JwksError>> + Send + '_>> {
        Box::pin(async move {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let delay = self.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if self.down.load(Ordering::SeqCst) {
                return Err(JwksError::Fetch("core down".into()));
            }
            let kids = self.kids.lock().expect("lock").clone();
            Ok(kids
                .into_iter()
                .map(|kid| VerificationKey {
                    kid,
                    key: self.key.clone(),
                })
                .collect())
        })
    }
}

const POLICY: JwksPolicy = JwksPolicy {
    max_age_ms: 14_400_000,
    cooldown_ms: 500,
    max_stale_ms: 86_400_000,
};

fn cache(source: &Scripted, clock: &ManualClock) -> Arc<JwksCache> {
    Arc::new(JwksCache::new(source.clone(), Arc::new(clock.clone()), POLICY))
}

#[tokio::test]
async fn unknown_kid_refetches_after_cooldown_only() {
    let clock = ManualClock::new(1_000_000);
    let src = Scripted::new(&["d-1"]);
    let c = cache(&src, &clock);
    assert!(c.key_for("d-1").await.is_ok());
    assert_eq!(src.fetches.load(Ordering::SeqCst), 1);
    // Rotation: the core now has d-2, but we fetched 100 ms ago: no refetch yet.
    src.set_kids(&["d-1", "d-2"]);
    clock.advance(100);
    assert_eq!(c.key_for("d-2").await.err(), Some(JwksError::UnknownKid("d-2".into())));
    assert_eq!(src.fetches.load(Ordering::SeqCst), 1);
    clock.advance(400);
    assert!(c.key_for("d-2").await.is_ok(), "new kid picked up after the cooldown");
    assert_eq!(src.fetches.load(Ordering::SeqCst), 2);
    assert!(c.key_for("d-1").await.is_ok());
    assert_eq!(src.fetches.load(Ordering::SeqCst), 2, "known kids never refetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_unknown_kids_costs_one_fetch_per_cooldown() {
    let clock = ManualClock::new(1_000_000);
    let src = Scripted::new(&["d-1"]);
    let c = cache(&src, &clock);
    c.key_for("d-1").await.expect("warm");
    clock.advance(1_000);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.key_for(&format!("d-random-{i}")).await }));
    }
    for t in tasks {
        assert!(t.await.expect("join").is_err());
    }
    assert_eq!(
        src.fetches.load(Ordering::SeqCst),
        2,
        "one warm-up fetch and one refetch for the whole burst"
    );
    clock.advance(100);
    assert!(c.key_for("d-other").await.is_err());
    assert_eq!(src.fetches.load(Ordering::SeqCst), 2, "still cooling down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_a_cold_cache_are_coalesced() {
    let clock = ManualClock::new(1_000_000);
    let src = Scripted::new(&["d-1"]);
    src.delay_ms.store(100, Ordering::SeqCst);
    let c = cache(&src, &clock);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.key_for("d-1").await.is_ok() }));
    }
    for t in tasks {
        assert!(t.await.expect("join"));
    }
    assert_eq!(src.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn keys_are_kept_while_the_core_is_down_up_to_the_stale_limit() {
    let clock = ManualClock::new(1_000_000);
    let src = Scripted::new(&["d-1"]);
    let c = cache(&src, &clock);
    c.key_for("d-1").await.expect("warm");
    src.down.store(true, Ordering::SeqCst);
    // Past the refresh interval: the refresh fails, the held key still verifies.
    clock.advance(POLICY.max_age_ms + 1);
    assert!(c.key_for("d-1").await.is_ok());
    assert!(c.status().usable && !c.status().fresh);
    assert_eq!(src.fetches.load(Ordering::SeqCst), 2);
    // Past the stale allowance: fail closed.
    clock.advance(POLICY.max_stale_ms);
    assert!(c.key_for("d-1").await.is_err());
    assert!(!c.status().usable);
    // The core is back: keys reload.
    src.down.store(false, Ordering::SeqCst);
    assert!(c.key_for("d-1").await.is_ok());
    assert!(c.status().fresh);
}

#[tokio::test]
async fn refreshes_after_max_age() {
    let clock = ManualClock::new(1_000_000);
    let src = Scripted::new(&["d-1"]);
    let c = cache(&src, &clock);
    c.key_for("d-1").await.expect("warm");
    clock.advance(POLICY.max_age_ms - 1);
    c.key_for("d-1").await.expect("fresh");
    assert_eq!(src.fetches.load(Ordering::SeqCst), 1);
    clock.advance(1);
    src.set_kids(&["d-2"]);
    assert!(c.key_for("d-1").await.is_err(), "a key gone from a refreshed set is gone");
    assert_eq!(src.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn cold_cache_with_core_down_fails() {
    let clock = ManualClock::new(1_000_000);
    let src = Scripted::new(&["d-1"]);
    src.down.store(true, Ordering::SeqCst);
    let c = cache(&src, &clock);
    assert!(matches!(c.key_for("d-1").await, Err(JwksError::Fetch(_))));
    assert!(!c.status().usable);
}

#[test]
fn parses_a_core_jwks_and_skips_unusable_keys() {
    let issuer = Issuer::new().expect("issuer");
    let mut doc = issuer.jwks();
    let keys = doc["keys"].as_array_mut().expect("keys");
    keys.push(serde_json::json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "a", "y": "b"}));
    keys.push(serde_json::json!({"kty": "RSA", "kid": "enc", "n": "AQAB", "e": "AQAB", "use": "enc"}));
    keys.push(serde_json::json!({"kty": "RSA", "kid": "rs512", "n": "AQAB", "e": "AQAB", "alg": "RS512"}));
    let parsed = parse_jwks(doc.to_string().as_bytes()).expect("parse");
    let kids: Vec<_> = parsed.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.iter().all(|k| k.starts_with("d-") || k.starts_with("s-")));
    assert!(parse_jwks(b"{\"nokeys\":1}").is_err());
    assert!(parse_jwks(b"<html>").is_err());
}
