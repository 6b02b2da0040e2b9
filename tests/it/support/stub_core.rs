//! The stub SuperTokens core of the suites: the dev issuer's core routes behind fault switches
//! and request recorders (which the release binary does not carry).

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use session_authorizer::dev::Issuer;

/// How `/recipe/session/verify` misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum VerifyMode {
    Normal = 0,
    Http500 = 1,
    TryRefresh = 2,
}

/// Switches and recorders around the core routes.
#[derive(Debug, Default)]
pub struct Faults {
    verify_mode: AtomicU8,
    jwks_down: AtomicBool,
    lookups_down: AtomicBool,
    /// `api-key` headers seen on session, user and role calls, newest last.
    pub api_keys_seen: Mutex<Vec<Option<String>>>,
    pub regenerate_requests: AtomicU64,
    pub lookup_requests: AtomicU64,
    pub jwks_requests: AtomicU64,
    pub verify_requests: AtomicU64,
    /// Bodies of `/recipe/session/verify` calls, newest last.
    pub verify_bodies: Mutex<Vec<Value>>,
}

/// Which core endpoint a request is for.
#[derive(PartialEq, Eq)]
enum Endpoint {
    Jwks,
    Verify,
    Regenerate,
    Lookup,
    Other,
}

fn endpoint(path: &str) -> Endpoint {
    match path {
        "/.well-known/jwks.json" => Endpoint::Jwks,
        "/recipe/session/verify" => Endpoint::Verify,
        "/recipe/session/regenerate" => Endpoint::Regenerate,
        "/user/id" | "/recipe/user/email/verify" | "/recipe/role/permissions" => Endpoint::Lookup,
        p if p.ends_with("/recipe/user/roles") => Endpoint::Lookup,
        _ => Endpoint::Other,
    }
}

impl Faults {
    pub fn set_verify_mode(&self, mode: VerifyMode) {
        self.verify_mode.store(mode as u8, Ordering::SeqCst);
    }

    /// While down, the JWKS endpoint answers 503.
    pub fn set_jwks_down(&self, down: bool) {
        self.jwks_down.store(down, Ordering::SeqCst);
    }

    /// While down, user, email-verification and role lookups answer 500 (JWKS and sessions work).
    pub fn set_lookups_down(&self, down: bool) {
        self.lookups_down.store(down, Ordering::SeqCst);
    }

    /// `router` behind the switches and recorders.
    pub fn wrap(self: &Arc<Self>, router: Router) -> Router {
        let faults = self.clone();
        router.layer(middleware::from_fn(move |req: Request, next: Next| {
            let faults = faults.clone();
            async move { faults.handle(req, next).await }
        }))
    }

    async fn handle(&self, req: Request, next: Next) -> Response {
        let which = endpoint(req.uri().path());
        if matches!(which, Endpoint::Verify | Endpoint::Regenerate | Endpoint::Lookup) {
            let key = req.headers().get("api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
            self.api_keys_seen.lock().expect("lock").push(key);
        }
        match which {
            Endpoint::Jwks => {
                self.jwks_requests.fetch_add(1, Ordering::SeqCst);
                if self.jwks_down.load(Ordering::SeqCst) {
                    return (http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
                }
            }
            Endpoint::Lookup => {
                self.lookup_requests.fetch_add(1, Ordering::SeqCst);
                if self.lookups_down.load(Ordering::SeqCst) {
                    return (http::StatusCode::INTERNAL_SERVER_ERROR, "core failure").into_response();
                }
            }
            Endpoint::Regenerate => {
                self.regenerate_requests.fetch_add(1, Ordering::SeqCst);
            }
            Endpoint::Verify => {
                self.verify_requests.fetch_add(1, Ordering::SeqCst);
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                    self.verify_bodies.lock().expect("lock").push(v);
                }
                match self.verify_mode.load(Ordering::SeqCst) {
                    1 => return (http::StatusCode::INTERNAL_SERVER_ERROR, "core failure").into_response(),
                    2 => return axum::Json(json!({"status": "TRY_REFRESH_TOKEN", "message": "forced"})).into_response(),
                    _ => return next.run(Request::from_parts(parts, Body::from(bytes))).await,
                }
            }
            Endpoint::Other => {}
        }
        next.run(req).await
    }
}

/// A stub SuperTokens core on a free loopback port.
pub struct StubCore {
    pub issuer: Arc<Issuer>,
    pub faults: Arc<Faults>,
    pub addr: SocketAddr,
}

impl Deref for StubCore {
    type Target = Faults;
    fn deref(&self) -> &Faults {
        &self.faults
    }
}

impl StubCore {
    pub async fn start() -> Self {
        let issuer = Issuer::new().expect("issuer");
        let faults = Arc::new(Faults::default());
        let app = faults.wrap(issuer.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind stub core");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { issuer, faults, addr }
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }
}
