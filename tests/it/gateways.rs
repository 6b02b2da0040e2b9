//! End to end through the real proxies (Envoy 1.40 in HTTP and gRPC mode, NGINX auth_request,
//! Traefik 3.7 forwardAuth, Caddy 2.11 forward-auth), each started from the config in
//! `examples/` (ports templated) in front of an echo backend that reports the headers it got.
//! The binaries come from `scripts/install-test-tools` (`.cache/tools/env`).

use crate::support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::any;
use base64::Engine;
use serde_json::{Value, json};
use session_authorizer::dev::MintOptions;
use support::proxies::{self, Proc, Proxy};
use support::{Service, StubCore, free_port, repo_path, settings, tool};

const CONFIG: &str = proxies::GATEWAY_CONFIG;

const WEBSITE: &str = "http://localhost:3000";

/// An echo backend: answers 200 with the request's headers as JSON.
async fn echo_backend() -> SocketAddr {
    let app = Router::new().fallback(any(|headers: HeaderMap| async move {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("<binary>").to_owned()))
            .collect();
        axum::Json(json!({ "headers": map }))
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

struct Gateway {
    core: StubCore,
    svc: Service,
    proxy: Proc,
    base: String,
    client: reqwest::Client,
    kind: Proxy,
}

impl Gateway {
    async fn start(kind: Proxy) -> Self {
        let core = StubCore::start().await;
        let mut s = settings(&core.uri(), CONFIG);
        s.supertokens.website_domain = WEBSITE.parse().expect("website");
        s.forward_auth.proxy = kind.forward_auth_proxy();
        // The identity assertion on: each proxy must pass the authorizer's and drop a client's.
        s.assertion.enabled = true;
        s.assertion.audience = "gateway-suite".into();
        let svc = Service::start(s).await;
        let backend = echo_backend().await;
        let listen = free_port();
        let proxy = kind.start(listen, &svc, backend);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{listen}");
        let started = Instant::now();
        // Ready when a request goes through to the backend.
        loop {
            if let Ok(r) = client.get(format!("{base}/ready-probe")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{} did not come up", kind.name());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            core,
            svc,
            proxy,
            base,
            client,
            kind,
        }
    }

    fn token(&self, roles: &[&str], ttl: i64, handle: &str, parent: bool) -> String {
        support::role_token(&self.core, roles, ttl, handle, parent)
    }

    async fn get(&self, method: &str, path: &str, headers: &[(&str, String)]) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{}{path}", self.base),
        );
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{}: {e}", self.kind.name()));
        let status = r.status().as_u16();
        let h = r.headers().clone();
        (status, h, r.text().await.expect("body"))
    }

    /// The headers the backend received.
    fn upstream(body: &str) -> HashMap<String, String> {
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("backend JSON: {e}: {body}"));
        serde_json::from_value(v["headers"].clone()).expect("headers")
    }
}

async fn scenario(kind: Proxy) {
    let mut g = Gateway::start(kind).await;
    let name = kind.name();
    let user = g.token(&["user"], 3600, &format!("{name}-1"), false);
    let cookie = |t: &str| ("cookie", format!("sAccessToken={t}"));

    // Valid cookie session: the backend sees the user, never the client's spoofed copy.
    let (s, _, body) = g
        .get(
            "GET",
            "/items",
            &[
                cookie(&user),
                ("x-user-id", "evil".into()),
                ("x-tenant-id", "evil".into()),
                ("x-session-assertion", "evil".into()),
            ],
        )
        .await;
    assert_eq!(s, 200, "{name} cookie");
    let up = Gateway::upstream(&body);
    let assertion = up.get("x-session-assertion").map(String::as_str).unwrap_or_default();
    let payload = assertion
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok());
    let claims: Value = payload.and_then(|p| serde_json::from_slice(&p).ok()).unwrap_or_default();
    assert_eq!(
        claims["sub"], "user-1",
        "{name}: the authorizer's assertion, not the client's: {assertion:?}"
    );
    assert_eq!(up.get("x-user-id").map(String::as_str), Some("user-1"), "{name}: {up:?}");
    assert_eq!(up.get("x-tenant-id").map(String::as_str), Some("public"), "{name}");
    assert_eq!(
        up.get("x-session-handle").map(String::as_str),
        Some(format!("{name}-1").as_str()),
        "{name}"
    );

    // Valid Bearer.
    let (s, _, body) = g.get("POST", "/items", &[("authorization", format!("Bearer {user}"))]).await;
    assert_eq!(s, 200, "{name} bearer");
    assert_eq!(
        Gateway::upstream(&body).get("x-user-id").map(String::as_str),
        Some("user-1"),
        "{name}"
    );

    // No session on an optional route: allowed, and no identity reaches the backend.
    let (s, _, body) = g
        .get(
            "GET",
            "/items",
            &[
                ("x-user-id", "evil".into()),
                ("x-tenant-id", "evil".into()),
                ("x-session-handle", "evil".into()),
                ("x-session-assertion", "evil".into()),
            ],
        )
        .await;
    assert_eq!(s, 200, "{name} anonymous");
    let up = Gateway::upstream(&body);
    for h in ["x-user-id", "x-tenant-id", "x-session-handle", "x-session-assertion"] {
        assert!(up.get(h).is_none_or(|v| v.is_empty()), "{name}: {h} spoofed through: {up:?}");
    }

    // Expired token: 401 and the SDK's body.
    let expired = g.token(&["user"], -5, &format!("{name}-2"), false);
    let (s, h, body) = g.get("GET", "/items", &[cookie(&expired)]).await;
    assert_eq!((s, body.as_str()), (401, r#"{"message":"try refresh token"}"#), "{name} expired");
    assert!(
        h.get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json")),
        "{name}: {h:?}"
    );

    // Failing claim: 403 and the body.
    let (s, _, body) = g.get("GET", "/admin/users", &[cookie(&user)]).await;
    assert_eq!(s, 403, "{name} claim");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["message"], "invalid claim", "{name}");
    assert_eq!(v["claimValidationErrors"][0]["id"], "st-role", "{name}");

    // Required route without a session.
    let (s, _, body) = g.get("GET", "/private/x", &[]).await;
    assert_eq!((s, body.as_str()), (401, r#"{"message":"unauthorised"}"#), "{name} required");

    // First use after refresh: the client receives the new sAccessToken.
    let refreshed = g.token(&["user"], 3600, &format!("{name}-3"), true);
    let (s, h, body) = g.get("GET", "/items", &[cookie(&refreshed)]).await;
    assert_eq!(s, 200, "{name} refreshed");
    assert_eq!(Gateway::upstream(&body).get("x-user-id").map(String::as_str), Some("user-1"));
    let set_cookie: Vec<_> = h.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(
        set_cookie
            .iter()
            .any(|c| c.starts_with("sAccessToken=ey") && c.contains("HttpOnly")),
        "{name}: {set_cookie:?}"
    );

    // A denial to the website carries CORS so its SDK can read the 401.
    let (s, h, _) = g.get("GET", "/items", &[cookie(&expired), ("origin", WEBSITE.into())]).await;
    assert_eq!(s, 401);
    assert_eq!(
        h.get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some(WEBSITE),
        "{name}: {h:?}"
    );
    assert_eq!(
        h.get("access-control-allow-credentials").and_then(|v| v.to_str().ok()),
        Some("true"),
        "{name}"
    );

    // A CORS preflight to a required route passes (the backend answers it).
    let (s, _, _) = g
        .get(
            "OPTIONS",
            "/private/x",
            &[("origin", WEBSITE.into()), ("access-control-request-method", "POST".into())],
        )
        .await;
    assert_eq!(s, 200, "{name} preflight");

    // Authorizer down: the proxy fails closed.
    g.svc.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _, body) = g.get("GET", "/items", &[cookie(&user)]).await;
    assert_eq!(s, kind.down_status(), "{name} authorizer down: {body}");
    drop(g.proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_http_ext_authz() {
    scenario(Proxy::EnvoyHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_grpc_ext_authz() {
    scenario(Proxy::EnvoyGrpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request() {
    scenario(Proxy::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_forward_auth() {
    scenario(Proxy::Traefik).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_forward_auth() {
    scenario(Proxy::Caddy).await;
}

/// gRPC `Check` from an independent client built from Envoy's own protos (Python grpcio +
/// xds-protos), and server reflection as grpcurl sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_check_with_envoys_own_protos() {
    let core = StubCore::start().await;
    let svc = Service::start(settings(&core.uri(), CONFIG)).await;
    let mut claims = serde_json::Map::new();
    claims.insert("st-role".into(), json!({"v": ["user"], "t": 0}));
    let user = core
        .issuer
        .mint(&MintOptions {
            claims,
            ..Default::default()
        })
        .expect("mint");
    let expired = core
        .issuer
        .mint(&MintOptions {
            ttl_secs: -5,
            ..Default::default()
        })
        .expect("mint");
    let requests = [
        json!({"method": "GET", "path": "/items", "headers": {"cookie": format!("sAccessToken={user}")}}),
        json!({"method": "GET", "path": "/items", "headers": {"x-user-id": "evil"}}),
        json!({"method": "GET", "path": "/items", "headers": {"authorization": format!("Bearer {expired}")}}),
        json!({"method": "GET", "path": "/admin/x", "headers": {"cookie": format!("sAccessToken={user}")}}),
    ];
    let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
    let out = run_with_stdin(
        Command::new(tool("GRPC_PYTHON"))
            .arg(repo_path("tests/grpc/check_client.py"))
            .arg(svc.grpc_addr.to_string()),
        &input,
    );
    let answers: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("client JSON")).collect();
    assert_eq!(answers.len(), 4, "{out}");
    assert_eq!(answers[0]["code"], 0);
    assert_eq!(answers[0]["ok"]["headers"]["x-user-id"], "user-1");
    assert_eq!(answers[1]["code"], 0);
    assert!(
        answers[1]["ok"]["headers_to_remove"]
            .as_array()
            .expect("list")
            .contains(&json!("x-user-id"))
    );
    assert_eq!(answers[2]["code"], 16, "UNAUTHENTICATED");
    assert_eq!(answers[2]["denied"]["status"], 401);
    assert_eq!(answers[2]["denied"]["body"], r#"{"message":"try refresh token"}"#);
    assert_eq!(answers[3]["code"], 7, "PERMISSION_DENIED");
    assert_eq!(answers[3]["denied"]["status"], 403);
    assert!(answers[3]["denied"]["body"].as_str().expect("body").contains("invalid claim"));

    let listed = Command::new(tool("GRPCURL_BIN"))
        .args(["-plaintext", &svc.grpc_addr.to_string(), "list"])
        .output()
        .expect("grpcurl");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("envoy.service.auth.v3.Authorization"),
        "reflection: {text} {}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> String {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "client failed");
    String::from_utf8(out.stdout).expect("utf8")
}
