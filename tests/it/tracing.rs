//! OpenTelemetry traces from the real binary to a real OTLP receiver (the official protos,
//! served with grpcio: tests/otlp/receiver.py). A request through Envoy's ext_authz gRPC and
//! one to `/forward-auth` each carry the caller's W3C trace context; the receiver must get a
//! decision span in the caller's trace, the caller's span as its parent, the front door,
//! outcome, route and cache hit as attributes, and child spans for the core call and the JWKS
//! fetch the decisions made; the decision log lines name the same trace and span ids.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use session_authorizer::dev::MintOptions;

use crate::support::proxies::{Proxy, RecordingBackend, raw_request, wait_until_serving};
use crate::support::{KillOnDrop, Process, StubCore, free_port, repo_path, tool};

const CONFIG: &str = r#"
[[routes]]
path = "/private/**"
session = "required"

[[routes]]
path = "/db/**"
session = "required"
check_database = true
"#;

/// The receiver's process and the spans it printed.
struct Receiver {
    _process: KillOnDrop,
    port: u16,
    spans: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Self {
        let mut child = Command::new(tool("OTLP_PYTHON"))
            .arg(repo_path("tests/otlp/receiver.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP receiver");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first: Value = serde_json::from_str(&lines.next().expect("a first line").expect("read")).expect("JSON");
        let port = u16::try_from(first["listening"].as_u64().expect("port")).expect("port");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = spans.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let (Ok(span), Ok(mut all)) = (serde_json::from_str::<Value>(&line), sink.lock()) {
                    all.push(span);
                }
            }
        });
        Self {
            _process: KillOnDrop(child),
            port,
            spans,
        }
    }

    /// Waits for a span that `matches`.
    async fn span(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(span) = self.spans.lock().expect("lock").iter().find(|s| matches(s)) {
                return span.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no {what} span; received:\n{:#?}",
                self.spans.lock().expect("lock")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn decision_line(proc: &Process, trace_id: &str) -> Value {
    proc.log()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["trace_id"] == trace_id && l.get("outcome").is_some())
        .unwrap_or_else(|| panic!("no decision line for {trace_id}:\n{}", proc.log().join("\n")))
}

/// `GET /forward-auth` for `GET {uri}` with a Bearer token and a `traceparent`: the status.
async fn forward_auth(proc: &Process, uri: &str, token: &str, traceparent: &str) -> u16 {
    reqwest::Client::new()
        .get(proc.url("/forward-auth"))
        .header("x-original-method", "GET")
        .header("x-original-uri", uri)
        .header("authorization", format!("Bearer {token}"))
        .header("traceparent", traceparent)
        .send()
        .await
        .expect("forward-auth")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_spans_reach_a_real_otlp_receiver_in_the_callers_trace() {
    let receiver = Receiver::start();
    let core = StubCore::start().await;
    let toml = format!(
        "[supertokens]\nconnection_uri = \"{}\"\njwks_cooldown_ms = 0\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:{}\"\nservice_name = \"authz-under-test\"\n{CONFIG}",
        core.uri(),
        receiver.port
    );
    // Batches leave every 100 ms instead of every 5 s.
    let proc = Process::serve("tracing", &toml, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]);
    proc.wait_up().await;
    let token = core.issuer.mint(&MintOptions::default()).expect("mint");

    // Through Envoy's ext_authz gRPC: the trace context travels in the CheckRequest headers.
    let (_backend, backend_addr) = RecordingBackend::start().await;
    let envoy_port = free_port();
    let _envoy = Proxy::EnvoyGrpc.start_with(envoy_port, (proc.http, proc.grpc), backend_addr, &[], &|t| t);
    wait_until_serving(Proxy::EnvoyGrpc, envoy_port, "/open").await;
    let (envoy_trace, envoy_parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let request = format!(
        "GET /private/x HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\ntraceparent: 00-{envoy_trace}-{envoy_parent}-01\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(raw_request(envoy_port, request.as_bytes()).await.status, 200);

    // To /forward-auth, on a route that asks the core (check_database): a child core call.
    let (direct_trace, direct_parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let traceparent = format!("00-{direct_trace}-{direct_parent}-01");
    assert_eq!(forward_auth(&proc, "/db/rows", &token, &traceparent).await, 200);

    // A token signed by a key the authorizer has not fetched yet: the decision fetches the JWKS.
    core.issuer.rotate_dynamic_key().expect("rotate");
    let rotated = core.issuer.mint(&MintOptions::default()).expect("mint");
    let rotated_trace = "5c5e1e3f2b0a4d6e8f1a2b3c4d5e6f70";
    let traceparent = format!("00-{rotated_trace}-1111111111111111-01");
    assert_eq!(forward_auth(&proc, "/private/rotated", &rotated, &traceparent).await, 200);

    // An unsampled caller: no span, though the decision is made and logged.
    let unsampled_trace = "6d6e1e3f2b0a4d6e8f1a2b3c4d5e6f71";
    let traceparent = format!("00-{unsampled_trace}-2222222222222222-00");
    assert_eq!(forward_auth(&proc, "/private/quiet", &token, &traceparent).await, 200);

    let via_envoy = receiver
        .span("Envoy decision", |s| s["name"] == "authorize" && s["trace_id"] == envoy_trace)
        .await;
    assert_eq!(via_envoy["parent_span_id"], envoy_parent, "{via_envoy}");
    assert_eq!(via_envoy["kind"], 2, "SPAN_KIND_SERVER: {via_envoy}");
    let attributes = &via_envoy["attributes"];
    assert_eq!(attributes["front_door"], "envoy_grpc", "{via_envoy}");
    assert_eq!(attributes["outcome"], "allow", "{via_envoy}");
    assert_eq!(attributes["route"], "/private/**", "{via_envoy}");
    assert_eq!(attributes["http.request.method"], "GET", "{via_envoy}");
    assert!(attributes["cache_hit"].is_boolean(), "{via_envoy}");
    assert_eq!(via_envoy["resource"]["service.name"], "authz-under-test");
    let line = decision_line(&proc, envoy_trace);
    assert_eq!(line["span_id"], via_envoy["span_id"], "the log names the exported span: {line}");
    assert_eq!(line["parent_span_id"], envoy_parent, "{line}");
    assert_eq!(line["front_door"], "envoy_grpc");

    let direct = receiver
        .span("forward-auth decision", |s| {
            s["name"] == "authorize" && s["trace_id"] == direct_trace
        })
        .await;
    assert_eq!(direct["parent_span_id"], direct_parent, "{direct}");
    assert_eq!(direct["attributes"]["front_door"], "forward_auth");
    assert_eq!(direct["attributes"]["route"], "/db/**");
    let core_call = receiver
        .span("core call", |s| {
            s["trace_id"] == direct_trace && s["parent_span_id"] == direct["span_id"]
        })
        .await;
    assert_eq!(core_call["name"], "/recipe/session/verify", "{core_call}");
    assert_eq!(core_call["kind"], 3, "SPAN_KIND_CLIENT: {core_call}");
    let line = decision_line(&proc, direct_trace);
    assert_eq!(line["span_id"], direct["span_id"], "{line}");

    let fetching = receiver
        .span("decision with a fetch", |s| {
            s["name"] == "authorize" && s["trace_id"] == rotated_trace
        })
        .await;
    let fetch = receiver
        .span("JWKS fetch", |s| {
            s["trace_id"] == rotated_trace && s["parent_span_id"] == fetching["span_id"]
        })
        .await;
    assert_eq!(fetch["name"], "GET /.well-known/jwks.json", "{fetch}");

    // The unsampled trace: logged with the caller's ids, never exported.
    let line = decision_line(&proc, unsampled_trace);
    assert_eq!(line["outcome"], "allow");
    assert_eq!(line["span_id"], "2222222222222222", "no span of ours to name: {line}");
    assert!(line.get("parent_span_id").is_none(), "{line}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !receiver
            .spans
            .lock()
            .expect("lock")
            .iter()
            .any(|s| s["trace_id"] == unsampled_trace),
        "a span of an unsampled trace was exported"
    );
}
