//! Graceful drain of the real binary under load: after SIGTERM `/readyz` fails at once, both
//! listeners serve on through `server.shutdown_delay_ms`, every request sent before the
//! listeners close is answered, and the process exits 0 within the delay plus
//! `server.shutdown_timeout_ms`; a second signal exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use session_authorizer::dev::MintOptions;

use crate::support::{Process, StubCore, rest_event};

const DELAY_MS: u64 = 1_000;
const TIMEOUT_MS: u64 = 3_000;

fn config(core: &StubCore) -> String {
    format!(
        "[server]\nshutdown_delay_ms = {DELAY_MS}\nshutdown_timeout_ms = {TIMEOUT_MS}\n[supertokens]\nconnection_uri = \"{}\"\n",
        core.uri()
    )
}

async fn wait_ready(proc: &Process) {
    proc.wait_up().await;
    for _ in 0..200 {
        if reqwest::get(proc.url("/readyz")).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never ready; log:\n{}", proc.log().join("\n"));
}

/// Waits for the process to exit: its status and when.
async fn exit_of(mut proc: Process, within: Duration) -> (std::process::ExitStatus, Instant, Process) {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                return (status, Instant::now(), proc);
            }
            assert!(
                Instant::now() < deadline,
                "still running after {within:?}; log:\n{}",
                proc.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    })
    .await
    .expect("join")
}

/// One request's fate: when it was sent, and its status and principal, or whether it failed to
/// connect (sent after the listener closed) or failed otherwise (dropped: never allowed).
#[derive(Debug)]
enum Fate {
    Answered(u16, String),
    Refused,
    Dropped(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_fails_readiness_at_once_then_serves_through_the_delay_and_exits_clean() {
    let core = StubCore::start().await;
    let proc = Process::serve("drain", &config(&core), &[]);
    wait_ready(&proc).await;
    let token = core.issuer.mint(&MintOptions::default()).expect("mint");
    let url = proc.url("/authorize");
    // A new connection per request: each one either reaches the listener or is refused by it.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let done = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (client, url, done) = (client.clone(), url.clone(), done.clone());
        let event = rest_event("GET", "/items/1", &[("cookie", format!("sAccessToken={token}"))]);
        senders.push(tokio::spawn(async move {
            let mut fates = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let fate = match client.post(&url).json(&event).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        Fate::Answered(status, body["principalId"].as_str().unwrap_or_default().to_owned())
                    }
                    Err(e) if e.is_connect() => Fate::Refused,
                    Err(e) => Fate::Dropped(format!("{e:?}")),
                };
                let refused = matches!(fate, Fate::Refused);
                fates.push((sent, fate));
                if refused {
                    break;
                }
            }
            fates
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    proc.signal("TERM");
    // Not ready within 100 ms.
    loop {
        let r = reqwest::get(proc.url("/readyz")).await.expect("readyz while draining");
        if r.status() == 503 {
            let body: Value = r.json().await.expect("json");
            assert_eq!(body["draining"], true, "{body}");
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_millis(100),
            "/readyz still 200 after {:?}",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, exited, proc) = exit_of(proc, Duration::from_millis(DELAY_MS + TIMEOUT_MS + 2_000)).await;
    done.store(true, Ordering::Relaxed);
    assert!(status.success(), "exit status {status}; log:\n{}", proc.log().join("\n"));
    let took = exited - signalled;
    assert!(
        took >= Duration::from_millis(DELAY_MS),
        "exited after {took:?}, before the delay was over"
    );
    assert!(took < Duration::from_millis(DELAY_MS + TIMEOUT_MS), "exited after {took:?}");
    let (mut during_delay, mut answered) = (0, 0);
    for sender in senders {
        for (sent, fate) in sender.await.expect("sender") {
            match fate {
                Fate::Answered(status, principal) => {
                    assert_eq!((status, principal.as_str()), (200, "user-1"));
                    answered += 1;
                    if sent > signalled {
                        during_delay += 1;
                    }
                }
                // Refused connections only once the listener closed, after the delay.
                Fate::Refused => assert!(
                    sent >= signalled + Duration::from_millis(DELAY_MS) - Duration::from_millis(50),
                    "refused {:?} after the signal, inside the delay",
                    sent - signalled
                ),
                Fate::Dropped(e) => panic!(
                    "a request sent {:?} after the signal was dropped: {e}",
                    sent.saturating_duration_since(signalled)
                ),
            }
        }
    }
    assert!(
        answered > 100 && during_delay > 50,
        "answered {answered}, {during_delay} of them during the delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let core = StubCore::start().await;
    let toml = format!("[supertokens]\nconnection_uri = \"{}\"\n", core.uri());
    let proc = Process::serve("second-signal", &toml, &[]);
    wait_ready(&proc).await;
    proc.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = Instant::now();
    proc.signal("INT");
    // The default delay is 5 s: an exit well before it is the second signal's.
    let (status, exited, _) = exit_of(proc, Duration::from_secs(3)).await;
    assert!(exited - second < Duration::from_millis(500), "took {:?}", exited - second);
    assert!(!status.success(), "a forced exit is not a clean one: {status}");
}
