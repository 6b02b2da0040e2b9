//! TLS and mTLS on both listeners of the real binary: curl, Envoy (ext_authz gRPC over a TLS
//! cluster with its client certificate) and NGINX (`proxy_ssl_certificate`) get decisions; with
//! `client_ca_file` a client without a certificate, or with one another CA issued, is refused
//! during the handshake; a renewed certificate and SIGHUP reach new connections while an open
//! one keeps working; `check-config` names an unreadable file and a key that is not the
//! certificate's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::proxies::{GATEWAY_CONFIG, Proxy, RecordingBackend, raw_request, wait_until_serving};
use crate::support::{Process, StubCore, check_config, free_port};

/// The name the authorizer's certificate carries and its clients check.
const NAME: &str = "session-authorizer";

type Ca = CertifiedIssuer<'static, KeyPair>;

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// Writes `{file}.pem` and `{file}-key.pem` in `dir`: a server certificate for the
/// authorizer's names, or a client certificate.
fn issue(ca: &Ca, dir: &Path, file: &str, server: bool) {
    let names = if server {
        vec![NAME.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned()]
    } else {
        vec![format!("{file}.clients.test")]
    };
    let mut params = CertificateParams::new(names).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, file);
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("sign");
    std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).expect("write cert");
    std::fs::write(dir.join(format!("{file}-key.pem")), key.serialize_pem()).expect("write key");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("session-authorizer-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn config(core: &StubCore, dir: &Path, client_ca: bool, watch_ms: u64) -> String {
    let client_ca = if client_ca {
        format!("client_ca_file = \"{}\"\n", dir.join("clients-ca.pem").display())
    } else {
        String::new()
    };
    format!(
        "[server]\nconfig_watch_interval_ms = {watch_ms}\n[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{client_ca}\n[supertokens]\nconnection_uri = \"{}\"\n{GATEWAY_CONFIG}",
        dir.join("server.pem").display(),
        dir.join("server-key.pem").display(),
        core.uri()
    )
}

/// curl's answer: the status (0 when no HTTP exchange happened), curl's exit code, and the
/// response headers.
struct Curl {
    status: u16,
    exit: i32,
    headers: String,
}

fn curl(addr: SocketAddr, path: &str, ca: &Path, client: Option<(&Path, &Path)>, headers: &[(&str, String)]) -> Curl {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "/dev/null", "-D", "-", "-w", "\n%{http_code}", "--max-time", "5"])
        .arg("--cacert")
        .arg(ca)
        // The name on the certificate, at the test's address.
        .arg("--resolve")
        .arg(format!("{NAME}:{}:127.0.0.1", addr.port()))
        .arg(format!("https://{NAME}:{}{path}", addr.port()));
    if let Some((cert, key)) = client {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    for (k, v) in headers {
        c.arg("-H").arg(format!("{k}: {v}"));
    }
    let out = c.output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (headers, status) = text.rsplit_once('\n').unwrap_or(("", "000"));
    Curl {
        status: status.trim().parse().unwrap_or(0),
        exit: out.status.code().unwrap_or(-1),
        headers: headers.to_ascii_lowercase(),
    }
}

async fn wait_tls_up(proc: &Process, ca: &Path, client: Option<(&Path, &Path)>) {
    for _ in 0..200 {
        if curl(proc.http, "/healthz", ca, client, &[]).status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no TLS answer; log:\n{}", proc.log().join("\n"));
}

fn forward(token: Option<&str>, uri: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![("x-original-method", "GET".to_owned()), ("x-original-uri", uri.to_owned())];
    if let Some(t) = token {
        h.push(("authorization", format!("Bearer {t}")));
    }
    h
}

/// A TLS client connection from the test itself, trusting `cas`.
async fn tls_connect(addr: SocketAddr, cas: &[&Path]) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_file(ca).expect("ca"))
            .expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(rustls_pki_types::ServerName::try_from(NAME).expect("name"), tcp)
        .await
        .expect("handshake")
}

/// One keep-alive HTTP/1.1 request for `/healthz` on an open connection: its status.
async fn healthz_on(stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> u16 {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: session-authorizer\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\"ok\"}") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("answer in time")
            .expect("read");
        assert!(n > 0, "the connection was closed");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)[9..12].parse().expect("status")
}

/// The authorizer serving TLS with a certificate the first of two CAs issued (`first-ca.pem`,
/// `second-ca.pem` in its directory), up: the process, its directory and the second CA.
async fn two_ca_server(core: &StubCore, name: &str, watch_ms: u64) -> (Process, PathBuf, Ca) {
    let dir = scratch(name);
    let (first, second) = (ca("first CA"), ca("second CA"));
    std::fs::write(dir.join("first-ca.pem"), first.pem()).expect("ca");
    std::fs::write(dir.join("second-ca.pem"), second.pem()).expect("ca");
    issue(&first, &dir, "server", true);
    let proc = Process::serve_in(dir.clone(), &config(core, &dir, false, watch_ms), &[]);
    wait_tls_up(&proc, &dir.join("first-ca.pem"), None).await;
    (proc, dir, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_decisions_over_tls_and_a_renewed_certificate_reaches_new_connections_after_sighup() {
    let core = StubCore::start().await;
    // The file watch off: the signal alone reloads.
    let (proc, dir, second) = two_ca_server(&core, "renew", 0).await;
    let (ca1, ca2) = (dir.join("first-ca.pem"), dir.join("second-ca.pem"));

    let token = core.issuer.mint(&Default::default()).expect("mint");
    let allowed = curl(proc.http, "/forward-auth", &ca1, None, &forward(Some(&token), "/private/x"));
    assert_eq!(allowed.status, 200, "{}", allowed.headers);
    assert!(allowed.headers.contains("x-user-id: "), "{}", allowed.headers);
    assert_eq!(
        curl(proc.http, "/forward-auth", &ca1, None, &forward(None, "/private/x")).status,
        401
    );
    // Plain HTTP is not served on a TLS listener.
    assert!(reqwest::get(proc.url("/healthz")).await.is_err(), "plaintext answered");

    // A connection opened on the first certificate.
    let mut open = tls_connect(proc.http, &[&ca1, &ca2]).await;
    assert_eq!(healthz_on(&mut open).await, 200);

    // Renewed by another CA, at the same paths; SIGHUP.
    issue(&second, &dir, "server", true);
    proc.signal("HUP");
    for _ in 0..200 {
        if proc.log().iter().any(|l| l.contains("configuration reloaded")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let renewed = curl(proc.http, "/healthz", &ca2, None, &[]);
    assert_eq!(renewed.status, 200, "the renewed certificate is served to new connections");
    let old = curl(proc.http, "/healthz", &ca1, None, &[]);
    assert_eq!(old.status, 0, "the old certificate is no longer served");
    assert_eq!(healthz_on(&mut open).await, 200, "the open connection was kept");

    // A broken certificate file at the next reload: refused, the renewed one still served.
    std::fs::write(dir.join("server.pem"), "not a certificate").expect("break");
    proc.signal("HUP");
    for _ in 0..200 {
        if proc.log().iter().any(|l| l.contains("configuration not reloaded")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let line = proc
        .log()
        .into_iter()
        .find(|l| l.contains("configuration not reloaded"))
        .expect("refused");
    assert!(line.contains("server.tls.cert_file"), "{line}");
    assert_eq!(curl(proc.http, "/healthz", &ca2, None, &[]).status, 200);

    // check-config names the file at fault: unreadable, then a key that is not the certificate's.
    let file = dir.join("config.toml");
    let (ok, err) = check_config(&file);
    assert!(!ok && err.contains("server.tls.cert_file"), "{err}");
    issue(&second, &dir, "server", true);
    issue(&second, &dir, "other", true);
    std::fs::copy(dir.join("other-key.pem"), dir.join("server-key.pem")).expect("copy");
    let (ok, err) = check_config(&file);
    assert!(
        !ok && err.contains("server.tls.key_file") && err.contains("does not belong"),
        "{err}"
    );
    std::fs::remove_file(dir.join("server-key.pem")).expect("rm");
    let (ok, err) = check_config(&file);
    assert!(!ok && err.contains("server.tls.key_file") && err.contains("cannot read"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_clients_without_an_accepted_certificate_and_envoy_and_nginx_get_decisions() {
    let core = StubCore::start().await;
    let dir = scratch("mtls");
    let (servers, clients, rogue) = (ca("server CA"), ca("clients CA"), ca("rogue CA"));
    std::fs::write(dir.join("ca.pem"), servers.pem()).expect("ca");
    std::fs::write(dir.join("clients-ca.pem"), clients.pem()).expect("ca");
    issue(&servers, &dir, "server", true);
    for client in ["curl", "envoy", "nginx"] {
        issue(&clients, &dir, client, false);
    }
    issue(&rogue, &dir, "rogue", false);
    let proc = Process::serve_in(dir.clone(), &config(&core, &dir, true, 500), &[]);
    let ca = dir.join("ca.pem");
    let good = (dir.join("curl.pem"), dir.join("curl-key.pem"));
    let good = Some((good.0.as_path(), good.1.as_path()));
    wait_tls_up(&proc, &ca, good).await;

    let token = core.issuer.mint(&Default::default()).expect("mint");
    let with_cert = curl(proc.http, "/forward-auth", &ca, good, &forward(Some(&token), "/private/x"));
    assert_eq!(with_cert.status, 200, "{}", with_cert.headers);
    let none = curl(proc.http, "/forward-auth", &ca, None, &forward(Some(&token), "/private/x"));
    assert_eq!(
        (none.status, none.headers.as_str()),
        (0, ""),
        "no certificate: no HTTP exchange at all"
    );
    assert_ne!(none.exit, 0);
    let (rc, rk) = (dir.join("rogue.pem"), dir.join("rogue-key.pem"));
    let rogue_answer = curl(
        proc.http,
        "/forward-auth",
        &ca,
        Some((&rc, &rk)),
        &forward(Some(&token), "/private/x"),
    );
    assert_eq!(
        (rogue_answer.status, rogue_answer.headers.as_str()),
        (0, ""),
        "another CA's certificate: refused"
    );
    // The gRPC listener refuses a client without a certificate too.
    let grpc_none = curl(proc.grpc, "/", &ca, None, &[]);
    assert_eq!(grpc_none.status, 0);

    let (backend, backend_addr) = RecordingBackend::start().await;
    let tls_dir = [("TLS_DIR", dir.display().to_string())];
    let live_tls = |text: String| text.replace("#tls ", "");
    let envoy_port = free_port();
    let _envoy = Proxy::EnvoyGrpc.start_with(envoy_port, (proc.http, proc.grpc), backend_addr, &tls_dir, &live_tls);
    let nginx_port = free_port();
    let nginx_tls = |text: String| {
        live_tls(text).replace(
            "proxy_pass http://session_authorizer/forward-auth;",
            "proxy_pass https://session_authorizer/forward-auth;",
        )
    };
    let _nginx = Proxy::Nginx.start_with(nginx_port, (proc.http, proc.grpc), backend_addr, &tls_dir, &nginx_tls);
    for (proxy, port) in [(Proxy::EnvoyGrpc, envoy_port), (Proxy::Nginx, nginx_port)] {
        wait_until_serving(proxy, port, "/open").await;
        backend.take();
        let request = format!(
            "GET /private/x HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\nx-user-id: forged\r\nconnection: close\r\n\r\n"
        );
        let answer = raw_request(port, request.as_bytes()).await;
        assert_eq!(answer.status, 200, "{}", proxy.name());
        let received = backend.take();
        let ids: Vec<&str> = received.iter().flat_map(|r| r.aliases("x-user-id")).collect();
        assert_eq!(ids.len(), 1, "{}: {ids:?}", proxy.name());
        assert_ne!(ids[0], "forged", "{}", proxy.name());
        let anonymous = raw_request(port, b"GET /private/x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await;
        assert_eq!(anonymous.status, 401, "{}", proxy.name());
    }
    let log = proc.log().join("\n");
    for door in ["envoy_grpc", "forward_auth"] {
        assert!(
            log.contains(&format!("\"front_door\":\"{door}\"")),
            "{door} decided over mTLS:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_renewed_in_place_is_served_without_a_signal() {
    let core = StubCore::start().await;
    let (proc, dir, second) = two_ca_server(&core, "watch", 500).await;
    let ca2 = dir.join("second-ca.pem");
    // As a Secret volume is updated: the new files are renamed into place.
    let staged = dir.join("staged");
    std::fs::create_dir_all(&staged).expect("dir");
    issue(&second, &staged, "server", true);
    std::fs::rename(staged.join("server-key.pem"), dir.join("server-key.pem")).expect("key");
    std::fs::rename(staged.join("server.pem"), dir.join("server.pem")).expect("cert");
    let renewed = std::time::Instant::now();
    while curl(proc.http, "/healthz", &ca2, None, &[]).status != 200 {
        assert!(
            renewed.elapsed() < Duration::from_millis(1_500),
            "the renewed certificate was not served; log:\n{}",
            proc.log().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        proc.log()
            .iter()
            .any(|l| l.contains("configuration reloaded") && l.contains("file changed"))
    );
}
