//! Benchmark fixture: serves a stub SuperTokens core (the embedded issuer) and writes the
//! events and tokens the load runs use, then stays up until killed.
//!
//! `cargo bench --bench fixture -- --out DIR [--unique N] [--port P]` writes into DIR:
//! `core_uri`, `cached.json` (a 1.6 KB REST REQUEST event with a valid session cookie),
//! `expired.json`, `none.json`, `token.txt`, `unique.jsonl` (N events, each with its own token),
//! `unique_tokens.txt`, then prints `READY`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Value, json};
use session_authorizer::dev::{Issuer, MintOptions};

fn event(token: Option<&str>) -> Value {
    let mut headers = json!({
        "Accept": "application/json, text/plain, */*",
        "Accept-Encoding": "gzip, deflate, br",
        "Accept-Language": "en-GB,en;q=0.9",
        "CloudFront-Forwarded-Proto": "https",
        "CloudFront-Is-Desktop-Viewer": "true",
        "CloudFront-Viewer-Country": "GB",
        "Host": "abcdef123.execute-api.us-east-1.amazonaws.com",
        "Origin": "https://app.example.com",
        "Referer": "https://app.example.com/dashboard",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "Via": "2.0 a1b2c3d4e5f6.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": "Ui2uT7YTh0yVRC9XhfQ1bXCi3K0Ty0w0uQdZy3SExample==",
        "X-Amzn-Trace-Id": "Root=1-5e66d96f-7491f09xmpl79d18acf3d050",
        "X-Forwarded-For": "203.0.113.10, 198.51.100.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    });
    if let Some(t) = token {
        headers["cookie"] = json!(format!("theme=dark; sAccessToken={t}; sFrontToken=x"));
    }
    json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/items",
        "resource": "/items",
        "path": "/items",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {},
        "queryStringParameters": {"page": "1"},
        "multiValueQueryStringParameters": {"page": ["1"]},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "resourceId": "qxj2eb", "resourcePath": "/items", "httpMethod": "GET", "extendedRequestId": "ZlFBkF8NoAMFmPw=",
            "requestTime": "24/Nov/2026:00:00:00 +0000", "path": "/prod/items", "accountId": "123456789012", "protocol": "HTTP/1.1",
            "stage": "prod", "domainPrefix": "abcdef123", "requestTimeEpoch": 1_795_478_400_000_u64, "requestId": "a9b4fe43-6f6a-4f7e-9c8e-6e7fexample",
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "Mozilla/5.0"},
            "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com", "apiId": "abcdef123"
        }
    })
}

/// Ids shaped like the core's (UUID v4 user ids and session handles), so that token sizes and
/// the memory per cached session are those of a real deployment.
fn uuid_like(kind: u16, i: usize) -> String {
    format!("{:08x}-{kind:04x}-4000-8000-{i:012x}", 0x5e55_10d0_u32)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut out, mut unique, mut port) = (None, 0usize, 0u16);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--unique" => unique = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--port" => port = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            _ => {} // cargo passes --bench
        }
    }
    // `cargo test --all-targets` runs bench targets without arguments: nothing to serve then.
    let Some(out) = out else {
        eprintln!("usage: cargo bench --bench fixture -- --out DIR [--unique N] [--port P]");
        return;
    };
    std::fs::create_dir_all(&out).expect("out dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let issuer = Issuer::new().expect("issuer");
        let addr = issuer.serve(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("serve");
        let write = |name: &str, text: String| std::fs::write(out.join(name), text).expect("write");
        write("core_uri", format!("http://{addr}"));
        let valid = issuer
            .mint(&MintOptions {
                user_id: uuid_like(1, 0),
                session_handle: uuid_like(2, 0),
                ttl_secs: 86_400,
                ..Default::default()
            })
            .expect("mint");
        let expired = issuer
            .mint(&MintOptions {
                ttl_secs: -60,
                ..Default::default()
            })
            .expect("mint");
        write("token.txt", valid.clone());
        write("cached.json", event(Some(&valid)).to_string());
        write("expired.json", event(Some(&expired)).to_string());
        write("none.json", event(None).to_string());
        // Unique sessions: every event its own token, minted on every core.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunks: Vec<Vec<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let issuer = issuer.clone();
                    s.spawn(move || {
                        (t..unique)
                            .step_by(threads)
                            .map(|i| {
                                issuer
                                    .mint(&MintOptions {
                                        user_id: uuid_like(1, i + 1),
                                        session_handle: uuid_like(2, i + 1),
                                        ttl_secs: 86_400,
                                        ..Default::default()
                                    })
                                    .expect("mint")
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("mint thread")).collect()
        });
        let mut events = std::io::BufWriter::new(std::fs::File::create(out.join("unique.jsonl")).expect("file"));
        let mut tokens = std::io::BufWriter::new(std::fs::File::create(out.join("unique_tokens.txt")).expect("file"));
        for t in chunks.iter().flatten() {
            writeln!(events, "{}", event(Some(t))).expect("write");
            writeln!(tokens, "{t}").expect("write");
        }
        events.flush().expect("flush");
        tokens.flush().expect("flush");
        println!("READY {}", addr);
        std::future::pending::<()>().await;
    });
}
