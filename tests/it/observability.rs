//! Observability of the real binary: one JSON log line per decision with the fields operators
//! need and never a token, cookie value or the core's api key; every metric the docs list, with
//! Prometheus types and units.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use session_authorizer::dev::MintOptions;
use support::{Process, StubCore, rest_event, role_token};

const API_KEY: &str = "core-api-key-never-logged-7f3a";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_logs_and_metrics() {
    let core = StubCore::start().await;
    let toml = format!(
        r#"[server]
log_format = "json"

[supertokens]
connection_uri = "{}"
api_key = "{API_KEY}"

[[routes]]
path = "/admin/**"
claims = [{{ claim = "st-role", includes = "admin" }}]

[[routes]]
path = "/db/**"
check_database = true
"#,
        core.uri()
    );
    let proc = Process::serve("observability", &toml, &[("RUST_LOG", "info")]);
    proc.wait_up().await;
    for _ in 0..100 {
        if reqwest::get(proc.url("/readyz")).await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let valid = core.issuer.mint(&MintOptions::default()).expect("mint");
    let user_only = role_token(&core, &["user"], 3600, "session-1", false);
    let expired = role_token(&core, &[], -10, "session-1", false);
    let client = reqwest::Client::new();
    let authorize = |path: &str, token: Option<&str>| {
        let headers: Vec<(&str, String)> = token
            .map(|t| ("cookie", format!("sAccessToken={t}; other=cookie-value-xyz")))
            .into_iter()
            .collect();
        client.post(proc.url("/authorize")).json(&rest_event("GET", path, &headers)).send()
    };
    assert_eq!(authorize("/items/1", Some(&valid)).await.expect("allow").status(), 200);
    assert_eq!(authorize("/items/1", None).await.expect("anonymous").status(), 200);
    assert_eq!(authorize("/items/1", Some(&expired)).await.expect("expired").status(), 401);
    assert_eq!(authorize("/admin/x", Some(&user_only)).await.expect("claims").status(), 200);
    assert_eq!(authorize("/db/x", Some(&valid)).await.expect("db").status(), 200);
    let fa = client
        .get(proc.url("/forward-auth"))
        .header("x-original-method", "GET")
        .header("x-original-uri", "/items/2")
        .header("authorization", format!("Bearer {valid}"))
        .header("x-request-id", "req-forward-1")
        .header("traceparent", format!("00-{TRACE_ID}-{SPAN_ID}-01"))
        .send()
        .await
        .expect("forward-auth");
    assert_eq!(fa.status(), 200);
    let envoy = client
        .get(proc.url("/ext-authz/items/3"))
        .header("cookie", format!("sAccessToken={expired}"))
        .header("x-request-id", "req-envoy-1")
        .header("x-b3-traceid", TRACE_ID)
        .header("x-b3-spanid", SPAN_ID)
        .send()
        .await
        .expect("ext-authz");
    assert_eq!(envoy.status(), 401);

    let check = support::grpc_check(
        proc.grpc,
        "GET",
        "/items/4",
        &[
            ("authorization", format!("Bearer {valid}")),
            ("x-request-id", "req-grpc-1".into()),
            ("traceparent", format!("00-{TRACE_ID}-{SPAN_ID}-01")),
        ],
    )
    .await;
    assert_eq!(check.status.map(|s| s.code), Some(0), "gRPC Check allowed");

    // Logs: collected from the process's stderr.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = proc.log();
    let decisions: Vec<Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 8, "one line per decision:\n{}", log.join("\n"));
    for d in &decisions {
        for field in [
            "front_door",
            "outcome",
            "user_id",
            "route",
            "reason",
            "latency_us",
            "method",
            "timestamp",
            "level",
            "request_id",
            "trace_id",
            "span_id",
        ] {
            assert!(d.get(field).is_some(), "decision line without `{field}`: {d}");
        }
    }
    let outcome = |door: &str, outcome: &str| decisions.iter().any(|d| d["front_door"] == door && d["outcome"] == outcome);
    assert!(outcome("lambda_request", "allow"));
    assert!(outcome("lambda_request", "anonymous"));
    assert!(outcome("lambda_request", "try_refresh"));
    assert!(outcome("lambda_request", "invalid_claims"));
    assert!(outcome("forward_auth", "allow"));
    assert!(outcome("envoy_http", "try_refresh"));
    // The proxy's request id and the caller's trace ids (W3C or B3); a made-up id otherwise,
    // different for every request.
    let forward = decisions
        .iter()
        .find(|d| d["front_door"] == "forward_auth")
        .expect("forward-auth line");
    assert_eq!(
        (&forward["request_id"], &forward["trace_id"], &forward["span_id"]),
        (&json!("req-forward-1"), &json!(TRACE_ID), &json!(SPAN_ID))
    );
    let grpc_line = decisions.iter().find(|d| d["front_door"] == "envoy_grpc").expect("gRPC line");
    assert_eq!(
        (&grpc_line["request_id"], &grpc_line["trace_id"]),
        (&json!("req-grpc-1"), &json!(TRACE_ID))
    );
    let envoy_line = decisions.iter().find(|d| d["front_door"] == "envoy_http").expect("ext-authz line");
    assert_eq!(
        (&envoy_line["request_id"], &envoy_line["trace_id"]),
        (&json!("req-envoy-1"), &json!(TRACE_ID))
    );
    let made: BTreeSet<&str> = decisions
        .iter()
        .filter(|d| d["front_door"] == "lambda_request")
        .map(|d| d["request_id"].as_str().expect("request_id"))
        .collect();
    assert_eq!(made.len(), 5, "a different id for each request: {made:?}");
    assert!(made.iter().all(|id| id.len() > 12 && !id.contains(' ')), "{made:?}");
    let allow = decisions.iter().find(|d| d["outcome"] == "allow").expect("an allow line");
    assert_eq!(allow["user_id"], "user-1");
    assert!(allow["latency_us"].as_u64().is_some());
    let claims_line = decisions.iter().find(|d| d["outcome"] == "invalid_claims").expect("a claims line");
    assert_eq!(claims_line["route"], "/admin/**");
    let refresh = decisions
        .iter()
        .find(|d| d["outcome"] == "try_refresh")
        .expect("a try-refresh line");
    assert!(
        refresh["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "a reason for refusals: {refresh}"
    );

    let whole = log.join("\n");
    for secret in [valid.as_str(), user_only.as_str(), expired.as_str(), API_KEY, "cookie-value-xyz"] {
        assert!(!whole.contains(secret), "a secret reached the log");
    }
    // Not even a token's signature or payload alone.
    for t in [&valid, &expired] {
        for part in t.split('.').skip(1) {
            assert!(!whole.contains(part), "part of a token reached the log");
        }
    }

    // Metrics: every documented family, with its type.
    let metrics = reqwest::get(proc.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for (name, kind) in [
        ("session_authorizer_decisions_total", "counter"),
        ("session_authorizer_decision_duration_seconds", "histogram"),
        ("session_authorizer_jwks_fetch_total", "counter"),
        ("session_authorizer_jwks_keys", "gauge"),
        ("session_authorizer_jwks_age_seconds", "gauge"),
        ("session_authorizer_session_cache_events_total", "counter"),
        ("session_authorizer_session_cache_entries", "gauge"),
        ("session_authorizer_core_requests_total", "counter"),
        ("session_authorizer_core_request_duration_seconds", "histogram"),
    ] {
        assert!(metrics.contains(&format!("# TYPE {name} {kind}")), "{name} as a {kind}:\n{metrics}");
    }
    for line in [
        "session_authorizer_decisions_total{front_door=\"lambda_request\",outcome=\"allow\"} 2",
        "session_authorizer_decisions_total{front_door=\"envoy_http\",outcome=\"try_refresh\"} 1",
        "session_authorizer_jwks_fetch_total{result=\"ok\"}",
        "session_authorizer_jwks_keys 2",
        "session_authorizer_core_requests_total{endpoint=\"verify\",result=\"ok\"} 1",
        "session_authorizer_session_cache_events_total{event=\"hit\"}",
        "session_authorizer_session_cache_events_total{event=\"miss\"}",
        "session_authorizer_session_cache_events_total{event=\"eviction\"}",
    ] {
        assert!(metrics.contains(line), "missing `{line}`:\n{metrics}");
    }
    assert!(!metrics.contains(API_KEY));
}
