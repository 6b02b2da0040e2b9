//! A stub SuperTokens core that carries a whole session's life for a real backend SDK: the
//! embedded issuer's endpoints (JWKS, verify, regenerate, user lookups) plus create, refresh (with
//! rotation) and remove, with short-lived access tokens. Test code only: the release binary's
//! `dev` issuer never mints sessions for a client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use session_authorizer::dev::{Issuer, MintOptions};

/// What a refresh token stands for.
#[derive(Clone)]
struct Held {
    handle: String,
    user_id: String,
    tenant_id: String,
    claims: Map<String, Value>,
    anti_csrf: bool,
}

struct Life {
    issuer: Arc<Issuer>,
    access_ttl_secs: i64,
    refresh: Mutex<HashMap<String, Held>>,
    next: AtomicU64,
    /// Calls per endpoint, for the tests to see the SDK at work.
    calls: Mutex<HashMap<&'static str, u64>>,
}

pub struct SessionCore {
    pub issuer: Arc<Issuer>,
    pub addr: SocketAddr,
    life: Arc<Life>,
}

impl SessionCore {
    /// A core on a free loopback port whose access tokens live `access_ttl_secs`.
    pub async fn start(access_ttl_secs: i64) -> Self {
        let issuer = Issuer::new().expect("issuer");
        let life = Arc::new(Life {
            issuer: issuer.clone(),
            access_ttl_secs,
            refresh: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            calls: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/recipe/session", post(create))
            .route("/{tenant}/recipe/session", post(create))
            .route("/recipe/session/refresh", post(refresh))
            .route("/recipe/session/remove", post(remove))
            .route("/{tenant}/recipe/session/remove", post(remove))
            .with_state(life.clone())
            .merge(issuer.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind core");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { issuer, addr, life }
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How often the backend SDK called `endpoint` (`create`, `refresh`, `remove`).
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.life.calls.lock().expect("lock").get(endpoint).copied().unwrap_or(0)
    }
}

impl Life {
    fn count(&self, endpoint: &'static str) {
        *self.calls.lock().expect("lock").entry(endpoint).or_default() += 1;
    }

    fn fresh(&self, prefix: &str) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        format!("{prefix}-{n}-{}", std::process::id())
    }

    /// A session's tokens, as the core answers create and refresh.
    fn tokens(&self, held: &Held, parent: Option<String>) -> Value {
        let anti_csrf = held.anti_csrf.then(|| self.fresh("csrf"));
        let access = self
            .issuer
            .mint(&MintOptions {
                user_id: held.user_id.clone(),
                tenant_id: Some(held.tenant_id.clone()),
                session_handle: held.handle.clone(),
                ttl_secs: self.access_ttl_secs,
                anti_csrf_token: anti_csrf.clone(),
                parent_refresh_token_hash1: parent,
                claims: held.claims.clone(),
                ..Default::default()
            })
            .expect("mint");
        let refresh = self.fresh("refresh");
        self.refresh.lock().expect("lock").insert(refresh.clone(), held.clone());
        let now = now_ms();
        let mut answer = json!({
            "status": "OK",
            "session": {
                "handle": held.handle, "userId": held.user_id, "recipeUserId": held.user_id,
                "userDataInJWT": held.claims, "tenantId": held.tenant_id,
            },
            "accessToken": {"token": access, "expiry": now + self.access_ttl_secs as u64 * 1000, "createdTime": now},
            "refreshToken": {"token": refresh, "expiry": now + 86_400_000, "createdTime": now},
        });
        if let (Some(t), Some(o)) = (anti_csrf, answer.as_object_mut()) {
            o.insert("antiCsrfToken".into(), json!(t));
        }
        answer
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn create(State(life): State<Arc<Life>>, Json(body): Json<Value>) -> Json<Value> {
    life.count("create");
    let held = Held {
        handle: life.fresh("handle"),
        user_id: body["userId"].as_str().unwrap_or_default().to_owned(),
        tenant_id: "public".into(),
        claims: body["userDataInJWT"].as_object().cloned().unwrap_or_default(),
        anti_csrf: body["enableAntiCsrf"].as_bool().unwrap_or(false),
    };
    Json(life.tokens(&held, None))
}

async fn refresh(State(life): State<Arc<Life>>, Json(body): Json<Value>) -> Json<Value> {
    life.count("refresh");
    let presented = body["refreshToken"].as_str().unwrap_or_default();
    // Rotation: a refresh token is good once.
    let held = life.refresh.lock().expect("lock").remove(presented);
    match held {
        Some(held) if !life.issuer.is_revoked(&held.handle) => Json(life.tokens(&held, Some(format!("parent-of-{presented}")))),
        _ => Json(json!({"status": "UNAUTHORISED", "message": "Refresh token not found or session revoked"})),
    }
}

async fn remove(State(life): State<Arc<Life>>, Json(body): Json<Value>) -> Json<Value> {
    life.count("remove");
    let handles: Vec<String> = body["sessionHandles"]
        .as_array()
        .map(|hs| hs.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    for h in &handles {
        life.issuer.revoke(h);
    }
    life.refresh.lock().expect("lock").retain(|_, held| !handles.contains(&held.handle));
    Json(json!({"status": "OK", "sessionHandlesRevoked": handles}))
}
