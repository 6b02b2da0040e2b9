//! The identity assertion end to end: the authorizer signs, Envoy (ext_authz gRPC) and NGINX
//! (auth_request) pass it on, and the echo backend verifies it with PyJWT against the
//! authorizer's JWKS (signature, `aud`, `iss`, `exp`, `sub`) as a Python backend would. A
//! client-sent assertion never reaches the backend; an expired or foreign-key one fails the
//! backend's check; a key rotation publishes old and new keys for one lifetime, then the new one.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use session_authorizer::assertion::{Assertions, Subject};
use session_authorizer::clock::ManualClock;
use session_authorizer::dev::MintOptions;
use session_authorizer::session::SessionInfo;
use session_authorizer::settings::{AssertionAlgorithm, AssertionSettings};

use crate::support::proxies::{GATEWAY_CONFIG, Proxy, raw_request, wait_until_serving};
use crate::support::{KillOnDrop, Process, StubCore, check_config, free_port, metrics_text, repo_path, rest_event, tool};

const AUDIENCE: &str = "orders-api";

/// Writes a new ES256 PKCS#8 PEM key to `path`.
fn write_key(path: &Path) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let der =
        aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    std::fs::write(path, format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")).expect("write key");
}

fn config(core: &StubCore, key: &Path, ttl_secs: u64) -> String {
    format!(
        "[server]\nconfig_watch_interval_ms = 0\n[supertokens]\nconnection_uri = \"{}\"\n\
         [assertion]\nenabled = true\naudience = \"{AUDIENCE}\"\nttl_secs = {ttl_secs}\nkey_file = \"{}\"\n{GATEWAY_CONFIG}",
        core.uri(),
        key.display()
    )
}

/// The echo backend, checking assertions with PyJWT against `jwks_url`.
fn echo_backend(jwks_url: &str) -> (KillOnDrop, u16) {
    let port = free_port();
    let mut child = Command::new(tool("JWT_PYTHON"))
        .arg(repo_path("dev/echo-backend/echo_backend.py"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--jwks-url",
            jwks_url,
            "--audience",
            AUDIENCE,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the echo backend");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read");
    assert!(first.contains("listening"), "{first}");
    (KillOnDrop(child), port)
}

/// What the backend said about the assertion it received (`Value::Null`: none arrived).
fn backend_verdict(body: &str) -> Value {
    let answer: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    answer["assertion"].clone()
}

/// Sends `assertion` straight to the backend, as a process that bypassed the gateway would.
async fn direct(backend_port: u16, assertion: &str) -> Value {
    let request = format!("GET /x HTTP/1.1\r\nhost: localhost\r\nx-session-assertion: {assertion}\r\nconnection: close\r\n\r\n");
    backend_verdict(&raw_request(backend_port, request.as_bytes()).await.body)
}

/// An assertion for `user-1` signed with `key` (or a key of its own) at `now_ms`.
fn signed_elsewhere(key: Option<&Path>, now_ms: u64) -> String {
    let settings = AssertionSettings {
        enabled: true,
        audience: AUDIENCE.into(),
        algorithm: AssertionAlgorithm::Es256,
        key_file: key.map(Path::to_path_buf),
        ..AssertionSettings::default()
    };
    let assertions = Assertions::build(&settings, None, Arc::new(ManualClock::new(now_ms)), 10)
        .expect("signer")
        .expect("enabled");
    let issuer = session_authorizer::dev::Issuer::new().expect("issuer");
    let token = issuer.mint(&MintOptions::default()).expect("mint");
    let parsed = session_authorizer::credentials::token::ParsedToken::parse(&token).expect("parse");
    let session = SessionInfo::from_token(&Arc::new(session_authorizer::verification::facts::SessionToken::from_parsed(
        &parsed,
    )));
    let subject = Subject {
        session: &session,
        token: None,
        route: "/private/**",
        route_id: 0,
        method: "GET",
    };
    assertions.for_request(&subject).expect("sign").to_string()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("session-authorizer-assertion-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_and_nginx_pass_an_assertion_the_backend_verifies_with_pyjwt_and_never_a_clients() {
    let core = StubCore::start().await;
    let dir = scratch("e2e");
    let key = dir.join("key.pem");
    write_key(&key);
    let proc = Process::serve_in(dir.clone(), &config(&core, &key, 60), &[]);
    proc.wait_up().await;
    let (_backend, backend_port) = echo_backend(&proc.url("/.well-known/jwks.json"));
    let backend_addr = std::net::SocketAddr::from(([127, 0, 0, 1], backend_port));
    let token = core.issuer.mint(&MintOptions::default()).expect("mint");

    let envoy_port = free_port();
    let _envoy = Proxy::EnvoyGrpc.start_with(envoy_port, (proc.http, proc.grpc), backend_addr, &[], &|t| t);
    let nginx_port = free_port();
    let _nginx = Proxy::Nginx.start_with(nginx_port, (proc.http, proc.grpc), backend_addr, &[], &|t| t);
    for (proxy, port) in [(Proxy::EnvoyGrpc, envoy_port), (Proxy::Nginx, nginx_port)] {
        wait_until_serving(proxy, port, "/open").await;
        let name = proxy.name();
        // A session, and a client trying to slip its own assertion in.
        let request = format!(
            "GET /private/orders HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\nx-session-assertion: forged\r\nconnection: close\r\n\r\n"
        );
        let answer = raw_request(port, request.as_bytes()).await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.body);
        let verdict = backend_verdict(&answer.body);
        assert_eq!(verdict["valid"], true, "{name}: {verdict}");
        assert_eq!(verdict["sub"], "user-1", "{name}: {verdict}");
        assert_eq!(verdict["claims"]["aud"], AUDIENCE);
        assert_eq!(verdict["claims"]["iss"], "session-authorizer");
        assert_eq!(verdict["claims"]["htm"], "GET");
        assert_eq!(verdict["claims"]["route"], "/private/**");
        assert_eq!(verdict["claims"]["tenant_id"], "public");
        // Anonymous on an optional route: the client's copy is dropped, none is added.
        let request = b"GET /open HTTP/1.1\r\nhost: localhost\r\nx-session-assertion: forged\r\nconnection: close\r\n\r\n";
        let answer = raw_request(port, request).await;
        assert_eq!(answer.status, 200, "{name}");
        assert_eq!(
            backend_verdict(&answer.body),
            Value::Null,
            "{name}: a client's assertion reached the backend"
        );
    }

    // A process that reaches the backend directly: a foreign key and an expired assertion of the
    // right key both fail the backend's own check.
    let foreign = direct(backend_port, &signed_elsewhere(None, now_ms())).await;
    assert_eq!(foreign["valid"], false, "{foreign}");
    let expired = direct(backend_port, &signed_elsewhere(Some(&key), now_ms() - 3_600_000)).await;
    assert_eq!(expired["valid"], false, "{expired}");
    assert!(expired["error"].as_str().unwrap_or_default().contains("xpired"), "{expired}");
    let fresh = direct(backend_port, &signed_elsewhere(Some(&key), now_ms())).await;
    assert_eq!(fresh["valid"], true, "the same key, in time: {fresh}");

    // The Lambda contract carries it in the context; an anonymous allow does not.
    let authorize = |path: &str, headers: &[(&str, String)]| {
        let (url, event) = (proc.url("/authorize"), rest_event("GET", path, headers));
        async move {
            let answer: Value = reqwest::Client::new()
                .post(url)
                .json(&event)
                .send()
                .await
                .expect("authorize")
                .json()
                .await
                .expect("json");
            answer
        }
    };
    let answer = authorize("/private/orders", &[("cookie", format!("sAccessToken={token}"))]).await;
    let jwt = answer["context"]["assertion"].as_str().expect("an assertion in the context");
    assert_eq!(direct(backend_port, jwt).await["sub"], "user-1");
    let answer = authorize("/open", &[]).await;
    assert!(answer["context"].get("assertion").is_none(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_publishes_old_and_new_for_one_lifetime_then_only_the_new() {
    const TTL_SECS: u64 = 3;
    let core = StubCore::start().await;
    let dir = scratch("rotation");
    let key = dir.join("key.pem");
    write_key(&key);
    let proc = Process::serve_in(dir.clone(), &config(&core, &key, TTL_SECS), &[]);
    proc.wait_up().await;
    let (_backend, backend_port) = echo_backend(&proc.url("/.well-known/jwks.json"));
    let token = core.issuer.mint(&MintOptions::default()).expect("mint");
    let client = reqwest::Client::new();
    let assertion = || async {
        let r = client
            .get(proc.url("/forward-auth"))
            .header("x-original-method", "GET")
            .header("x-original-uri", "/private/x")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("forward-auth");
        r.headers()["x-session-assertion"].to_str().expect("ascii").to_owned()
    };
    let jwks = || async {
        let set: Value = client
            .get(proc.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("json");
        set["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect::<Vec<_>>()
    };
    let before = assertion().await;
    assert_eq!(assertion().await, before, "reused for the same token, route and method");
    let metrics = metrics_text(proc.http).await;
    for line in [
        "session_authorizer_assertions_total{result=\"signed\"} 1",
        "session_authorizer_assertions_total{result=\"reused\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}:\n{metrics}");
    }
    let old_kids = jwks().await;
    assert_eq!(old_kids.len(), 1);

    write_key(&key);
    proc.signal("HUP");
    for _ in 0..100 {
        if jwks().await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let overlap = jwks().await;
    assert_eq!(overlap.len(), 2, "old and new published: {overlap:?}");
    assert!(overlap.contains(&old_kids[0]));
    let after = assertion().await;
    assert_ne!(before, after, "signed with the new key");
    // Both verify at the backend during the overlap (PyJWKClient fetches the set again for the
    // new kid).
    assert_eq!(
        direct(backend_port, &before).await["valid"],
        true,
        "the old key's assertion in the overlap"
    );
    assert_eq!(direct(backend_port, &after).await["valid"], true, "the new key's assertion");

    tokio::time::sleep(Duration::from_secs(TTL_SECS)).await;
    let settled = jwks().await;
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert!(!settled.contains(&old_kids[0]), "the old key is no longer published");
}

#[test]
fn check_config_names_an_assertion_key_it_cannot_use() {
    let dir = scratch("check");
    let file = dir.join("config.toml");
    let check = |toml: &str| {
        std::fs::write(&file, toml).expect("write");
        check_config(&file)
    };
    let missing = dir.join("missing.pem");
    let (ok, err) = check(&format!(
        "[assertion]\nenabled = true\naudience = \"a\"\nkey_file = \"{}\"\n",
        missing.display()
    ));
    assert!(!ok && err.contains("assertion.key_file"), "{err}");
    let (ok, err) = check("[assertion]\nenabled = true\n");
    assert!(!ok && err.contains("assertion.audience"), "{err}");
    let key = dir.join("key.pem");
    write_key(&key);
    let (ok, err) = check(&format!(
        "[assertion]\nenabled = true\naudience = \"a\"\nalgorithm = \"EdDSA\"\nkey_file = \"{}\"\n",
        key.display()
    ));
    assert!(!ok && err.contains("EdDSA"), "a P-256 key named for EdDSA: {err}");
    let (ok, err) = check(&format!(
        "[assertion]\nenabled = true\naudience = \"a\"\nkey_file = \"{}\"\n",
        key.display()
    ));
    assert!(ok, "{err}");
}
