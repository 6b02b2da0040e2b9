//! `session-authorizer lambda`: the real binary under a Lambda Runtime API written here (the
//! same routes and headers as AWS's), fed every event kind. Each answer must equal what
//! `POST /authorize` of an in-process service with the same configuration answers (one decision
//! core); "Unauthorized" must be a function error with exactly that message; bad events and bad
//! configurations must be reported, not crash the function.

use crate::support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use support::{METHOD_ARN_PREFIX, Service, StubCore, rest_event, settings};
use tokio::sync::{Mutex, mpsc, oneshot};

/// The function's configuration file (and the in-process service's settings).
const CONFIG: &str = r#"
[lambda]
appsync_ttl_secs = 300

[[routes]]
path = "/admin/**"
session = "required"
claims = [{ claim = "st-role", includes = "admin" }]

[[routes]]
methods = ["POST"]
path = "/graphql"
claims = [{ claim = "st-role", excludes = "banned" }]
"#;

/// What the function posted back for one invocation.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Response(Value),
    /// `/invocation/{id}/error`: the `Lambda-Runtime-Function-Error-Type` header and the body.
    Error {
        kind: Option<String>,
        body: Value,
    },
}

impl Outcome {
    fn error_message(&self) -> Option<&str> {
        match self {
            Outcome::Error { body, .. } => body["errorMessage"].as_str(),
            Outcome::Response(_) => None,
        }
    }
}

type Pending = Arc<std::sync::Mutex<HashMap<String, oneshot::Sender<Outcome>>>>;
/// (request id, event body) waiting for `GET /next`.
type Invocation = (String, Vec<u8>);

#[derive(Clone)]
struct ApiState {
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    pending: Pending,
    init_errors: mpsc::UnboundedSender<(Option<String>, Value)>,
}

/// A local Lambda Runtime API: invocations are queued by the test and handed out by
/// `GET /next` with the headers the real service sends.
struct RuntimeApi {
    addr: SocketAddr,
    queue: mpsc::UnboundedSender<Invocation>,
    pending: Pending,
    init_errors: Mutex<mpsc::UnboundedReceiver<(Option<String>, Value)>>,
    ids: AtomicU64,
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn next(State(api): State<ApiState>) -> Response {
    let Some((id, event)) = api.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis();
    (
        [
            ("content-type", "application/json".to_owned()),
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", (now + 30_000).to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:session-authorizer".to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned(),
            ),
        ],
        event,
    )
        .into_response()
}

fn finish(api: &ApiState, id: &str, outcome: Outcome) -> StatusCode {
    match api.pending.lock().expect("pending").remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(api): State<ApiState>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&api, &id, Outcome::Response(value))
}

async fn error(State(api): State<ApiState>, UrlPath(id): UrlPath<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    finish(
        &api,
        &id,
        Outcome::Error {
            kind: error_type(&headers),
            body,
        },
    )
}

async fn init_error(State(api): State<ApiState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = api
        .init_errors
        .send((error_type(&headers), serde_json::from_slice(&body).unwrap_or(Value::Null)));
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    async fn start() -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let (init_tx, init_rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let state = ApiState {
            queue: Arc::new(Mutex::new(rx)),
            pending: pending.clone(),
            init_errors: init_tx,
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            queue,
            pending,
            init_errors: Mutex::new(init_rx),
            ids: AtomicU64::new(0),
        }
    }

    async fn invoke_raw(&self, event: Vec<u8>) -> Outcome {
        let id = format!("req-{}", self.ids.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending").insert(id.clone(), tx);
        self.queue.send((id, event)).expect("queue");
        tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .expect("the function answers within 20 s")
            .expect("answered")
    }

    async fn invoke(&self, event: &Value) -> Outcome {
        self.invoke_raw(event.to_string().into_bytes()).await
    }

    async fn init_error(&self) -> (Option<String>, Value) {
        tokio::time::timeout(Duration::from_secs(20), self.init_errors.lock().await.recv())
            .await
            .expect("an init error within 20 s")
            .expect("init error")
    }
}

/// The built binary, started as a Lambda function in its own working directory.
struct Function {
    child: Child,
    dir: PathBuf,
}

/// How the binary is started.
enum Start<'a> {
    /// `session-authorizer lambda` and these arguments.
    Lambda(&'a [&'a str]),
    /// Through a link named `bootstrap`, with no arguments, as a custom runtime starts it.
    Bootstrap,
}

static DIRS: AtomicU64 = AtomicU64::new(0);

impl Function {
    /// `lambda` with `config` as `./config.toml` (none when `None`) and extra variables.
    fn start(api: &RuntimeApi, config: Option<&str>, env: &[(&str, &str)]) -> Self {
        Self::launch(api, config, env, Start::Lambda(&[]))
    }

    fn launch(api: &RuntimeApi, config: Option<&str>, env: &[(&str, &str)], how: Start<'_>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "session-authorizer-lambda-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        if let Some(config) = config {
            std::fs::write(dir.join("config.toml"), config).expect("config");
        }
        let bin = env!("CARGO_BIN_EXE_session-authorizer");
        let mut cmd = match how {
            Start::Lambda(args) => {
                let mut c = Command::new(bin);
                c.arg("lambda").args(args);
                c
            }
            Start::Bootstrap => {
                let link = dir.join("bootstrap");
                std::os::unix::fs::symlink(bin, &link).expect("symlink");
                Command::new(link)
            }
        };
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if name.starts_with("SESSION_AUTHORIZER__") || name.starts_with("AWS_LAMBDA_") {
                cmd.env_remove(&k);
            }
        }
        cmd.current_dir(&dir)
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "session-authorizer")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/session-authorizer")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[$LATEST]0123456789abcdef")
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn session-authorizer lambda");
        Self { child, dir }
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(status) = self.exited() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the function did not exit");
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The stub core and a service whose JWKS is loaded, so later fetches are the function's.
async fn core_and_service(config: &str) -> (StubCore, Service) {
    let core = StubCore::start().await;
    let svc = Service::start(settings(&core.uri(), config)).await;
    for _ in 0..100 {
        if reqwest::get(svc.url("/readyz")).await.is_ok_and(|r| r.status() == 200) {
            return (core, svc);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("service not ready");
}

fn core_env(core: &StubCore) -> (&'static str, String) {
    ("SESSION_AUTHORIZER__SUPERTOKENS__CONNECTION_URI", core.uri())
}

fn token(core: &StubCore, roles: &[&str], ttl: i64) -> String {
    support::role_token(core, roles, ttl, "session-1", false)
}

fn token_event(token: &str, verb_and_path: &str) -> Value {
    json!({"type": "TOKEN", "authorizationToken": token, "methodArn": format!("{METHOD_ARN_PREFIX}/{verb_and_path}")})
}

fn v2_event(cookies: &[String], headers: Value, method: &str, path: &str) -> Value {
    json!({
        "version": "2.0", "type": "REQUEST",
        "routeArn": format!("arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/{method}{path}"),
        "identitySource": ["x"], "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "cookies": cookies, "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "abcdef123", "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
                           "requestId": "id", "routeKey": "$default", "stage": "$default", "time": "24/Nov/2026:00:00:00 +0000", "timeEpoch": 1_795_478_400_000_u64}
    })
}

fn appsync_event(token: &str) -> Value {
    json!({"authorizationToken": token, "requestContext": {"apiId": "graphql-api", "accountId": "123456789012", "requestId": "r",
           "queryString": "query { me { id } }", "operationName": "Me", "variables": {}}})
}

/// What the answer must be, beyond being the same through both transports.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Allowed as `user-1`.
    User,
    /// Allowed without a session.
    Anonymous,
    /// The `Unauthorized` function error (HTTP 401).
    Unauthorized,
    /// The invalid-claims deny.
    Denied,
}

/// The verdict read off a 200 answer of any event kind.
fn verdict(body: &Value) -> Expect {
    let allowed = body["isAuthorized"]
        .as_bool()
        .unwrap_or_else(|| body["policyDocument"]["Statement"][0]["Effect"] == "Allow");
    let user = body["principalId"]
        .as_str()
        .or_else(|| body["context"]["userId"].as_str())
        .or_else(|| body["resolverContext"]["userId"].as_str())
        .unwrap_or_default();
    match (allowed, user) {
        (true, "user-1") => Expect::User,
        (true, "") => Expect::Anonymous,
        (false, _) => Expect::Denied,
        (true, other) => panic!("unexpected user {other}"),
    }
}

/// Sends `event` through `POST /authorize` and through the function; both must agree, and be `expect`.
async fn same_answer(svc: &Service, api: &RuntimeApi, name: &str, event: &Value, expect: Expect) -> Value {
    let (status, http) = svc.authorize(event).await;
    let lambda = api.invoke(event).await;
    match status {
        200 => {
            assert_eq!(
                lambda,
                Outcome::Response(http.clone()),
                "{name}: the function answers as POST /authorize"
            );
            assert_eq!(verdict(&http), expect, "{name}: {http}");
        }
        401 => {
            assert_eq!(expect, Expect::Unauthorized, "{name}: got 401");
            let Outcome::Error { body, .. } = &lambda else {
                panic!("{name}: 401 over HTTP but {lambda:?} from the function")
            };
            assert_eq!(
                body["errorMessage"], "Unauthorized",
                "{name}: exactly the message API Gateway maps to 401"
            );
            assert_eq!(body["errorType"], "Unauthorized", "{name}");
        }
        s => panic!("{name}: status {s} {http}"),
    }
    http
}

#[tokio::test]
async fn every_event_kind_answers_as_post_authorize() {
    let (core, svc) = core_and_service(CONFIG).await;
    let api = RuntimeApi::start().await;
    let jwks_before = core.faults.jwks_requests.load(Ordering::SeqCst);
    let (k, v) = core_env(&core);
    let _function = Function::start(&api, Some(CONFIG), &[(k, &v)]);

    let user = token(&core, &["user"], 3600);
    let admin = token(&core, &["admin"], 3600);
    let banned = token(&core, &["banned"], 3600);
    let expired = token(&core, &["user"], -10);
    let cookie = |t: &str| vec![("Cookie", format!("sAccessToken={t}"))];
    let cases: Vec<(&str, Value, Expect)> = vec![
        // REST REQUEST
        ("rest: cookie session", rest_event("GET", "/items", &cookie(&user)), Expect::User),
        (
            "rest: bearer session",
            rest_event("POST", "/items", &[("Authorization", format!("Bearer {user}"))]),
            Expect::User,
        ),
        ("rest: no session", rest_event("GET", "/items", &[]), Expect::Anonymous),
        (
            "rest: expired",
            rest_event("GET", "/items", &cookie(&expired)),
            Expect::Unauthorized,
        ),
        (
            "rest: required route, no session",
            rest_event("GET", "/admin/users", &[]),
            Expect::Unauthorized,
        ),
        (
            "rest: failing claim",
            rest_event("GET", "/admin/users", &cookie(&user)),
            Expect::Denied,
        ),
        (
            "rest: passing claim",
            rest_event("GET", "/admin/users", &cookie(&admin)),
            Expect::User,
        ),
        // REST TOKEN (API Gateway never invokes it without a token: no anonymous case)
        ("token: bare token", token_event(&user, "GET/items"), Expect::User),
        ("token: Bearer", token_event(&format!("Bearer {user}"), "GET/items"), Expect::User),
        ("token: expired", token_event(&expired, "GET/items"), Expect::Unauthorized),
        // Not a session token: ignored, as the SDK does, so no session.
        ("token: not a JWT", token_event("not-a-jwt", "GET/items"), Expect::Anonymous),
        ("token: failing claim", token_event(&user, "DELETE/admin/x"), Expect::Denied),
        // HTTP API 2.0, simple responses
        (
            "v2: cookies array",
            v2_event(&[format!("sAccessToken={user}")], json!({}), "GET", "/items"),
            Expect::User,
        ),
        (
            "v2: bearer",
            v2_event(&[], json!({"authorization": format!("Bearer {user}")}), "GET", "/items"),
            Expect::User,
        ),
        ("v2: no session", v2_event(&[], json!({}), "GET", "/items"), Expect::Anonymous),
        (
            "v2: expired",
            v2_event(&[format!("sAccessToken={expired}")], json!({}), "GET", "/items"),
            Expect::Unauthorized,
        ),
        (
            "v2: failing claim",
            v2_event(&[format!("sAccessToken={user}")], json!({}), "GET", "/admin/x"),
            Expect::Denied,
        ),
        // AppSync (the token is its identity: no anonymous case)
        ("appsync: session", appsync_event(&user), Expect::User),
        ("appsync: Bearer", appsync_event(&format!("Bearer {user}")), Expect::User),
        ("appsync: expired", appsync_event(&expired), Expect::Unauthorized),
        ("appsync: failing claim", appsync_event(&banned), Expect::Denied),
    ];
    for (name, event, expect) in &cases {
        same_answer(&svc, &api, name, event, *expect).await;
    }

    // Exact shapes, once per kind.
    let rest = same_answer(&svc, &api, "rest", &rest_event("GET", "/items", &cookie(&user)), Expect::User).await;
    assert_eq!(
        rest,
        json!({
            "principalId": "user-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": format!("{METHOD_ARN_PREFIX}/GET/items")}]},
            "context": {"setCookie": "", "userId": "user-1", "tenantId": "public", "sessionHandle": "session-1"}
        })
    );
    let deny = same_answer(
        &svc,
        &api,
        "rest deny",
        &rest_event("GET", "/admin/users", &cookie(&user)),
        Expect::Denied,
    )
    .await;
    assert_eq!(deny["principalId"], "");
    assert_eq!(
        deny["context"]["body"],
        r#"{"message":"invalid claim","claimValidationErrors":[{"id":"st-role","reason":{"message":"wrong value","expectedToInclude":"admin","actualValue":["user"]}}]}"#
    );
    let v2 = same_answer(&svc, &api, "v2", &v2_event(&[], json!({}), "GET", "/items"), Expect::Anonymous).await;
    assert_eq!(v2, json!({"isAuthorized": true, "context": {"setCookie": ""}}));
    let appsync = same_answer(&svc, &api, "appsync", &appsync_event(&user), Expect::User).await;
    assert_eq!(
        appsync,
        json!({"isAuthorized": true, "resolverContext": {"userId": "user-1", "tenantId": "public", "sessionHandle": "session-1"}, "ttlOverride": 300})
    );

    // First use after a refresh: the new access token goes out in context.setCookie. Each
    // transport gets its own new token from the core, so only the shape is compared.
    let refreshed = support::role_token(&core, &["user"], 3600, "session-2", true);
    let event = rest_event("GET", "/items", &cookie(&refreshed));
    let (status, http) = svc.authorize(&event).await;
    let Outcome::Response(lambda) = api.invoke(&event).await else {
        panic!("refresh: not a response")
    };
    assert_eq!(status, 200);
    for body in [&http, &lambda] {
        assert_eq!(body["principalId"], "user-1");
        let set_cookie = body["context"]["setCookie"].as_str().expect("setCookie");
        assert!(set_cookie.starts_with("sAccessToken="), "{set_cookie}");
    }

    // One state for the process: the keys were fetched once for these ~30 invocations (twice
    // at most, when the first decision's fetch ends before the init-time refresher looks).
    let fetches = core.faults.jwks_requests.load(Ordering::SeqCst) - jwks_before;
    assert!((1..=2).contains(&fetches), "{fetches} JWKS fetches");
}

#[tokio::test]
async fn http_api_iam_responses_from_an_environment_override() {
    let iam = format!("{CONFIG}\n");
    let (core, svc) = core_and_service(&iam.replace("[lambda]\n", "[lambda]\nhttp_api_response = \"iam\"\n")).await;
    let api = RuntimeApi::start().await;
    let (k, v) = core_env(&core);
    let _function = Function::start(
        &api,
        Some(CONFIG),
        &[(k, &v), ("SESSION_AUTHORIZER__LAMBDA__HTTP_API_RESPONSE", "iam")],
    );
    let user = token(&core, &["user"], 3600);
    let expired = token(&core, &["user"], -10);
    let body = same_answer(
        &svc,
        &api,
        "v2 iam: session",
        &v2_event(&[format!("sAccessToken={user}")], json!({}), "GET", "/items"),
        Expect::User,
    )
    .await;
    assert_eq!(
        body["policyDocument"]["Statement"][0]["Resource"],
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/GET/items"
    );
    same_answer(
        &svc,
        &api,
        "v2 iam: anonymous",
        &v2_event(&[], json!({}), "GET", "/items"),
        Expect::Anonymous,
    )
    .await;
    same_answer(
        &svc,
        &api,
        "v2 iam: expired",
        &v2_event(&[format!("sAccessToken={expired}")], json!({}), "GET", "/items"),
        Expect::Unauthorized,
    )
    .await;
    same_answer(
        &svc,
        &api,
        "v2 iam: failing claim",
        &v2_event(&[format!("sAccessToken={user}")], json!({}), "PUT", "/admin/x"),
        Expect::Denied,
    )
    .await;
}

#[tokio::test]
async fn bad_events_are_function_errors_and_the_next_invocation_is_served() {
    let (core, svc) = core_and_service(CONFIG).await;
    let api = RuntimeApi::start().await;
    let (k, v) = core_env(&core);
    let mut function = Function::start(&api, Some(CONFIG), &[(k, &v)]);
    let user = token(&core, &["user"], 3600);
    let cases: Vec<(&[u8], &str)> = vec![
        (b"this is not JSON", "failed to deserialize"),
        (b"{}", "not a Lambda authorizer event"),
        (br#"{"type":"WEBSOCKET","methodArn":"a"}"#, "not a Lambda authorizer event"),
        (br#"{"type":"REQUEST"}"#, "REQUEST event is missing `methodArn`"),
        (
            br#"{"type":"TOKEN","methodArn":"arn:x/a/GET/p"}"#,
            "TOKEN event is missing `authorizationToken`",
        ),
        (br#"{"version":"2.0","type":"REQUEST"}"#, "HTTP API 2.0 event is missing `routeArn`"),
        (br#"{"type":"REQUEST","methodArn":"a","headers":{"x":1}}"#, "not valid JSON"),
    ];
    for (event, needle) in cases {
        let outcome = api.invoke_raw(event.to_vec()).await;
        let message = outcome.error_message().unwrap_or_default();
        assert!(message.contains(needle), "{}: {outcome:?}", String::from_utf8_lossy(event));
        assert_ne!(message, "Unauthorized");
        // The next invocation is served by the same process.
        same_answer(
            &svc,
            &api,
            "after a bad event",
            &rest_event("GET", "/items", &[("cookie", format!("sAccessToken={user}"))]),
            Expect::User,
        )
        .await;
        assert!(function.exited().is_none(), "the function keeps running");
    }
    // The same messages as the 400s of POST /authorize.
    let outcome = api.invoke_raw(br#"{"type":"REQUEST"}"#.to_vec()).await;
    assert_eq!(
        outcome,
        Outcome::Error {
            kind: Some("unhandled".into()),
            body: json!({"errorType": "InvalidEvent", "errorMessage": "REQUEST event is missing `methodArn`"})
        }
    );
}

#[tokio::test]
async fn bootstrap_link_runs_the_function_without_arguments_or_config_file() {
    let core = StubCore::start().await;
    let api = RuntimeApi::start().await;
    let (k, v) = core_env(&core);
    let _function = Function::launch(&api, None, &[(k, &v)], Start::Bootstrap);
    let user = token(&core, &["user"], 3600);
    let Outcome::Response(body) = api.invoke(&token_event(&user, "GET/items")).await else {
        panic!("no response")
    };
    assert_eq!(body["principalId"], "user-1");
}

#[tokio::test]
async fn configuration_errors_are_init_errors() {
    let core = StubCore::start().await;
    let (k, v) = core_env(&core);
    for (env, needle) in [
        (("SESSION_AUTHORIZER__SUPERTOKENS__ANTI_CSRF", "SOMETIMES"), "anti_csrf"),
        // The stage-wide policy with path-dependent routes would let a cached allow open /admin.
        (("SESSION_AUTHORIZER__LAMBDA__POLICY_RESOURCE", "stage"), "`lambda.policy_resource`"),
    ] {
        let api = RuntimeApi::start().await;
        let mut function = Function::start(&api, Some(CONFIG), &[(k, &v), env]);
        let (kind, body) = api.init_error().await;
        assert_eq!(kind.as_deref(), Some("Runtime.ConfigInvalid"));
        assert_eq!(body["errorType"], "Runtime.ConfigInvalid");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.to_ascii_lowercase().contains(needle), "{message}");
        assert!(!function.wait_exit().await.success());
    }
    // An explicit --config that does not exist is an init error too.
    let api = RuntimeApi::start().await;
    let mut function = Function::launch(&api, None, &[(k, &v)], Start::Lambda(&["--config", "missing.toml"]));
    let (_, body) = api.init_error().await;
    let message = body["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("`missing.toml` does not exist"), "{message}");
    assert!(!function.wait_exit().await.success());
}

#[test]
fn outside_lambda_it_names_the_missing_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
        .arg("lambda")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`AWS_LAMBDA_RUNTIME_API` is not set"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
