//! Core-backed sessions beyond the SDK conformance suite: the `check_database` answer cache and
//! its revocation bound, tenant allow-lists, routes that drop or replace global validators, and
//! the core client's failover, api-key, timeout and error handling.

use crate::support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::VerifyMode;
use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};
use session_authorizer::dev::{MintOptions, StubUser};
use support::{Service, StubCore, metrics_text, rest_event, settings};

fn token(core: &StubCore, o: MintOptions) -> String {
    core.issuer.mint(&o).expect("mint")
}

fn cookie(t: &str) -> (&'static str, String) {
    ("cookie", format!("sAccessToken={t}"))
}

fn handle(h: &str) -> MintOptions {
    MintOptions {
        session_handle: h.into(),
        ..Default::default()
    }
}

/// A core address nothing listens on.
async fn closed_port() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}")
}

#[tokio::test]
async fn check_database_revocation_is_seen_within_the_configured_bound() {
    const BOUND_MS: u64 = 800;
    let core = StubCore::start().await;
    let svc = Service::start(settings(
        &core.uri(),
        &format!("[supertokens]\ncheck_database = true\ncheck_database_cache_ms = {BOUND_MS}\n"),
    ))
    .await;
    let t = token(&core, handle("sh-db-bound"));
    let event = rest_event("GET", "/items/1", &[cookie(&t)]);
    for _ in 0..5 {
        let (status, body) = svc.authorize(&event).await;
        assert_eq!(status, 200);
        assert_eq!(body["principalId"], "user-1");
    }
    assert_eq!(
        core.faults.verify_requests.load(Ordering::SeqCst),
        1,
        "the core's answer is reused inside the bound"
    );
    core.issuer.revoke("sh-db-bound");
    let revoked_at = Instant::now();
    loop {
        let (status, _) = svc.authorize(&event).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_millis(BOUND_MS + 400),
            "a revoked session was still allowed {:?} after revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Once refused, the token stays refused (the cached answer was dropped with the session).
    let (status, _) = svc.authorize(&event).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn without_a_bound_check_database_asks_the_core_every_time() {
    let core = StubCore::start().await;
    let svc = Service::start(settings(&core.uri(), "[supertokens]\ncheck_database = true\n")).await;
    let t = token(&core, handle("sh-db-each"));
    let event = rest_event("GET", "/items/1", &[cookie(&t)]);
    for _ in 0..3 {
        assert_eq!(svc.authorize(&event).await.0, 200);
    }
    assert_eq!(core.faults.verify_requests.load(Ordering::SeqCst), 3);
    core.issuer.revoke("sh-db-each");
    assert_eq!(svc.authorize(&event).await.0, 401, "the very next request sees the revocation");
}

#[tokio::test]
async fn tenant_allow_list_refuses_other_tenants_with_a_clear_reason() {
    let core = StubCore::start().await;
    let svc = Service::start(settings(
        &core.uri(),
        "[headers]\ntenant_id = \"x-tenant-id\"\n\n[[routes]]\npath = \"/acme/**\"\ntenants = [\"acme\"]\n",
    ))
    .await;
    let public = token(&core, MintOptions::default());
    let acme = token(
        &core,
        MintOptions {
            tenant_id: Some("acme".into()),
            ..Default::default()
        },
    );
    let no_tid = token(
        &core,
        MintOptions {
            tenant_id: None,
            version: 4,
            ..Default::default()
        },
    );

    let (status, body) = svc.authorize(&rest_event("GET", "/acme/orders", &[cookie(&public)])).await;
    assert_eq!(status, 200);
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(
        body["context"]["body"],
        r#"{"message":"invalid claim","claimValidationErrors":[{"id":"tId","reason":{"message":"tenant not allowed on this route","expectedToIncludeAtLeastOneOf":["acme"],"actualValue":"public"}}]}"#
    );
    // A token without `tId` counts as the public tenant.
    let (_, body) = svc.authorize(&rest_event("GET", "/acme/orders", &[cookie(&no_tid)])).await;
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Deny");

    let (_, body) = svc.authorize(&rest_event("GET", "/acme/orders", &[cookie(&acme)])).await;
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(body["context"]["tenantId"], "acme");
    // Other routes take every tenant.
    let (_, body) = svc.authorize(&rest_event("GET", "/items/1", &[cookie(&public)])).await;
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");

    let client = reqwest::Client::new();
    let fa = |t: &str, uri: &str| {
        client
            .get(svc.url("/forward-auth"))
            .header("x-original-method", "GET")
            .header("x-original-uri", uri)
            .header("cookie", format!("sAccessToken={t}"))
            .header("x-tenant-id", "forged")
            .send()
    };
    let allowed = fa(&acme, "/acme/orders").await.expect("forward-auth");
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["x-tenant-id"], "acme", "tenant exported to the upstream");
    let refused = fa(&public, "/acme/orders").await.expect("forward-auth");
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(
        body["claimValidationErrors"][0]["reason"]["message"],
        "tenant not allowed on this route"
    );
}

#[tokio::test]
async fn routes_can_drop_or_replace_the_global_validators() {
    let core = StubCore::start().await;
    let svc = Service::start(settings(
        &core.uri(),
        r#"[supertokens]
email_verification = "REQUIRED"

[[routes]]
path = "/public/**"
global_claims = false

[[routes]]
path = "/fresh/**"
claims = [{ claim = "st-ev", is = true, max_age_secs = 30 }]
"#,
    ))
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64;
    let mut c = Map::new();
    c.insert("st-ev".into(), json!({"v": true, "t": now - 60_000}));
    let verified_a_minute_ago = token(
        &core,
        MintOptions {
            user_id: "ev-route".into(),
            claims: c,
            ..Default::default()
        },
    );
    core.issuer.upsert_user(
        "ev-route",
        StubUser {
            email: Some("a@example.com".into()),
            email_verified: false,
        },
    );
    let effect = |b: &Value| {
        b["policyDocument"]["Statement"][0]["Effect"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // The global isVerified (no max age) accepts a verified claim of any age.
    let (_, b) = svc
        .authorize(&rest_event("GET", "/items/1", &[cookie(&verified_a_minute_ago)]))
        .await;
    assert_eq!(effect(&b), "Allow");
    assert_eq!(core.faults.lookup_requests.load(Ordering::SeqCst), 0);
    // The route's own st-ev validator replaces it: 30 s max age, so the core is asked, and the
    // user has since become unverified.
    let (_, b) = svc
        .authorize(&rest_event("GET", "/fresh/x", &[cookie(&verified_a_minute_ago)]))
        .await;
    assert_eq!(effect(&b), "Deny");
    assert!(core.faults.lookup_requests.load(Ordering::SeqCst) >= 2, "user and email lookups");
    // A route without the global validators lets an unverified user through.
    let mut c = Map::new();
    c.insert("st-ev".into(), json!({"v": false, "t": now + 600_000}));
    let unverified = token(
        &core,
        MintOptions {
            claims: c,
            ..Default::default()
        },
    );
    let (_, b) = svc.authorize(&rest_event("GET", "/public/x", &[cookie(&unverified)])).await;
    assert_eq!(effect(&b), "Allow");
    let (_, b) = svc.authorize(&rest_event("GET", "/items/1", &[cookie(&unverified)])).await;
    assert_eq!(effect(&b), "Deny");
}

#[tokio::test]
async fn core_client_fails_over_sends_the_api_key_and_counts_calls() {
    let core = StubCore::start().await;
    let uri = format!("{} ; {}", closed_port().await, core.uri());
    let mut s = settings(
        &uri,
        "[supertokens]\ncheck_database = true\napi_key = \"core-secret-key\"\nemail_verification = \"REQUIRED\"\n",
    );
    s.supertokens.connection_uri = uri.parse().expect("core URIs");
    let svc = Service::start(s).await;
    core.issuer.upsert_user(
        "user-1",
        StubUser {
            email: Some("u@example.com".into()),
            email_verified: true,
        },
    );
    let t = token(&core, handle("sh-failover"));
    let (status, body) = svc.authorize(&rest_event("GET", "/items/1", &[cookie(&t)])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["principalId"], "user-1");
    assert!(
        body["context"]["setCookie"]
            .as_str()
            .is_some_and(|c| c.starts_with("sAccessToken=")),
        "refetched st-ev regenerates the token: {body}"
    );
    let keys = core.faults.api_keys_seen.lock().expect("lock").clone();
    assert!(keys.len() >= 4, "verify, user, email, regenerate: {keys:?}");
    assert!(keys.iter().all(|k| k.as_deref() == Some("core-secret-key")), "{keys:?}");
    let m = metrics_text(svc.addr).await;
    for endpoint in ["verify", "user", "email_verify", "regenerate", "jwks"] {
        assert!(
            m.contains(&format!(
                "session_authorizer_core_requests_total{{endpoint=\"{endpoint}\",result=\"ok\"}} "
            )),
            "{endpoint} counted:\n{m}"
        );
        assert!(m.contains(&format!(
            "session_authorizer_core_request_duration_seconds_count{{endpoint=\"{endpoint}\"}}"
        )));
    }
    assert!(!m.contains("core-secret-key"), "the api key never shows in metrics");
}

#[tokio::test]
async fn a_slow_or_failing_core_fails_closed_within_the_timeout() {
    let core = StubCore::start().await;
    // Serves the JWKS at once and holds every other call far past the timeout.
    let issuer = core.issuer.clone();
    let slow = Router::new()
        .route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = issuer.jwks();
                async move { axum::Json(jwks) }
            }),
        )
        .fallback(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let slow_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, slow).await;
    });
    let svc = Service::start(settings(
        &format!("http://{slow_addr}"),
        "[supertokens]\ncheck_database = true\ncore_timeout_ms = 300\n",
    ))
    .await;
    let t = token(&core, handle("sh-slow"));
    let started = Instant::now();
    let (status, body) = svc.authorize(&rest_event("GET", "/items/1", &[cookie(&t)])).await;
    assert_eq!(status, 500, "a core that does not answer is an error, never an allow: {body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by core_timeout_ms: {:?}",
        started.elapsed()
    );
    let m = metrics_text(svc.addr).await;
    assert!(
        m.contains("session_authorizer_core_requests_total{endpoint=\"verify\",result=\"error\"} 1"),
        "{m}"
    );

    // A core answering HTTP 500 is the same: 500-class, counted.
    let svc2 = Service::start(settings(&core.uri(), "[supertokens]\ncheck_database = true\n")).await;
    core.set_verify_mode(VerifyMode::Http500);
    let (status, _) = svc2.authorize(&rest_event("GET", "/items/1", &[cookie(&t)])).await;
    core.set_verify_mode(VerifyMode::Normal);
    assert_eq!(status, 500);
    let m = metrics_text(svc2.addr).await;
    assert!(
        m.contains("session_authorizer_core_requests_total{endpoint=\"verify\",result=\"error\"} 1"),
        "{m}"
    );
}
