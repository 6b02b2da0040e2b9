//! `scripts/dev-gateway`: the no-Docker dev gateway (real Envoy from examples/envoy-http.yaml,
//! `session-authorizer dev`, the Python echo backend). Start it, call the API through Envoy with
//! the token it prints, check a forged `x-user-id` never reaches the backend, stop it with SIGTERM
//! and check every process it started is gone.

use crate::support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{repo_path, tool};

/// The script's process group (it is spawned as a group leader): on drop, SIGKILL to the whole
/// group as a last resort, so a failed assertion leaves nothing running.
struct Gateway {
    child: Child,
}

impl Gateway {
    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal_group("-KILL");
        }
        let _ = self.child.wait();
    }
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[tokio::test]
async fn dev_gateway_routes_sessions_through_envoy_and_cleans_up() {
    let child = Command::new(repo_path("scripts/dev-gateway"))
        .args(["--port", "0"])
        .env("SESSION_AUTHORIZER_BIN", env!("CARGO_BIN_EXE_session-authorizer"))
        .env("ENVOY_BIN", tool("ENVOY_BIN"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("start scripts/dev-gateway");
    let mut gw = Gateway { child };

    // Its banner: the gateway URL, the pids it started, the token.
    let stdout = gw.child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut url, mut token, mut pids) = (None, None, Vec::<u32>::new());
    let mut banner = Vec::new();
    let started = Instant::now();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60).saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| panic!("no banner from scripts/dev-gateway: {banner:?}"));
        if let Some(u) = line.strip_prefix("dev gateway ready: ") {
            url = Some(u.trim().to_owned());
        } else if let Some(t) = line.strip_prefix("TOKEN=") {
            token = Some(t.trim().to_owned());
        } else if let Some(p) = line.trim().strip_prefix("pids: ") {
            pids = p.split_whitespace().map(|p| p.parse().expect("pid")).collect();
        }
        let last = line.starts_with("Ctrl-C stops everything");
        banner.push(line);
        if last {
            break;
        }
    }
    let (url, token) = (url.expect("url"), token.expect("token"));
    assert_eq!(pids.len(), 3, "backend, authorizer, Envoy: {banner:?}");
    assert!(banner.iter().any(|l| l.starts_with("curl ")), "prints curl lines: {banner:?}");

    let client = reqwest::Client::new();
    let me = |body: &str| -> Value {
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("backend JSON: {e}: {body}"));
        v["data"]["me"].clone()
    };
    let query = r#"{"query":"{ me { userId } }"}"#;

    // The session's user reaches the backend as x-user-id, whatever the client claims.
    for (name, value) in [
        ("cookie", format!("sAccessToken={token}")),
        ("authorization", format!("Bearer {token}")),
    ] {
        let r = client
            .post(format!("{url}/graphql"))
            .header(name, &value)
            .header("x-user-id", "evil")
            .header("content-type", "application/json")
            .body(query)
            .send()
            .await
            .expect("request through Envoy");
        assert_eq!(r.status(), 200, "{name}");
        let body = r.text().await.expect("body");
        assert_eq!(me(&body)["userId"], "dev-user", "{name}: {body}");
    }

    // No session on an optional route: allowed, and the forged header is stripped.
    let r = client
        .post(format!("{url}/graphql"))
        .header("x-user-id", "evil")
        .body(query)
        .send()
        .await
        .expect("anonymous request");
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    assert_eq!(me(&body)["userId"], Value::Null, "a client-sent x-user-id must not arrive: {body}");
    assert!(!body.contains("evil"), "{body}");

    // /admin/** needs the admin role (403 with the claim error) and a session (401).
    let r = client
        .get(format!("{url}/admin/users"))
        .header("cookie", format!("sAccessToken={token}"))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), 403);
    assert!(r.text().await.expect("body").contains("invalid claim"));
    let r = client.get(format!("{url}/admin/users")).send().await.expect("admin");
    assert_eq!(r.status(), 401);

    // SIGTERM to the script (as Ctrl-C would): it stops everything it started and exits.
    let _ = Command::new("kill").args(["-TERM", &gw.child.id().to_string()]).status();
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = gw.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "scripts/dev-gateway did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.code(),
        Some(143),
        "the script exits 128 + SIGTERM after its cleanup: {status}"
    );
    for pid in &pids {
        assert!(!alive(*pid), "process {pid} survived the dev gateway");
    }
    // Nothing listens any more on the addresses the banner announced (Envoy, authorizer, backend).
    let addrs: Vec<&str> = banner
        .iter()
        .take_while(|l| !l.starts_with("WARNING"))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|w| w.strip_prefix("http://"))
        .collect();
    assert!(addrs.len() >= 3, "{banner:?}");
    for addr in addrs {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts connections"
        );
    }
}
