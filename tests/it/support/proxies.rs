//! The real proxies (Envoy 1.40 in HTTP and gRPC mode, NGINX auth_request, Traefik 3.7
//! forwardAuth, Caddy 2.11 forward-auth), each started from its file in `examples/` with only the
//! ports templated, and a backend that records each request exactly as it arrived.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use session_authorizer::settings::ForwardAuthProxy;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{Service, free_port, repo_path, tool};

/// The identity headers and routes the gateway suites run with: `/admin/**` needs the `admin`
/// role, `/private/**` a session, everything else is optional.
pub const GATEWAY_CONFIG: &str = r#"
[headers]
user_id = "x-user-id"
tenant_id = "x-tenant-id"
session_handle = "x-session-handle"

[[routes]]
path = "/admin/**"
session = "required"
claims = [{ claim = "st-role", includes = "admin" }]

[[routes]]
path = "/private/**"
session = "required"
"#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proxy {
    EnvoyHttp,
    EnvoyGrpc,
    Nginx,
    Traefik,
    Caddy,
}

pub const ALL: [Proxy; 5] = [Proxy::EnvoyHttp, Proxy::EnvoyGrpc, Proxy::Nginx, Proxy::Traefik, Proxy::Caddy];

/// A proxy process, killed (and its work directory removed) when dropped; its logs are printed
/// when a test fails.
pub struct Proc {
    child: Child,
    name: &'static str,
    work: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for log in ["error.log", "proxy.log"] {
                if let Ok(text) = std::fs::read_to_string(self.work.join(log)) {
                    eprintln!(
                        "--- {} {log} ---\n{}",
                        self.name,
                        text.chars().rev().take(4000).collect::<String>().chars().rev().collect::<String>()
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl Proxy {
    pub fn name(self) -> &'static str {
        match self {
            Proxy::EnvoyHttp => "envoy-http",
            Proxy::EnvoyGrpc => "envoy-grpc",
            Proxy::Nginx => "nginx",
            Proxy::Traefik => "traefik",
            Proxy::Caddy => "caddy",
        }
    }

    /// The `forward_auth.proxy` setting this proxy's example needs.
    pub fn forward_auth_proxy(self) -> ForwardAuthProxy {
        match self {
            Proxy::Traefik => ForwardAuthProxy::Traefik,
            Proxy::Caddy => ForwardAuthProxy::Caddy,
            Proxy::EnvoyHttp | Proxy::EnvoyGrpc | Proxy::Nginx => ForwardAuthProxy::Nginx,
        }
    }

    /// What the client gets when the authorizer is down (each fails closed in its own way).
    pub fn down_status(self) -> u16 {
        match self {
            Proxy::EnvoyHttp | Proxy::EnvoyGrpc => 503,
            Proxy::Nginx | Proxy::Traefik => 500,
            Proxy::Caddy => 502,
        }
    }

    /// Starts the proxy on `listen` in front of `backend`, asking `authz`.
    pub fn start(self, listen: u16, authz: &Service, backend: SocketAddr) -> Proc {
        self.start_with(listen, (authz.addr, authz.grpc_addr), backend, &[], &|text| text)
    }

    /// Starts the proxy asking the authorizer at `authz` (HTTP, gRPC), with more placeholders
    /// filled in and its example file edited by `edit` first (the TLS lines made live).
    pub fn start_with(
        self,
        listen: u16,
        authz: (SocketAddr, SocketAddr),
        backend: SocketAddr,
        extra: &[(&str, String)],
        edit: &dyn Fn(String) -> String,
    ) -> Proc {
        let work = std::env::temp_dir().join(format!("session-authorizer-{}-{}-{}", self.name(), std::process::id(), listen));
        std::fs::create_dir_all(&work).expect("work dir");
        let mut vars: Vec<(&str, String)> = vec![
            ("LISTEN_PORT", listen.to_string()),
            ("AUTHZ_HTTP_PORT", authz.0.port().to_string()),
            ("AUTHZ_GRPC_PORT", authz.1.port().to_string()),
            ("BACKEND_PORT", backend.port().to_string()),
            ("ADMIN_PORT", free_port().to_string()),
            ("WORK_DIR", work.display().to_string()),
        ];
        vars.extend(extra.iter().cloned());
        let render = |src: &str, dst: &str| -> PathBuf {
            let mut text = edit(std::fs::read_to_string(repo_path(&format!("examples/{src}"))).expect("example config"));
            for (k, v) in &vars {
                text = text.replace(&format!("{{{{{k}}}}}"), v);
            }
            let path = work.join(dst);
            std::fs::write(&path, text).expect("write config");
            path
        };
        let log = std::fs::File::create(work.join("proxy.log")).expect("log");
        let mut cmd = match self {
            Proxy::EnvoyHttp | Proxy::EnvoyGrpc => {
                let source = if self == Proxy::EnvoyHttp {
                    "envoy-http.yaml"
                } else {
                    "envoy-grpc.yaml"
                };
                let mut c = Command::new(tool("ENVOY_BIN"));
                c.arg("-c")
                    .arg(render(source, "envoy.yaml"))
                    .args(["--disable-hot-restart", "-l", "warning", "--concurrency", "1"]);
                c
            }
            Proxy::Nginx => {
                let cfg = render("nginx.conf", "nginx.conf");
                let mut c = Command::new(tool("NGINX_BIN"));
                c.arg("-p").arg(&work).arg("-e").arg(work.join("error.log")).arg("-c").arg(cfg);
                c
            }
            Proxy::Traefik => {
                render("traefik-dynamic.yml", "traefik-dynamic.yml");
                let cfg = render("traefik.yml", "traefik.yml");
                let mut c = Command::new(tool("TRAEFIK_BIN"));
                c.arg(format!("--configFile={}", cfg.display()));
                c
            }
            Proxy::Caddy => {
                let cfg = render("Caddyfile", "Caddyfile");
                let mut c = Command::new(tool("CADDY_BIN"));
                c.args(["run", "--adapter", "caddyfile", "--config"])
                    .arg(cfg)
                    .env("HOME", &work)
                    .env("XDG_DATA_HOME", &work)
                    .env("XDG_CONFIG_HOME", &work);
                c
            }
        };
        let child = cmd
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name()));
        Proc {
            child,
            name: self.name(),
            work,
        }
    }
}

/// Waits until a plain request for `path` through the proxy on `port` gets a 200 from the backend.
pub async fn wait_until_serving(kind: Proxy, port: u16, path: &str) {
    let started = Instant::now();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    loop {
        let answer = raw_request(port, request.as_bytes()).await;
        if answer.status == 200 {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{} did not come up", kind.name());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request as the backend received it: the request target exactly as sent, and the header
/// lines with their names as spelled.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// Values of every header whose name is `name` once case and `_`/`-` are set aside (what a
    /// CGI-style backend reads as one variable).
    pub fn aliases(&self, name: &str) -> Vec<&str> {
        let norm = |n: &str| n.to_ascii_lowercase().replace('_', "-");
        self.headers
            .iter()
            .filter(|(k, _)| norm(k) == norm(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A backend that answers 200 to everything and records each request exactly as it arrived
/// (no HTTP library between the socket and the record: it normalises nothing).
#[derive(Clone, Default)]
pub struct RecordingBackend {
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl RecordingBackend {
    pub async fn start() -> (Self, SocketAddr) {
        let backend = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let record = backend.received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(socket, record).await;
                });
            }
        });
        (backend, addr)
    }

    /// Takes what was received since the last call.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().expect("lock"))
    }
}

async fn serve_connection(socket: tokio::net::TcpStream, record: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let request_line = String::from_utf8_lossy(&line).trim_end().to_owned();
        let mut parts = request_line.splitn(3, ' ');
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = Vec::new();
            read.read_until(b'\n', &mut h).await?;
            let h = String::from_utf8_lossy(&h).trim_end().to_owned();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.to_owned(), v.trim().to_owned()));
            }
        }
        let mut body = vec![0u8; length];
        read.read_exact(&mut body).await?;
        let seen = json!({ "target": target, "headers": headers }).to_string();
        record.lock().expect("lock").push(Received { method, target, headers });
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{seen}",
            seen.len()
        );
        write.write_all(answer.as_bytes()).await?;
    }
}

/// A client's answer: status, header lines, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` byte for byte (no client library rewrites the target) and reads the answer:
/// its `Content-Length` worth of body, or up to the connection's close; status 0 when there is
/// none. (Envoy keeps a connection it refused open for a second before closing it.)
pub async fn raw_request(port: u16, request: &[u8]) -> Answer {
    let none = || Answer {
        status: 0,
        headers: Vec::new(),
        body: String::new(),
    };
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return none();
    };
    if s.write_all(request).await.is_err() {
        return none();
    }
    let mut out = Vec::new();
    let complete = |out: &[u8]| {
        let text = String::from_utf8_lossy(out);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        head.lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .is_some_and(|n| body.len() >= n)
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 8192];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if complete(&out) {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}
