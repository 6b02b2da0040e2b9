//! Faults and JWKS resilience: the core down at start, dying mid-run, slow, answering garbage or
//! 500 for its JWKS; key rotation; floods of unknown kids; background refresh; readiness; SIGTERM
//! during load and a restart of the real binary.

use crate::support;
use crate::support::stub_core::Faults;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use session_authorizer::dev::{Issuer, MintOptions};
use support::{Process, Service, free_port, rest_event, settings};

/// The stub core served on a chosen port, stoppable, with an optional delay on session calls and
/// a switchable JWKS answer.
struct Core {
    faults: Arc<Faults>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    jwks_answer: Arc<AtomicU8>,
}

const JWKS_OK: u8 = 0;
const JWKS_GARBAGE: u8 = 1;
const JWKS_500: u8 = 2;

impl Core {
    async fn start(issuer: Arc<Issuer>, port: u16, verify_delay: Duration) -> Self {
        let jwks_answer = Arc::new(AtomicU8::new(JWKS_OK));
        let answer = jwks_answer.clone();
        let faults = Arc::new(Faults::default());
        let app: Router = faults
            .wrap(issuer.router())
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                let answer = answer.clone();
                async move {
                    let path = req.uri().path().to_owned();
                    if path == "/.well-known/jwks.json" {
                        match answer.load(Ordering::SeqCst) {
                            JWKS_GARBAGE => return (http::StatusCode::OK, "{\"keys\": \"not a list\"").into_response(),
                            JWKS_500 => return (http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
                            _ => {}
                        }
                    }
                    if path.starts_with("/recipe/session") {
                        tokio::time::sleep(verify_delay).await;
                    }
                    let r: Response = next.run(req).await;
                    r
                }
            }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind core");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            faults,
            addr,
            task,
            jwks_answer,
        }
    }

    fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn stop(&self) {
        self.task.abort();
    }

    fn jwks_requests(&self) -> u64 {
        self.faults.jwks_requests.load(Ordering::SeqCst)
    }
}

fn mint(issuer: &Issuer) -> String {
    issuer.mint(&MintOptions::default()).expect("mint")
}

fn event(token: Option<&str>) -> Value {
    let headers: Vec<(&str, String)> = token.map(|t| ("cookie", format!("sAccessToken={t}"))).into_iter().collect();
    rest_event("GET", "/items/1", &headers)
}

async fn readyz(svc: &Service) -> (u16, Value) {
    let r = reqwest::get(svc.url("/readyz")).await.expect("readyz");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn wait_ready(svc: &Service, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if readyz(svc).await.0 == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn core_down_at_start_then_up() {
    let issuer = Issuer::new().expect("issuer");
    let port = free_port();
    let svc = Service::start(settings(&format!("http://127.0.0.1:{port}"), "")).await;
    let (status, body) = readyz(&svc).await;
    assert_eq!(status, 503, "not ready without keys: {body}");
    assert_eq!(body["jwks"]["keys"], 0);
    // No token needs no core: anonymous allow, as the SDK decides it.
    let (status, body) = svc.authorize(&event(None)).await;
    assert_eq!((status, body["principalId"].as_str()), (200, Some("")));
    // A token cannot be verified: refused (the SDK's TRY_REFRESH_TOKEN), never allowed.
    let t = mint(&issuer);
    let (status, _) = svc.authorize(&event(Some(&t))).await;
    assert_eq!(status, 401);

    let core = Core::start(issuer.clone(), port, Duration::ZERO).await;
    assert!(wait_ready(&svc, Duration::from_secs(8)).await, "ready once the core answers");
    let (status, body) = svc.authorize(&event(Some(&t))).await;
    assert_eq!((status, body["principalId"].as_str()), (200, Some("user-1")));
    core.stop();
}

#[tokio::test]
async fn core_dies_mid_run_and_held_keys_keep_verifying() {
    let issuer = Issuer::new().expect("issuer");
    let core = Core::start(issuer.clone(), 0, Duration::ZERO).await;
    let svc = Service::start(settings(&core.uri(), "")).await;
    assert!(wait_ready(&svc, Duration::from_secs(5)).await);
    assert_eq!(svc.authorize(&event(Some(&mint(&issuer)))).await.0, 200);
    core.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A token never seen before, signed by a held key: verified locally.
    let fresh = issuer
        .mint(&MintOptions {
            user_id: "after-the-core-died".into(),
            ..Default::default()
        })
        .expect("mint");
    let (status, body) = svc.authorize(&event(Some(&fresh))).await;
    assert_eq!((status, body["principalId"].as_str()), (200, Some("after-the-core-died")));
    assert_eq!(readyz(&svc).await.0, 200, "still ready on held keys");
    // What needs the core fails closed: a new kid cannot be fetched.
    issuer.rotate_dynamic_key().expect("rotate");
    assert_eq!(svc.authorize(&event(Some(&mint(&issuer)))).await.0, 401);
}

#[tokio::test]
async fn jwks_answering_garbage_or_500_is_not_trusted_and_recovery_is_automatic() {
    for (answer, what) in [(JWKS_GARBAGE, "garbage"), (JWKS_500, "HTTP 500")] {
        let issuer = Issuer::new().expect("issuer");
        let core = Core::start(issuer.clone(), 0, Duration::ZERO).await;
        core.jwks_answer.store(answer, Ordering::SeqCst);
        let svc = Service::start(settings(&core.uri(), "")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, body) = readyz(&svc).await;
        assert_eq!(status, 503, "{what}: not ready: {body}");
        assert_eq!(svc.authorize(&event(Some(&mint(&issuer)))).await.0, 401, "{what}: token refused");
        core.jwks_answer.store(JWKS_OK, Ordering::SeqCst);
        assert!(wait_ready(&svc, Duration::from_secs(8)).await, "{what}: recovers");
        assert_eq!(
            svc.authorize(&event(Some(&mint(&issuer)))).await.0,
            200,
            "{what}: allowed after recovery"
        );
        core.stop();
    }
}

#[tokio::test]
async fn key_rotation_is_picked_up_on_the_first_token_that_uses_it() {
    let issuer = Issuer::new().expect("issuer");
    let core = Core::start(issuer.clone(), 0, Duration::ZERO).await;
    let svc = Service::start(settings(&core.uri(), "")).await;
    assert!(wait_ready(&svc, Duration::from_secs(5)).await);
    let before_rotation = mint(&issuer);
    assert_eq!(svc.authorize(&event(Some(&before_rotation))).await.0, 200);
    // Past the unknown-kid cooldown since the start-up fetch (rotations come hours apart).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let fetches = core.jwks_requests();
    issuer.rotate_dynamic_key().expect("rotate");
    let rotated = mint(&issuer);
    let (status, body) = svc.authorize(&event(Some(&rotated))).await;
    assert_eq!((status, body["principalId"].as_str()), (200, Some("user-1")));
    assert_eq!(core.jwks_requests(), fetches + 1, "exactly one fetch for the new kid");
    // Tokens signed before the rotation still verify (the old key stays published).
    assert_eq!(svc.authorize(&event(Some(&before_rotation))).await.0, 200);
    assert_eq!(svc.authorize(&event(Some(&mint(&issuer)))).await.0, 200);
    assert_eq!(core.jwks_requests(), fetches + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown() {
    let issuer = Issuer::new().expect("issuer");
    let core = Core::start(issuer.clone(), 0, Duration::ZERO).await;
    let svc = Arc::new(Service::start(settings(&core.uri(), "[supertokens]\njwks_cooldown_ms = 500\n")).await);
    assert!(wait_ready(&svc, Duration::from_secs(5)).await);
    let payload = issuer.payload_for(&MintOptions::default());
    let before = core.jwks_requests();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..400 {
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": format!("d-{i}-random"), "version": "5"});
        let t = issuer
            .sign_raw(&header, &payload, session_authorizer::dev::KeyChoice::Rogue)
            .expect("sign");
        let req = client.post(svc.url("/authorize")).json(&event(Some(&t)));
        tasks.push(tokio::spawn(
            async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 401);
    }
    let windows = started.elapsed().as_millis() as u64 / 500 + 1;
    let fetched = core.jwks_requests() - before;
    assert!(
        fetched <= windows,
        "{fetched} JWKS fetches for 400 unknown kids in {windows} cooldown windows"
    );
}

#[tokio::test]
async fn keys_refresh_in_the_background_and_readiness_reports_staleness() {
    let issuer = Issuer::new().expect("issuer");
    let core = Core::start(issuer.clone(), 0, Duration::ZERO).await;
    let svc = Service::start(settings(
        &core.uri(),
        "[supertokens]\njwks_refresh_interval_secs = 1\njwks_max_stale_secs = 2\n",
    ))
    .await;
    assert!(wait_ready(&svc, Duration::from_secs(5)).await);
    let start_fetches = core.jwks_requests();
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert!(
        core.jwks_requests() >= start_fetches + 2,
        "refreshed before expiry with no traffic ({} -> {})",
        start_fetches,
        core.jwks_requests()
    );
    let (_, body) = readyz(&svc).await;
    assert_eq!(body["jwks"]["fresh"], true);

    core.faults.set_jwks_down(true);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let (status, body) = readyz(&svc).await;
    assert_eq!(status, 200, "stale keys are still usable: {body}");
    assert_eq!(body["jwks"]["fresh"], false, "readiness says the keys are stale");
    assert_eq!(svc.authorize(&event(Some(&mint(&issuer)))).await.0, 200);

    // Past the stale allowance: fail closed.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let (status, body) = readyz(&svc).await;
    assert_eq!(status, 503, "{body}");
    let fresh_token = issuer
        .mint(&MintOptions {
            user_id: "late".into(),
            ..Default::default()
        })
        .expect("mint");
    assert_eq!(svc.authorize(&event(Some(&fresh_token))).await.0, 401);
    core.faults.set_jwks_down(false);
    assert!(wait_ready(&svc, Duration::from_secs(12)).await, "recovers when the core is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_core_does_not_pile_requests_up() {
    let issuer = Issuer::new().expect("issuer");
    let core = Core::start(issuer.clone(), 0, Duration::from_secs(20)).await;
    let svc = Arc::new(
        Service::start(settings(
            &core.uri(),
            "[supertokens]\ncheck_database = true\ncore_timeout_ms = 400\n",
        ))
        .await,
    );
    assert!(wait_ready(&svc, Duration::from_secs(5)).await);
    let t = mint(&issuer);
    // One client for all: building 200 TLS-capable clients would itself take seconds.
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let req = client.post(svc.url("/authorize")).json(&event(Some(&t)));
        tasks.push(tokio::spawn(
            async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) },
        ));
    }
    // While they wait on the core, the service keeps answering.
    let health = reqwest::get(svc.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(svc.authorize(&event(None)).await.0, 200, "no-token requests still decided");
    for t in tasks {
        assert_eq!(t.await.expect("task"), 500, "a core timeout fails closed");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "200 requests on a stalled core all answered within the timeout: {:?}",
        started.elapsed()
    );
    core.stop();
}

#[tokio::test]
async fn sigterm_during_load_drains_in_flight_requests_then_restarts() {
    let issuer = Issuer::new().expect("issuer");
    // Each check_database verify takes 600 ms: requests are still in flight at SIGTERM.
    let core = Core::start(issuer.clone(), 0, Duration::from_millis(600)).await;
    let toml = format!("[supertokens]\nconnection_uri = \"{}\"\ncheck_database = true\n", core.uri());
    let mut proc = Process::serve("sigterm", &toml, &[]);
    proc.wait_up().await;
    let url = proc.url("/authorize");
    let t = mint(&issuer);
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let req = client.post(&url).json(&event(Some(&t)));
        tasks.push(tokio::spawn(async move {
            match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    (status, body["principalId"].as_str().unwrap_or_default().to_owned())
                }
                Err(e) => (0, e.to_string()),
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    proc.signal("TERM");
    let mut answered = 0;
    for t in tasks {
        let (status, principal) = t.await.expect("task");
        assert_eq!((status, principal.as_str()), (200, "user-1"), "an in-flight request was dropped");
        answered += 1;
    }
    assert_eq!(answered, 50);
    let exited = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Some((status, proc));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("join");
    let (status, old) = exited.expect("exits after draining");
    assert!(status.success(), "clean exit: {status}");
    assert!(old.log().iter().any(|l| l.contains("draining")), "logs the drain: {:?}", old.log());
    assert!(
        client.post(&url).json(&event(Some(&t))).send().await.is_err(),
        "no longer listening"
    );

    // Restart: a new process serves again (cold caches, keys fetched at start).
    let dir = old.dir.clone();
    drop(old);
    let again = Process::serve_in(dir, &toml, &[]);
    again.wait_up().await;
    let r = client
        .post(again.url("/authorize"))
        .json(&event(Some(&t)))
        .send()
        .await
        .expect("after restart");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["principalId"], "user-1");
}
