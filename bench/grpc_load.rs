//! Open-loop, fixed-rate gRPC load for `envoy.service.auth.v3.Authorization/Check`, built on
//! envoy-types' generated client (Envoy's own protos), as Envoy's ext_authz filter would call it.
//!
//! `cargo bench --bench grpc_load -- --addr HOST:PORT --token JWT [--rate 1000] [--seconds 10]
//! [--channels 4]` prints one JSON line: requests sent, allowed, errors, and latency percentiles.
//! Open loop: requests leave on schedule whether or not earlier ones have been answered, so a
//! stalled server shows up as latency. Latency is measured from the moment each request is
//! handed to the client; how late that was against its schedule (tokio's timer ticks in 1 ms) is
//! reported as `max_send_lag_ms`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::Address;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use tonic::transport::{Channel, Endpoint};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn check_request(token: &str) -> CheckRequest {
    let mut headers = HashMap::new();
    headers.insert("cookie".to_owned(), format!("sAccessToken={token}"));
    headers.insert(":authority".to_owned(), "api.example.com".to_owned());
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(Address::default()),
                ..Default::default()
            }),
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/items".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // `cargo test --all-targets` runs bench targets without arguments: nothing to load then.
    let (Some(addr), Some(token)) = (arg("--addr"), arg("--token")) else {
        eprintln!("usage: cargo bench --bench grpc_load -- --addr HOST:PORT --token JWT [--rate N] [--seconds S] [--channels C]");
        return;
    };
    let rate: u64 = arg("--rate").and_then(|v| v.parse().ok()).unwrap_or(1000);
    let seconds: u64 = arg("--seconds").and_then(|v| v.parse().ok()).unwrap_or(10);
    let channels: usize = arg("--channels").and_then(|v| v.parse().ok()).unwrap_or(4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut clients = Vec::new();
        for _ in 0..channels {
            let channel: Channel = Endpoint::from_shared(format!("http://{addr}"))
                .expect("address")
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("connect");
            clients.push(AuthorizationClient::new(channel));
        }
        let request = check_request(&token);
        // Warm the connections and the server's cache before measuring.
        for c in &mut clients {
            let _ = c.check(request.clone()).await;
        }
        let total = rate * seconds;
        let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
        let start = Instant::now() + Duration::from_millis(50);
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            let due = start + interval * i as u32;
            tokio::time::sleep_until(due.into()).await;
            let mut client = clients[i as usize % clients.len()].clone();
            let req = request.clone();
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let lag = sent.saturating_duration_since(due).as_secs_f64() * 1000.0;
                let reply = client.check(req).await;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                let allowed = matches!(
                    reply.as_ref().map(|r| &r.get_ref().http_response),
                    Ok(Some(HttpResponse::OkResponse(_)))
                );
                (ms, allowed, reply.is_err(), lag)
            }));
        }
        let mut latencies = Vec::with_capacity(tasks.len());
        let (mut ok, mut errors, mut max_lag) = (0u64, 0u64, 0f64);
        for t in tasks {
            let (ms, allowed, failed, lag) = t.await.expect("task");
            max_lag = max_lag.max(lag);
            latencies.push(ms);
            ok += u64::from(allowed);
            errors += u64::from(failed);
        }
        let achieved = total as f64 / start.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        println!(
            "{{\"sent\":{total},\"allowed\":{ok},\"errors\":{errors},\"achieved_rps\":{achieved:.1},\"p50_ms\":{:.4},\"p99_ms\":{:.4},\"p999_ms\":{:.4},\"max_ms\":{:.4},\"max_send_lag_ms\":{max_lag:.3}}}",
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            percentile(&latencies, 99.9),
            latencies.last().copied().unwrap_or(f64::NAN),
        );
    });
}
