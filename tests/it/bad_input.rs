//! Bad input never hurts: every front door (`POST /authorize`, `/ext-authz`, `/forward-auth`, gRPC
//! `Check`) answers oversized, malformed, too deep or wrongly shaped input with a clear error
//! (413, 431, 400 naming the problem, gRPC `OUT_OF_RANGE`/`INTERNAL`), sheds load above
//! `max_concurrency` with 503 instead of queueing, times out slow decisions, closes slow and
//! silent clients after `header_read_timeout_ms`, and keeps serving afterwards.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::{Value, json};
use support::{Service, StubCore, rest_event, settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMITS: &str = r#"
[server]
header_read_timeout_ms = 600
max_body_bytes = 65536

[[routes]]
path = "/private/**"
session = "required"
"#;

async fn setup(toml: &str) -> (StubCore, Service) {
    let core = StubCore::start().await;
    let svc = Service::start(settings(&core.uri(), toml)).await;
    (core, svc)
}

/// Sends raw bytes on a fresh connection and reads the answer until the server closes it.
async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

/// `/healthz` still answers: the service survived whatever came before.
async fn still_serving(svc: &Service) {
    let r = reqwest::get(svc.url("/healthz")).await.expect("healthz");
    assert_eq!(r.status(), 200, "the service must keep serving");
}

async fn grpc_check(addr: SocketAddr, headers: &[(&str, String)]) -> Result<(), tonic::Status> {
    let mut client = AuthorizationClient::connect(format!("http://{addr}"))
        .await
        .expect("grpc connect")
        .max_encoding_message_size(16 << 20);
    let req = support::check_request("GET", "/items", headers.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect());
    client.check(req).await.map(|_| ())
}

/// A gRPC codec that sends and receives raw bytes, to put arbitrary messages on the wire.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// Calls `Check` with `message` as the raw protobuf bytes.
async fn grpc_raw(addr: SocketAddr, message: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(16 << 20);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/envoy.service.auth.v3.Authorization/Check");
    grpc.unary(tonic::Request::new(message), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// A client whose requests carry the original method and URI NGINX would send `/forward-auth`
/// (`GET /items`); a request's own headers replace them.
fn client() -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-original-method", reqwest::header::HeaderValue::from_static("GET"));
    h.insert("x-original-uri", reqwest::header::HeaderValue::from_static("/items"));
    reqwest::Client::builder().default_headers(h).build().expect("client")
}

#[tokio::test]
async fn authorize_bodies_over_the_limit_get_413_and_at_the_limit_are_decided() {
    let (_core, svc) = setup(LIMITS).await;
    let client = client();
    let event = rest_event("GET", "/items", &[]).to_string();
    // Padded with insignificant whitespace to exactly 64 KiB: decided (anonymous allow).
    let at_limit = format!("{event}{}", " ".repeat(64 * 1024 - event.len()));
    let r = client.post(svc.url("/authorize")).body(at_limit).send().await.expect("send");
    assert_eq!(r.status(), 200, "a body of exactly max_body_bytes is accepted");
    let over = format!("{event}{}", " ".repeat(64 * 1024 + 1 - event.len()));
    let r = client.post(svc.url("/authorize")).body(over.clone()).send().await.expect("send");
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["message"], "request body is larger than 65536 bytes (server.max_body_bytes)",
        "413 names the limit"
    );
    // Chunked, without Content-Length: the limit still holds while streaming.
    let mut chunked = String::from("POST /authorize HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n");
    for chunk in over.as_bytes().chunks(4096) {
        chunked.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), String::from_utf8_lossy(chunk)));
    }
    chunked.push_str("0\r\n\r\n");
    let resp = raw_http(svc.addr, chunked.as_bytes()).await;
    assert!(
        status_line(&resp).contains(" 413 "),
        "chunked body over the limit: {}",
        status_line(&resp)
    );
    // A lying Content-Length larger than the limit is refused before reading.
    let resp = raw_http(
        svc.addr,
        b"POST /authorize HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 10000000\r\n\r\n{}",
    )
    .await;
    assert!(status_line(&resp).contains(" 413 "), "{resp}");
    still_serving(&svc).await;
}

/// Posts `size` bytes to `/authorize` with Python's `http.client`, which sends the whole body
/// before it reads the answer: (status or the client's error, answer body).
fn python_post(addr: SocketAddr, size: usize, chunked: bool) -> String {
    let script = r#"
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
size, chunked = int(sys.argv[2]), sys.argv[3] == "1"
conn = http.client.HTTPConnection(host, int(port), timeout=20)
body = b" " * size
try:
    if chunked:
        conn.request("POST", "/authorize", body=(body[i:i + 65536] for i in range(0, size, 65536)),
                     headers={"content-type": "application/json"}, encode_chunked=True)
    else:
        conn.request("POST", "/authorize", body=body, headers={"content-type": "application/json"})
    r = conn.getresponse()
    print(r.status, r.read().decode())
except Exception as e:
    print("error", type(e).__name__, e)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &addr.to_string(), &size.to_string(), if chunked { "1" } else { "0" }])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_its_body_gets_the_413() {
    let (_core, svc) = setup(LIMITS).await;
    let addr = svc.addr;
    // 24 MiB is more than the kernel's socket buffers take in on loopback: without the body
    // being read on after the answer, the client's write fails with a broken pipe.
    for size in [2 * 1024 * 1024, 24 * 1024 * 1024] {
        for chunked in [false, true] {
            let out = tokio::task::spawn_blocking(move || python_post(addr, size, chunked))
                .await
                .expect("join");
            assert!(
                out.starts_with("413 ") && out.contains("server.max_body_bytes"),
                "{size} bytes, chunked={chunked}: {out}"
            );
        }
    }
    still_serving(&svc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_every_event_a_gateway_can_send_is_read() {
    let core = StubCore::start().await;
    let svc = Service::start(settings(&core.uri(), "")).await;
    let valid = support::role_token(&core, &["user"], 3600, "big", false);
    // A REST event with a 64 KiB header (it appears twice: headers and multiValueHeaders).
    let big = "b".repeat(64 * 1024);
    let event = rest_event("GET", "/items", &[("cookie", format!("sAccessToken={valid}")), ("x-big", big)]);
    let (status, body) = svc.authorize(&event).await;
    assert_eq!((status, body["principalId"].as_str()), (200, Some("user-1")), "{body}");
    // Lambda's own payload limit (6 MiB) bounds what a gateway sends: just under it is read,
    // over it is refused.
    let event = event.to_string();
    let limit = 6 * 1024 * 1024;
    let client = client();
    let at_limit = format!("{event}{}", " ".repeat(limit - event.len()));
    let r = client.post(svc.url("/authorize")).body(at_limit).send().await.expect("send");
    assert_eq!(r.status(), 200);
    let over = format!("{event}{}", " ".repeat(limit + 1 - event.len()));
    let r = client.post(svc.url("/authorize")).body(over).send().await.expect("send");
    assert_eq!(r.status(), 413);
    assert_eq!(
        svc.state.body_budget.available_permits(),
        svc.state.server.max_buffered_body_bytes,
        "every body gave its share of the buffer budget back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_read_together_are_bounded() {
    let toml = "[server]\nmax_body_bytes = 65536\nmax_buffered_body_bytes = 100000\n";
    let (_core, svc) = setup(toml).await;
    // One body of 60 000 bytes is held while it trickles in; a second cannot fit beside it.
    let mut slow = TcpStream::connect(svc.addr).await.expect("connect");
    slow.write_all(b"POST /authorize HTTP/1.1\r\nhost: x\r\ncontent-length: 60001\r\n\r\n")
        .await
        .expect("write");
    slow.write_all(&[b' '; 60_000]).await.expect("write");
    let t0 = Instant::now();
    while svc.state.body_budget.available_permits() > 40_000 {
        assert!(t0.elapsed() < Duration::from_secs(5), "the first body was never counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = format!("{}{}", rest_event("GET", "/items", &[]), " ".repeat(50_000));
    let post_second = || client().post(svc.url("/authorize")).body(second.clone()).send();
    let r = post_second().await.expect("send");
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.expect("json")["message"], "overloaded, retry later");
    drop(slow);
    let t0 = Instant::now();
    loop {
        let r = post_second().await.expect("send");
        if r.status() == 200 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "budget not given back: {}", r.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn malformed_deep_and_wrongly_shaped_json_gets_400_naming_the_problem() {
    let (_core, svc) = setup(LIMITS).await;
    let client = client();
    let deep_object = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
    let deep_array = "[".repeat(30_000) + &"]".repeat(30_000);
    let deep_in_ignored = format!(
        r#"{{"type":"REQUEST","methodArn":"arn:a/s/GET/x","requestContext":{{"x":{}}}}}"#,
        "[".repeat(5_000) + &"]".repeat(5_000)
    );
    let deep_in_headers = format!(
        r#"{{"type":"REQUEST","methodArn":"arn:a/s/GET/x","headers":{{"cookie":{}}}}}"#,
        "{\"a\":".repeat(5_000) + "1" + &"}".repeat(5_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty body", b"".to_vec(), "EOF while parsing"),
        ("truncated object", br#"{"type":"REQUEST","#.to_vec(), "EOF while parsing"),
        ("trailing garbage", br#"{"type":"TOKEN"} x"#.to_vec(), "trailing characters"),
        ("invalid UTF-8", b"{\"type\":\"REQ\xff\xfe\"}".to_vec(), "invalid unicode"),
        ("lone surrogate escape", br#"{"type":"\ud800"}"#.to_vec(), "hex escape"),
        ("NUL byte", b"{\"type\":\0}".to_vec(), "expected value"),
        (
            "object nested 10k deep, ignored",
            deep_object.into_bytes(),
            "not a Lambda authorizer event",
        ),
        (
            "array nested 30k deep",
            deep_array.into_bytes(),
            "the body is an array, not a JSON object",
        ),
        (
            "event as a positional array",
            br#"["REQUEST",null,"arn:a/s/GET/x"]"#.to_vec(),
            "the body is an array",
        ),
        ("deep inside headers", deep_in_headers.into_bytes(), "invalid type: map"),
        ("top level string", br#""REQUEST""#.to_vec(), "the body is a string"),
        ("top level null", b" null".to_vec(), "the body is null"),
        ("top level number", b"1e999".to_vec(), "the body is a number"),
        ("top level boolean", b"true".to_vec(), "the body is a boolean"),
        (
            "deep value where a string belongs",
            format!(r#"{{"type":{}}}"#, "[".repeat(10_000)).into_bytes(),
            "invalid type: sequence",
        ),
        (
            "headers is an array",
            br#"{"type":"REQUEST","methodArn":"a","headers":["cookie"]}"#.to_vec(),
            "an object of header names",
        ),
        (
            "header value is a number",
            br#"{"type":"REQUEST","methodArn":"a","headers":{"cookie":1}}"#.to_vec(),
            "invalid type: integer",
        ),
        (
            "multiValueHeaders value is a string",
            br#"{"type":"REQUEST","methodArn":"a","multiValueHeaders":{"cookie":"x"}}"#.to_vec(),
            "expected a sequence",
        ),
        (
            "cookies is an object",
            br#"{"version":"2.0","routeArn":"r","cookies":{}}"#.to_vec(),
            "expected a sequence",
        ),
        (
            "type is a number",
            br#"{"type":7,"methodArn":"a"}"#.to_vec(),
            "invalid type: integer",
        ),
        (
            "methodArn is an object",
            br#"{"type":"TOKEN","methodArn":{},"authorizationToken":"t"}"#.to_vec(),
            "invalid type: map",
        ),
        (
            "requestContext is a string",
            br#"{"authorizationToken":"t","requestContext":"x"}"#.to_vec(),
            "invalid type: string",
        ),
        (
            "http method is a list",
            br#"{"version":"2.0","routeArn":"r","requestContext":{"http":{"method":[]}}}"#.to_vec(),
            "invalid type: sequence",
        ),
        ("not an event", br#"{"hello":"world"}"#.to_vec(), "not a Lambda authorizer event"),
        (
            "REQUEST without methodArn",
            br#"{"type":"REQUEST","headers":{}}"#.to_vec(),
            "REQUEST event is missing `methodArn`",
        ),
        (
            "TOKEN without token",
            br#"{"type":"TOKEN","methodArn":"arn:a/s/GET/x"}"#.to_vec(),
            "TOKEN event is missing `authorizationToken`",
        ),
        (
            "TOKEN with an unusable ARN",
            br#"{"type":"TOKEN","methodArn":"arn","authorizationToken":"t"}"#.to_vec(),
            "TOKEN event is missing `methodArn verb and path`",
        ),
        (
            "2.0 without method",
            br#"{"version":"2.0","routeArn":"r"}"#.to_vec(),
            "missing `requestContext.http.method`",
        ),
    ];
    for (name, body, needle) in cases {
        let r = client.post(svc.url("/authorize")).body(body).send().await.expect("send");
        assert_eq!(r.status(), 400, "{name}: status");
        assert_eq!(r.headers()["content-type"], "application/json", "{name}: content type");
        let msg = r.json::<Value>().await.expect("json")["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(msg.contains(needle), "{name}: message {msg:?} should contain {needle:?}");
    }
    // Depth in fields no decision reads is skipped without recursion: the event is decided.
    let r = client.post(svc.url("/authorize")).body(deep_in_ignored).send().await.expect("send");
    assert_eq!(r.status(), 200, "deep nesting inside an ignored field");
    still_serving(&svc).await;
}

#[tokio::test]
async fn request_heads_over_the_limit_get_431_on_every_http_door() {
    let (_core, svc) = setup(LIMITS).await;
    let big = "a".repeat(70 * 1024);
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    for (door, line) in [
        ("authorize", "POST /authorize"),
        ("ext-authz", "GET /ext-authz/items"),
        ("forward-auth", "GET /forward-auth"),
    ] {
        let resp = raw_http(
            svc.addr,
            format!("{line} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncookie: sAccessToken={big}\r\ncontent-length: 0\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert!(
            status_line(&resp).contains(" 431 "),
            "{door}, 70 KiB cookie: {:?}",
            status_line(&resp)
        );
        let resp = raw_http(
            svc.addr,
            format!("{line} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{many}content-length: 0\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(
            status_line(&resp).contains(" 431 "),
            "{door}, 150 headers: {:?}",
            status_line(&resp)
        );
    }
    still_serving(&svc).await;
}

#[tokio::test]
async fn oversized_tokens_count_as_absent_on_every_door() {
    let (core, svc) = setup(LIMITS).await;
    let valid = support::role_token(&core, &["user"], 3600, "big", false);
    // Structurally a token, 20 KiB long: over MAX_TOKEN_BYTES, under the header limit.
    let padded = format!("{valid}{}", "A".repeat(20 * 1024));
    let client = client();
    // Alone on an optional route: no session (the candidate is dropped, like any unparseable one).
    let (status, body) = svc
        .authorize(&rest_event("GET", "/items", &[("authorization", format!("Bearer {padded}"))]))
        .await;
    assert_eq!((status, body["principalId"].as_str()), (200, Some("")), "authorize: {body}");
    // Next to a valid cookie: the oversized Bearer is ignored and the cookie decides.
    let headers = [
        ("authorization", format!("Bearer {padded}")),
        ("cookie", format!("sAccessToken={valid}")),
    ];
    let (status, body) = svc.authorize(&rest_event("GET", "/items", &headers)).await;
    assert_eq!((status, body["principalId"].as_str()), (200, Some("user-1")), "authorize: {body}");
    for (url, required) in [
        (svc.url("/ext-authz/items"), svc.url("/ext-authz/private/x")),
        (svc.url("/forward-auth"), svc.url("/forward-auth")),
    ] {
        let r = client
            .get(&url)
            .header("authorization", format!("Bearer {padded}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "{url}");
        assert!(r.headers().get("x-user-id").is_none(), "{url}: no session from an oversized token");
        let r = client
            .get(&required)
            .header("x-original-method", "GET")
            .header("x-original-uri", "/private/x")
            .header("cookie", format!("sAccessToken={padded}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401, "{required}: required route, oversized cookie is no session");
        assert_eq!(r.text().await.expect("body"), r#"{"message":"unauthorised"}"#);
    }
    assert!(
        grpc_check(svc.grpc_addr, &[("authorization", format!("Bearer {padded}"))])
            .await
            .is_ok()
    );
    still_serving(&svc).await;
}

#[tokio::test]
async fn grpc_check_refuses_oversized_and_garbage_messages_and_keeps_serving() {
    let (_core, svc) = setup(LIMITS).await;
    // Within max_header_bytes + max_body_bytes (128 KiB): decided normally.
    assert!(grpc_check(svc.grpc_addr, &[("x-pad", "p".repeat(100 * 1024))]).await.is_ok());
    // Over it: refused from the length prefix, before decoding.
    let e = grpc_check(svc.grpc_addr, &[("x-pad", "p".repeat(300 * 1024))])
        .await
        .expect_err("oversized message");
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("the limit is: 131072 bytes"), "{}", e.message());
    // Garbage and wrongly shaped protobuf: a decode error, never a panic.
    let nested = {
        // Field 1 inside field 1, 200 levels deep.
        let mut m: Vec<u8> = Vec::new();
        for _ in 0..200 {
            let mut outer = vec![0x0a];
            let mut len = m.len();
            loop {
                let b = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    outer.push(b);
                    break;
                }
                outer.push(b | 0x80);
            }
            outer.extend_from_slice(&m);
            m = outer;
        }
        m
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", vec![0xff; 64]),
        ("truncated length-delimited field", vec![0x0a, 0x10, 0x01]),
        ("attributes as a varint", vec![0x08, 0x01]),
        ("invalid wire type", vec![0x0f]),
        (
            "overlong varint",
            vec![0xf8, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        ("deeply nested length-delimited fields", nested),
    ];
    for (name, bytes) in cases {
        let e = grpc_raw(svc.grpc_addr, bytes).await.expect_err(name);
        assert_eq!(e.code(), tonic::Code::Internal, "{name}: {e:?}");
        assert!(e.message().contains("failed to decode Protobuf message"), "{name}: {}", e.message());
    }
    // Empty and unknown-field-only messages are valid protobuf: an anonymous OK, not an error.
    assert!(grpc_raw(svc.grpc_addr, Vec::new()).await.is_ok(), "empty CheckRequest");
    assert!(grpc_raw(svc.grpc_addr, vec![0xf8, 0x07, 0x01]).await.is_ok(), "unknown field 127");
    // Headers that are not valid in HTTP (control characters, non-ASCII names) are just data.
    assert!(
        grpc_check(
            svc.grpc_addr,
            &[("cookie", "sAccessToken=\u{0}\r\n\u{7f}é".into()), ("ä\n", "x".into())]
        )
        .await
        .is_ok()
    );
    assert!(grpc_check(svc.grpc_addr, &[]).await.is_ok(), "still serving gRPC");
    still_serving(&svc).await;
}

#[tokio::test]
async fn proxy_doors_ignore_request_bodies_they_do_not_need() {
    let (core, svc) = setup(LIMITS).await;
    let valid = support::role_token(&core, &["user"], 3600, "body", false);
    let client = client();
    // Envoy's `with_request_body` sends the body along; it never changes the decision.
    for url in [svc.url("/ext-authz/items"), svc.url("/forward-auth")] {
        let r = client
            .post(&url)
            .header("authorization", format!("Bearer {valid}"))
            .header("content-type", "application/json")
            .body("{".repeat(32 * 1024))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.headers()["x-user-id"], "user-1", "{url}");
    }
    still_serving(&svc).await;
}

/// A "core" that accepts connections and never answers: every call to it hangs.
async fn black_hole() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (addr, task)
}

/// An event whose decision needs the JWKS (a structurally valid token with an unknown kid).
fn needs_keys_event() -> Value {
    rest_event("GET", "/items", &[("authorization", format!("Bearer {}", needs_keys_token()))])
}

fn needs_keys_token() -> String {
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b64(json!({"alg":"RS256","typ":"JWT","kid":"d-1","version":"5"})),
        b64(json!({"sub":"u","rsub":"u","exp":4_000_000_000u64,"iat":1,"sessionHandle":"h","refreshTokenHash1":"r"}))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_concurrency_limit_every_door_answers_503_at_once() {
    let (hole, _hole_task) = black_hole().await;
    let toml = r#"
[server]
max_concurrency = 1
request_timeout_ms = 30000
[supertokens]
core_timeout_ms = 30000
"#;
    let svc = Service::start(settings(&format!("http://{hole}"), toml)).await;
    // One request in flight, stuck on the JWKS fetch: it holds the only permit.
    let stuck_url = svc.url("/authorize");
    let stuck = tokio::spawn(async move { client().post(stuck_url).json(&needs_keys_event()).send().await.map(|r| r.status()) });
    let t0 = Instant::now();
    while svc.state.in_flight.available_permits() > 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "the stuck request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let client = client();
    let token = needs_keys_token();
    for (door, req) in [
        ("authorize", client.post(svc.url("/authorize")).json(&needs_keys_event())),
        ("ext-authz", client.get(svc.url("/ext-authz/items")).bearer_auth(&token)),
        ("forward-auth", client.get(svc.url("/forward-auth")).bearer_auth(&token)),
        ("anonymous forward-auth", client.get(svc.url("/forward-auth"))),
    ] {
        let started = Instant::now();
        let r = req.send().await.expect("send");
        assert_eq!(r.status(), 503, "{door}");
        assert!(started.elapsed() < Duration::from_secs(2), "{door}: shed at once, not queued");
        assert_eq!(
            r.json::<Value>().await.expect("json")["message"],
            "overloaded, retry later",
            "{door}"
        );
    }
    let started = Instant::now();
    let e = grpc_check(svc.grpc_addr, &[]).await.expect_err("gRPC shed too");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "gRPC: shed at once");
    // The client gives up: its permit comes back and the service decides again.
    stuck.abort();
    let t0 = Instant::now();
    while svc.state.in_flight.available_permits() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "permit not released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = client.get(svc.url("/forward-auth")).send().await.expect("send");
    assert_eq!(r.status(), 200, "served again once the load is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_decisions_time_out_with_503_on_every_door() {
    let (hole, _hole_task) = black_hole().await;
    let toml = r#"
[server]
request_timeout_ms = 300
[supertokens]
core_timeout_ms = 30000
"#;
    let svc = Service::start(settings(&format!("http://{hole}"), toml)).await;
    let client = client();
    let token = needs_keys_token();
    for (door, req) in [
        ("authorize", client.post(svc.url("/authorize")).json(&needs_keys_event())),
        ("ext-authz", client.get(svc.url("/ext-authz/items")).bearer_auth(&token)),
        ("forward-auth", client.get(svc.url("/forward-auth")).bearer_auth(&token)),
    ] {
        let started = Instant::now();
        let r = req.send().await.expect("send");
        let elapsed = started.elapsed();
        assert_eq!(r.status(), 503, "{door}");
        assert!(
            (Duration::from_millis(250)..Duration::from_secs(3)).contains(&elapsed),
            "{door}: answered after {elapsed:?}"
        );
        assert_eq!(r.json::<Value>().await.expect("json")["message"], "request timed out", "{door}");
    }
    let started = Instant::now();
    let e = grpc_check(svc.grpc_addr, &[("authorization", format!("Bearer {token}"))])
        .await
        .expect_err("gRPC times out");
    assert_eq!(e.code(), tonic::Code::Cancelled, "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gRPC timed out after {:?}",
        started.elapsed()
    );
    // Nothing waiting on the core holds a permit afterwards.
    assert_eq!(svc.state.in_flight.available_permits(), 4096);
}

/// Writes `bytes` one at a time, `gap` apart, while another task waits for the server to close
/// the connection; returns how long after connecting it closed (None: never, within `give_up`).
async fn trickle(addr: SocketAddr, bytes: &[u8], gap: Duration, give_up: Duration) -> (Option<Duration>, String) {
    let s = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    let (mut rd, mut wr) = s.into_split();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        (started.elapsed(), String::from_utf8_lossy(&out).into_owned())
    });
    let bytes = bytes.to_vec();
    let writer = tokio::spawn(async move {
        for b in bytes {
            if wr.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
        // Then stay silent, connection open.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(wr);
    });
    let result = tokio::time::timeout(give_up, reader).await;
    writer.abort();
    match result {
        Ok(Ok((closed_at, text))) => (Some(closed_at), text),
        _ => (None, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_closed_after_the_header_read_timeout() {
    let (_core, svc) = setup(LIMITS).await; // header_read_timeout_ms = 600
    let give_up = Duration::from_secs(8);
    let head = b"GET /forward-auth HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let cases: Vec<(&str, &[u8], Duration)> = vec![
        ("headers one byte per 100 ms", head, Duration::from_millis(100)),
        ("silent after connecting", b"", Duration::from_millis(100)),
        (
            "half a request line, then silence",
            b"GET /forward-auth HT",
            Duration::from_millis(1),
        ),
        (
            "part of the HTTP/2 preface, then silence",
            b"PRI * HTTP/2",
            Duration::from_millis(1),
        ),
    ];
    // All at once: the deadline holds per connection, whatever the others do.
    let mut tasks = Vec::new();
    for (name, bytes, gap) in cases {
        let addr = svc.addr;
        tasks.push((name, tokio::spawn(async move { trickle(addr, bytes, gap, give_up).await })));
    }
    for (name, task) in tasks {
        let (closed, text) = task.await.expect("join");
        let closed = closed.unwrap_or_else(|| panic!("{name}: connection still open after {give_up:?}"));
        assert!(
            (Duration::from_millis(500)..Duration::from_millis(2500)).contains(&closed),
            "{name}: closed after {closed:?} (timeout 600 ms)"
        );
        assert!(!text.contains(" 200 "), "{name}: must not be served: {text:?}");
    }
    still_serving(&svc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close_and_timely_clients_are_served() {
    let (_core, svc) = setup(LIMITS).await; // header_read_timeout_ms = 600
    // A request sent in three parts within the deadline is answered.
    let mut s = TcpStream::connect(svc.addr).await.expect("connect");
    for part in [
        &b"GET /forward-auth HTT"[..],
        b"P/1.1\r\nhost: x\r\n",
        b"x-original-method: GET\r\nx-original-uri: /items\r\n\r\n",
    ] {
        s.write_all(part).await.expect("write");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    // Kept alive but idle afterwards: closed after the same deadline.
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "idle keep-alive connection still open after 8 s");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "closed after {:?}",
        started.elapsed()
    );
    still_serving(&svc).await;
}

#[test]
fn limits_are_validated_with_the_key_named() {
    for (toml, key) in [
        ("[server]\nmax_header_bytes = 1024", "server.max_header_bytes"),
        ("[server]\nheader_read_timeout_ms = 0", "server.header_read_timeout_ms"),
        ("[server]\nrequest_timeout_ms = 0", "server.request_timeout_ms"),
        ("[server]\nmax_body_bytes = 0", "server.max_body_bytes"),
        ("[server]\nmax_buffered_body_bytes = 1000", "server.max_buffered_body_bytes"),
    ] {
        let e = session_authorizer::settings::Settings::from_toml_str(toml).expect_err(toml);
        assert!(e.to_string().contains(&format!("`{key}`")), "{toml}: {e}");
    }
    let s = session_authorizer::settings::Settings::from_toml_str("").expect("defaults");
    assert_eq!(
        (
            s.server.max_body_bytes,
            s.server.max_buffered_body_bytes,
            s.server.max_header_bytes,
            s.server.header_read_timeout_ms
        ),
        (6 * 1024 * 1024, 256 * 1024 * 1024, 65536, 10_000)
    );
}
