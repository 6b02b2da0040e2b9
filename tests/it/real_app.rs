//! A real SuperTokens app through every gateway: headless Chromium opens a website that uses the
//! real frontend SDK (supertokens-web-js); its API calls go through the real proxy (Envoy HTTP
//! and gRPC, NGINX, Traefik, Caddy, started from `examples/`) to an Express app running the real
//! backend SDK (supertokens-node), which serves `/auth/*` and a test sign-in route, and answers
//! `/api/*` like an AppSync resolver with the identity it was given. The stub core carries the
//! whole session: create, refresh with rotation, verify, remove, short access tokens.
//!
//! Each proxy runs the life twice: cookies with anti-CSRF `VIA_TOKEN`, and headers (`Authorization:
//! Bearer`); the website and the API are different origins. The steps are in
//! `tests/real_app/drive.js`; this file starts everything and checks what reached the backend.
//! Node.js, the npm packages (`tests/real_app/package-lock.json`) and Chromium come from
//! `scripts/test` and `scripts/install-test-tools`.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use session_authorizer::dev::MintOptions;
use support::proxies::{self, Proxy};
use support::session_core::SessionCore;
use support::{KillOnDrop, Service, free_port, repo_path, settings, tool};

/// The access token's life at the stub core: short, so that the steps see it expire.
const TTL_SECS: i64 = 3;

const ROUTES: &str = r#"
[headers]
user_id = "x-user-id"

[[routes]]
path = "/api/admin/**"
session = "required"
claims = [{ claim = "st-role", includes = "admin" }]

[[routes]]
path = "/api/private/**"
session = "required"

[[routes]]
path = "/api/checked/**"
session = "required"
check_database = true
"#;

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Cookies, anti-CSRF by token.
    Cookie,
    /// `Authorization: Bearer` and `st-access-token`.
    Header,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Cookie => "cookie",
            Mode::Header => "header",
        }
    }

    fn anti_csrf(self) -> &'static str {
        match self {
            Mode::Cookie => "VIA_TOKEN",
            Mode::Header => "NONE",
        }
    }
}

fn node_app(core: &SessionCore, api_port: u16, site_port: u16, api_origin: &str, site_origin: &str, mode: Mode) -> KillOnDrop {
    let mut child = Command::new("node")
        .arg(repo_path("tests/real_app/app.js"))
        .env("CORE_URI", core.uri())
        .env("API_PORT", api_port.to_string())
        .env("SITE_PORT", site_port.to_string())
        .env("API_ORIGIN", api_origin)
        .env("SITE_ORIGIN", site_origin)
        .env("ANTI_CSRF", mode.anti_csrf())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node app.js (npm ci --prefix tests/real_app; scripts/test does it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("app output");
    assert_eq!(line.trim(), "READY", "app.js did not start");
    KillOnDrop(child)
}

/// One session's life through `kind` in `mode`: the driver's failed steps, and the facts the
/// backend and the core saw that do not hold.
async fn life(kind: Proxy, mode: Mode) -> Vec<String> {
    let core = SessionCore::start(TTL_SECS).await;
    let (api_port, site_port, listen) = (free_port(), free_port(), free_port());
    let api_origin = format!("http://localhost:{listen}");
    let site_origin = format!("http://localhost:{site_port}");
    let mut s = settings(&core.uri(), ROUTES);
    s.supertokens.api_domain = api_origin.parse().expect("api origin");
    s.supertokens.website_domain = site_origin.parse().expect("site origin");
    s.supertokens.anti_csrf = serde_json::from_value(Value::from(mode.anti_csrf())).expect("anti-csrf");
    s.forward_auth.proxy = kind.forward_auth_proxy();
    let svc = Service::start(s).await;
    let _app = node_app(&core, api_port, site_port, &api_origin, &site_origin, mode);
    let _proxy = kind.start(listen, &svc, std::net::SocketAddr::from(([127, 0, 0, 1], api_port)));
    proxies::wait_until_serving(kind, listen, "/api/public/ready").await;

    let driver = tokio::task::spawn_blocking({
        let (api, site) = (api_origin.clone(), site_origin.clone());
        move || {
            Command::new("node")
                .arg(repo_path("tests/real_app/drive.js"))
                .env("SITE", site)
                .env("API", api)
                .env("MODE", mode.name())
                .env("ANTI_CSRF", mode.anti_csrf())
                .env("TTL_SECS", TTL_SECS.to_string())
                .env("CHROMIUM", tool("CHROMIUM_BIN"))
                .output()
                .expect("node drive.js")
        }
    });
    let out = tokio::time::timeout(Duration::from_secs(120), driver)
        .await
        .expect("the driver finished in time")
        .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut failures = Vec::new();
    let mut steps = 0;
    let mut done = false;
    for line in stdout.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        if v["done"] == true {
            done = true;
        } else if v["ok"] == true {
            steps += 1;
        } else {
            failures.push(format!("step {:?}: {}", v["step"], v["detail"]));
        }
    }
    if !done {
        failures.push(format!(
            "the driver did not finish: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if steps < 15 && failures.is_empty() {
        failures.push(format!("only {steps} steps ran"));
    }

    // What the backend saw.
    let log: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{site_port}/log"))
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    let count = |method: &str, path: &str| log.iter().filter(|r| r["method"] == method && r["path"] == path).count();
    if count("POST", "/auth/session/refresh") == 0 {
        failures.push("no refresh call reached the backend SDK".into());
    }
    if count("POST", "/auth/signout") != 1 {
        failures.push(format!("sign-out calls at the backend: {}", count("POST", "/auth/signout")));
    }
    if !log.iter().any(|r| r["method"] == "OPTIONS") {
        failures.push("no CORS preflight reached the backend".into());
    }
    if log
        .iter()
        .any(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/auth/")) && !r["userId"].is_null())
    {
        failures.push("an identity went with a call to the SDK's own routes".into());
    }
    // Its CORS preflight does reach the backend, which answers it; the request itself must not.
    if log.iter().any(|r| r["path"] == "/api/admin/stats" && r["method"] != "OPTIONS") {
        failures.push("the admin route reached the backend without the claim".into());
    }
    if core.calls("refresh") == 0 || core.calls("create") < 2 || core.calls("remove") < 2 {
        failures.push(format!(
            "core calls: create {}, refresh {}, remove {}",
            core.calls("create"),
            core.calls("refresh"),
            core.calls("remove")
        ));
    }
    // Anti-CSRF is enforced at the proxy, not only honoured by the SDK: a cookie session without
    // its anti-csrf header is refused on a POST; with it, served.
    if let Mode::Cookie = mode {
        let token = core
            .issuer
            .mint(&MintOptions {
                user_id: "user-csrf".into(),
                session_handle: "handle-csrf".into(),
                anti_csrf_token: Some("csrf-e2e".into()),
                ..Default::default()
            })
            .expect("mint");
        for (header, want) in [("", 401), ("anti-csrf: csrf-e2e\r\n", 200)] {
            let request = format!(
                "POST /api/private/csrf HTTP/1.1\r\nhost: localhost:{listen}\r\ncookie: sAccessToken={token}\r\n{header}content-length: 0\r\nconnection: close\r\n\r\n"
            );
            let answer = proxies::raw_request(listen, request.as_bytes()).await;
            if answer.status != want {
                failures.push(format!(
                    "a POST with the session cookie and {header:?}: {} (want {want})",
                    answer.status
                ));
            }
        }
    }
    failures
        .into_iter()
        .map(|f| format!("{} {}: {f}", kind.name(), mode.name()))
        .collect()
}

async fn run(kind: Proxy) {
    let mut failures = Vec::new();
    for mode in [Mode::Cookie, Mode::Header] {
        failures.extend(life(kind, mode).await);
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_app_through_envoy_http() {
    run(Proxy::EnvoyHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_app_through_envoy_grpc() {
    run(Proxy::EnvoyGrpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_app_through_nginx() {
    run(Proxy::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_app_through_traefik() {
    run(Proxy::Traefik).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_app_through_caddy() {
    run(Proxy::Caddy).await;
}
