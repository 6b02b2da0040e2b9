//! Test helpers: the stub core (the embedded issuer), our service on a free port, the Node SDK
//! oracle process, and API Gateway event builders.
#![allow(dead_code)]

pub mod proxies;
pub mod session_core;
pub mod stub_core;

pub use stub_core::{StubCore, VerifyMode};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use session_authorizer::app::startup::Application;
use session_authorizer::config::Config;
use session_authorizer::settings::Settings;

/// Our service, in-process, on a free port.
pub struct Service {
    pub addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub state: session_authorizer::state::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Service {
    pub async fn start(mut settings: Settings) -> Self {
        settings.server.http_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.server.grpc_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        // `stop` means now: a test that stops the service is not a pod leaving a load balancer.
        settings.server.shutdown_delay_ms = 0;
        let app = Application::build(Config::compile(settings).expect("config"))
            .await
            .expect("build app");
        let addr = app.address();
        let grpc_addr = app.grpc_address();
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            grpc_addr,
            state,
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs an event to `/authorize`: (status, JSON body).
    pub async fn authorize(&self, event: &Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(self.url("/authorize"))
            .json(event)
            .send()
            .await
            .expect("authorize");
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Settings pointing at a stub core, with TOML overrides.
pub fn settings(core_uri: &str, toml: &str) -> Settings {
    let mut s = Settings::from_toml_str(toml).expect("settings");
    s.supertokens.connection_uri = core_uri.parse().expect("core URI");
    s
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A tool installed by `scripts/install-test-tools` (ENVOY_BIN, HELM_PYTHON, ...): from the
/// environment, else from `.cache/tools/env`.
pub fn tool(name: &str) -> String {
    if let Ok(v) = std::env::var(name) {
        return v;
    }
    let env = std::fs::read_to_string(repo_path(".cache/tools/env")).unwrap_or_else(|_| {
        panic!("{name} is not set and .cache/tools/env is missing: run scripts/install-test-tools (scripts/test does)")
    });
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("export {name}=")).map(|v| v.trim_matches('"').to_owned()))
        .unwrap_or_else(|| panic!("{name} not in .cache/tools/env: run scripts/install-test-tools"))
}

/// A child process killed (and reaped) when dropped, also when an assertion fails.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Envoy's `CheckRequest` for `method path` with `headers` (the `headers` map form).
pub fn check_request(
    method: &str,
    path: &str,
    headers: std::collections::HashMap<String, String>,
) -> envoy_types::pb::envoy::service::auth::v3::CheckRequest {
    use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, attribute_context};
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(attribute_context::HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// Envoy's `Check` for `method path` with `headers` (names lower-cased, as Envoy sends them).
pub async fn grpc_check(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> envoy_types::pb::envoy::service::auth::v3::CheckResponse {
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    let mut client = AuthorizationClient::connect(format!("http://{addr}")).await.expect("grpc connect");
    let headers = headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    client
        .check(check_request(method, path, headers))
        .await
        .expect("check")
        .into_inner()
}

/// A free loopback port (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The real supertokens-node running the docs' Lambda authorizer (tests/oracle/harness.js).
pub struct Oracle {
    child: Child,
    pub port: u16,
}

impl Oracle {
    pub fn start(config: &Value) -> Self {
        let dir = repo_path("tests/oracle");
        assert!(
            dir.join("node_modules/supertokens-node").exists(),
            "supertokens-node is not installed: run `npm ci --prefix tests/oracle` (scripts/test does)"
        );
        let mut child = Command::new("node")
            .arg(dir.join("harness.js"))
            .env("ORACLE_CONFIG", config.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node (is Node.js installed?)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("oracle output");
        let port = line
            .trim()
            .strip_prefix("ORACLE_LISTENING ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("oracle did not start: {line:?}"));
        Self { child, port }
    }

    pub async fn authorize(&self, event: &Value, options: &Value) -> Value {
        let url = format!("http://127.0.0.1:{}/authorize", self.port);
        let body = json!({ "event": event, "options": options });
        for attempt in 0..3 {
            match reqwest::Client::new().post(&url).json(&body).send().await {
                Ok(r) => return r.json::<Value>().await.expect("oracle json"),
                Err(e) if attempt < 2 => {
                    eprintln!("oracle call failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("oracle unreachable: {e}"),
            }
        }
        Value::Null
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const METHOD_ARN_PREFIX: &str = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod";

/// A REST API `REQUEST` authorizer event.
pub fn rest_event(method: &str, path: &str, headers: &[(&str, String)]) -> Value {
    let mut h = serde_json::Map::new();
    for (k, v) in headers {
        h.insert((*k).to_owned(), Value::String(v.clone()));
    }
    json!({
        "type": "REQUEST",
        "methodArn": format!("{METHOD_ARN_PREFIX}/{method}{path}"),
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": h,
        "multiValueHeaders": {},
        "queryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {"accountId": "123456789012", "apiId": "abcdef123", "stage": "prod", "httpMethod": method, "path": format!("/prod{path}")}
    })
}

/// A v5 session token from the stub core with `st-role` set to `roles`, living `ttl` seconds;
/// `parent` makes it the first use after a refresh (the core then mints a new token).
pub fn role_token(core: &StubCore, roles: &[&str], ttl: i64, handle: &str, parent: bool) -> String {
    let mut claims = serde_json::Map::new();
    claims.insert("st-role".into(), json!({"v": roles, "t": 0}));
    core.issuer
        .mint(&session_authorizer::dev::MintOptions {
            claims,
            ttl_secs: ttl,
            session_handle: handle.into(),
            parent_refresh_token_hash1: parent.then(|| "parent".to_owned()),
            ..Default::default()
        })
        .expect("mint")
}

/// `session-authorizer --config FILE check-config`: whether it passed, and what it wrote to
/// stderr.
pub fn check_config(file: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
        .arg("--config")
        .arg(file)
        .arg("check-config")
        .output()
        .expect("check-config");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The Prometheus text of a service.
pub async fn metrics_text(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The real binary, `serve`d with a config file written to a scratch directory; stderr (the
/// JSON log) is collected.
pub struct Process {
    pub child: Child,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub dir: PathBuf,
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    /// Starts the binary with `toml` (which must not set `[server]` listen addresses) plus env.
    pub fn serve(name: &str, toml: &str, env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("session-authorizer-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self::serve_in(dir, toml, env)
    }

    pub fn serve_in(dir: PathBuf, toml: &str, env: &[(&str, &str)]) -> Self {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let grpc = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = dir.join("config.toml");
        std::fs::write(&config, toml).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("SESSION_AUTHORIZER__SERVER__HTTP_LISTEN", http.to_string())
            .env("SESSION_AUTHORIZER__SERVER__GRPC_LISTEN", grpc.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn session-authorizer");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Self {
            child,
            http,
            grpc,
            dir,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// Waits until `/healthz` answers (the process is up, whatever its readiness).
    pub async fn wait_up(&self) {
        for _ in 0..200 {
            if reqwest::get(self.url("/healthz")).await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("session-authorizer did not come up; log:\n{}", self.log().join("\n"));
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
