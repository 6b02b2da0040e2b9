//! The verified-session cache never changes a decision: an expired cached session is refused, a
//! changed request (method, anti-CSRF header, route) is evaluated again, a session the core
//! revokes is dropped, a bad signature is checked once, and concurrent misses verify once.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;
use session_authorizer::app::startup::Application;
use session_authorizer::clock::{Clock, ManualClock, SystemClock};
use session_authorizer::config::Config;
use session_authorizer::dev::{KeyChoice, MintOptions};
use session_authorizer::settings::Settings;
use session_authorizer::state::AppState;
use support::{StubCore, rest_event, settings};

const CONFIG: &str = r#"
[supertokens]
anti_csrf = "VIA_TOKEN"

[[routes]]
path = "/admin/**"
claims = [{ claim = "st-role", includes = "admin" }]

[[routes]]
path = "/db/**"
check_database = true
"#;

struct Running {
    addr: SocketAddr,
    state: AppState,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(s: Settings, clock: ManualClock) -> Running {
    let mut s = s;
    s.server.http_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    s.server.grpc_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    s.server.shutdown_delay_ms = 0;
    let app = Application::build_with_clock(Config::compile(s).expect("config"), Arc::new(clock))
        .await
        .expect("build");
    let (addr, state) = (app.address(), app.state().clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    Running { addr, state, _stop: tx }
}

async fn decide(r: &Running, method: &str, path: &str, headers: &[(&str, String)]) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}/authorize", r.addr))
        .json(&rest_event(method, path, headers))
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("json");
    let effect = body["policyDocument"]["Statement"][0]["Effect"].as_str().unwrap_or("-").to_owned();
    (status, effect)
}

fn stats(r: &Running) -> (u64, u64, u64, u64) {
    let s = &r.state.live().authorizer.verifier.cache.stats;
    (
        s.hits.load(Ordering::SeqCst),
        s.misses.load(Ordering::SeqCst),
        s.verifications.load(Ordering::SeqCst),
        s.rejected_hits.load(Ordering::SeqCst),
    )
}

#[tokio::test]
async fn an_expired_cached_session_is_never_allowed() {
    let core = StubCore::start().await;
    let clock = ManualClock::new(SystemClock.now_ms());
    let r = start(settings(&core.uri(), CONFIG), clock.clone()).await;
    let t = core
        .issuer
        .mint(&MintOptions {
            ttl_secs: 60,
            ..Default::default()
        })
        .expect("mint");
    let c = ("cookie", format!("sAccessToken={t}"));
    assert_eq!(decide(&r, "GET", "/items", std::slice::from_ref(&c)).await, (200, "Allow".into()));
    assert_eq!(decide(&r, "GET", "/items", std::slice::from_ref(&c)).await, (200, "Allow".into()));
    let (hits, _, verifications, _) = stats(&r);
    assert!(hits >= 1, "second request is a cache hit");
    assert_eq!(verifications, 1, "one signature check for two requests");
    clock.advance(61_000);
    assert_eq!(decide(&r, "GET", "/items", &[c]).await.0, 401, "expired, even though cached");
}

#[tokio::test]
async fn a_changed_request_is_evaluated_again() {
    let core = StubCore::start().await;
    let r = start(settings(&core.uri(), CONFIG), ManualClock::new(SystemClock.now_ms())).await;
    let mut claims = serde_json::Map::new();
    claims.insert("st-role".into(), json!({"v": ["user"], "t": 0}));
    let t = core
        .issuer
        .mint(&MintOptions {
            anti_csrf_token: Some("csrf".into()),
            claims,
            ..Default::default()
        })
        .expect("mint");
    let c = ("cookie", format!("sAccessToken={t}"));
    assert_eq!(decide(&r, "GET", "/items", std::slice::from_ref(&c)).await, (200, "Allow".into()));
    // Same token, cached: a POST needs the anti-CSRF header.
    assert_eq!(decide(&r, "POST", "/items", std::slice::from_ref(&c)).await.0, 401);
    assert_eq!(
        decide(&r, "POST", "/items", &[c.clone(), ("anti-csrf", "wrong".into())]).await.0,
        401
    );
    assert_eq!(
        decide(&r, "POST", "/items", &[c.clone(), ("anti-csrf", "csrf".into())]).await,
        (200, "Allow".into())
    );
    // Another route: its claim validator runs on the cached session.
    assert_eq!(decide(&r, "GET", "/admin/x", std::slice::from_ref(&c)).await, (200, "Deny".into()));
    assert_eq!(stats(&r).2, 1, "all of it from one signature check");
}

#[tokio::test]
async fn a_session_the_core_revokes_is_dropped() {
    let core = StubCore::start().await;
    let r = start(settings(&core.uri(), CONFIG), ManualClock::new(SystemClock.now_ms())).await;
    let t = core
        .issuer
        .mint(&MintOptions {
            session_handle: "rev".into(),
            ..Default::default()
        })
        .expect("mint");
    let c = ("cookie", format!("sAccessToken={t}"));
    assert_eq!(decide(&r, "GET", "/db/x", std::slice::from_ref(&c)).await, (200, "Allow".into()));
    assert_eq!(r.state.live().authorizer.verifier.cache.entries(), 1);
    core.issuer.revoke("rev");
    assert_eq!(decide(&r, "GET", "/db/x", std::slice::from_ref(&c)).await.0, 401);
    assert_eq!(r.state.live().authorizer.verifier.cache.entries(), 0, "dropped from the cache");
    // The core is asked on every check_database request, cached or not.
    assert_eq!(core.faults.verify_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_bad_signature_is_checked_once() {
    let core = StubCore::start().await;
    let r = start(settings(&core.uri(), CONFIG), ManualClock::new(SystemClock.now_ms())).await;
    let forged = core
        .issuer
        .mint(&MintOptions {
            key: KeyChoice::Rogue,
            ..Default::default()
        })
        .expect("mint");
    let c = ("authorization", format!("Bearer {forged}"));
    for _ in 0..5 {
        assert_eq!(decide(&r, "GET", "/items", std::slice::from_ref(&c)).await.0, 401);
    }
    let (_, _, verifications, rejected) = stats(&r);
    assert_eq!(verifications, 1, "one RSA check for the flood");
    assert_eq!(rejected, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_verify_once() {
    let core = StubCore::start().await;
    let r = Arc::new(start(settings(&core.uri(), CONFIG), ManualClock::new(SystemClock.now_ms())).await);
    // Warm the JWKS so the race is on the token, not on the keys.
    let warm = core.issuer.mint(&MintOptions::default()).expect("mint");
    decide(&r, "GET", "/items", &[("cookie", format!("sAccessToken={warm}"))]).await;
    let t = core
        .issuer
        .mint(&MintOptions {
            session_handle: "burst".into(),
            ..Default::default()
        })
        .expect("mint");
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (r, t) = (r.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            decide(&r, "GET", "/items", &[("cookie", format!("sAccessToken={t}"))]).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join"), (200, "Allow".into()));
    }
    assert_eq!(stats(&r).2, 2, "the warm-up token and the burst token: one check each");
}

#[tokio::test]
async fn cache_counters_are_exported() {
    let core = StubCore::start().await;
    let r = start(settings(&core.uri(), CONFIG), ManualClock::new(SystemClock.now_ms())).await;
    let t = core.issuer.mint(&MintOptions::default()).expect("mint");
    for _ in 0..3 {
        decide(&r, "GET", "/items", &[("cookie", format!("sAccessToken={t}"))]).await;
    }
    let text = support::metrics_text(r.addr).await;
    assert!(
        text.contains(r#"session_authorizer_session_cache_events_total{event="hit"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"session_authorizer_session_cache_events_total{event="verification"} 1"#),
        "{text}"
    );
    assert!(text.contains("session_authorizer_session_cache_entries 1"), "{text}");
}
