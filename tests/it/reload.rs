//! Hot reload of the real binary under load: a route and a header name change together, by
//! SIGHUP and, separately, by a Kubernetes-style ConfigMap update (a symlink swapped to a new
//! directory, seen by the file watch). 200 clients keep sending; every answer must come from one
//! whole configuration, the new one must decide within a second, no request may fail. A broken
//! file keeps the running configuration and counts an error; a listener change is reported as
//! needing a restart; the caches survive unless the core's address changes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Process, StubCore, metrics_text, role_token};

const CLIENTS: usize = 200;

/// Version `v` of the file: `/a/**` needs role `r{v}` and the user id goes out as `x-user-v{v}`.
fn config(core_uri: &str, v: u8, watch_ms: u64, extra: &str) -> String {
    format!(
        "[server]\nconfig_watch_interval_ms = {watch_ms}\n{extra}\n[supertokens]\nconnection_uri = \"{core_uri}\"\n\
         [headers]\nuser_id = \"x-user-v{v}\"\n\
         [[routes]]\npath = \"/a/**\"\nsession = \"required\"\nclaims = [{{ claim = \"st-role\", includes = \"r{v}\" }}]\n"
    )
}

/// What one answer says about the configuration that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    V1,
    V2,
}

/// A client holding a token with role `r1` or `r2`: version 1 allows the first and names the
/// user in `x-user-v1`, version 2 the second in `x-user-v2`. A request decided by the policy of
/// one version and the headers of the other would be allowed under the wrong header name.
async fn ask(client: &reqwest::Client, url: &str, token: &str, role: u8) -> Result<Seen, String> {
    let r = client
        .get(url)
        .header("x-original-method", "GET")
        .header("x-original-uri", "/a/item")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = r.status().as_u16();
    let named = |v: u8| r.headers().get(format!("x-user-v{v}")).is_some();
    match (status, role) {
        (200, 1) if named(1) && !named(2) => Ok(Seen::V1),
        (200, 2) if named(2) && !named(1) => Ok(Seen::V2),
        (403, 1) => Ok(Seen::V2),
        (403, 2) => Ok(Seen::V1),
        _ => Err(format!("role r{role}: status {status}, headers {:?}", r.headers())),
    }
}

/// Every answer of every client: when the request was sent, when answered, and what it saw.
type Answers = Vec<Vec<(Instant, Instant, Result<Seen, String>)>>;

/// Runs `CLIENTS` clients until `change` has run and `after` has passed.
async fn under_load(
    proc: &Process,
    core: &StubCore,
    change: impl std::future::Future<Output = Instant>,
    after: Duration,
) -> (Instant, Answers) {
    let tokens = [
        role_token(core, &["r1"], 3600, "h1", false),
        role_token(core, &["r2"], 3600, "h2", false),
    ];
    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().expect("client");
    let url = proc.url("/forward-auth");
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let (client, url, done, tokens) = (client.clone(), url.clone(), done.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut n = i;
            while !done.load(Ordering::Relaxed) {
                let role = (n % 2) as u8;
                n += 1;
                let sent = Instant::now();
                let seen = ask(&client, &url, &tokens[usize::from(role)], role + 1).await;
                answers.push((sent, Instant::now(), seen));
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let changed_at = change.await;
    tokio::time::sleep(after).await;
    done.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("client"));
    }
    (changed_at, all)
}

/// No failure; v1 before the change; each client moves from v1 to v2 once and never back; all
/// requests sent a second after the change see v2. Returns the last time a request saw v1.
fn assert_switched(answers: &Answers, changed_at: Instant, log: &[String]) -> Duration {
    let mut last_old = Duration::ZERO;
    let mut total = 0;
    for client in answers {
        let mut switched = false;
        for (sent, answered, seen) in client {
            total += 1;
            let seen = match seen {
                Ok(s) => *s,
                Err(e) => panic!(
                    "a request failed or was decided by a mixed configuration: {e}\nlog:\n{}",
                    log.join("\n")
                ),
            };
            if *answered < changed_at {
                assert_eq!(seen, Seen::V1, "the new configuration decided before the change");
            }
            match seen {
                Seen::V2 => switched = true,
                Seen::V1 => {
                    assert!(!switched, "a client saw the old configuration after the new one");
                    last_old = last_old.max(sent.saturating_duration_since(changed_at));
                }
            }
        }
        assert!(switched, "a client never saw the new configuration");
    }
    assert!(total > 2 * CLIENTS, "too few requests to judge: {total}");
    assert!(
        last_old < Duration::from_secs(1),
        "a request sent {last_old:?} after the change still saw the old configuration"
    );
    last_old
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

async fn wait_for_log(proc: &Process, needle: &str) -> String {
    for _ in 0..200 {
        if let Some(line) = proc.log().into_iter().find(|l| l.contains(needle)) {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no log line with {needle:?}:\n{}", proc.log().join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_switches_the_whole_configuration_under_load_and_a_broken_file_changes_nothing() {
    let core = StubCore::start().await;
    let uri = core.uri();
    // The file watch off: only the signal reloads.
    let proc = Process::serve("reload-hup", &config(&uri, 1, 0, ""), &[]);
    proc.wait_up().await;
    let file = proc.dir.join("config.toml");
    let before = metrics_text(proc.http).await;
    let started_at = metric(&before, "session_authorizer_config_last_reload_success_timestamp_seconds");
    assert!(started_at > 1.7e9, "the start counts as the first load: {started_at}");

    let (changed_at, answers) = under_load(
        &proc,
        &core,
        async {
            std::fs::write(&file, config(&uri, 2, 0, "")).expect("rewrite");
            let at = Instant::now();
            proc.signal("HUP");
            at
        },
        Duration::from_millis(1_500),
    )
    .await;
    let lag = assert_switched(&answers, changed_at, &proc.log());
    eprintln!("SIGHUP: last answer from the old configuration {lag:?} after the signal");
    let after = metrics_text(proc.http).await;
    assert_eq!(metric(&after, "session_authorizer_config_reload_total{result=\"ok\"}"), 1.0);
    assert_eq!(metric(&after, "session_authorizer_config_reload_total{result=\"error\"}"), 0.0);
    let reloaded_at = metric(&after, "session_authorizer_config_last_reload_success_timestamp_seconds");
    assert!(reloaded_at >= started_at);
    // The same core: the keys were not fetched again, the tokens already verified stayed cached.
    assert_eq!(
        metric(&after, "session_authorizer_jwks_fetch_total{result=\"ok\"}"),
        metric(&before, "session_authorizer_jwks_fetch_total{result=\"ok\"}"),
    );
    let line = wait_for_log(&proc, "configuration reloaded").await;
    assert!(line.contains("\"caches\":\"kept\"") && line.contains("SIGHUP"), "{line}");

    // A broken file: refused with the key named, counted, the running configuration stays.
    std::fs::write(&file, config(&uri, 1, 0, "").replace("/a/**", "/a/[")).expect("break");
    proc.signal("HUP");
    let line = wait_for_log(&proc, "configuration not reloaded").await;
    assert!(line.contains("routes[0].path"), "the log names the key: {line}");
    let client = reqwest::Client::new();
    let r2 = role_token(&core, &["r2"], 3600, "h2", false);
    assert_eq!(ask(&client, &proc.url("/forward-auth"), &r2, 2).await, Ok(Seen::V2));
    let broken = metrics_text(proc.http).await;
    assert_eq!(metric(&broken, "session_authorizer_config_reload_total{result=\"error\"}"), 1.0);
    assert_eq!(
        metric(&broken, "session_authorizer_config_last_reload_success_timestamp_seconds"),
        reloaded_at,
        "a refused file is not a success"
    );

    // Two limits the listeners were built with: reported, running values kept, the rest applied.
    let moved = config(&uri, 1, 0, "max_concurrency = 7\nheader_read_timeout_ms = 7777");
    std::fs::write(&file, moved).expect("rewrite");
    proc.signal("HUP");
    let line = wait_for_log(&proc, "next start").await;
    assert!(
        line.contains("server.header_read_timeout_ms") && line.contains("server.max_concurrency"),
        "{line}"
    );
    let r1 = role_token(&core, &["r1"], 3600, "h1", false);
    for _ in 0..40 {
        if ask(&client, &proc.url("/forward-auth"), &r1, 1).await == Ok(Seen::V1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        ask(&client, &proc.url("/forward-auth"), &r1, 1).await,
        Ok(Seen::V1),
        "the new routes apply"
    );
    assert_eq!(
        metric(&metrics_text(proc.http).await, "session_authorizer_config_restart_required"),
        1.0
    );
}

/// Kubernetes mounts a ConfigMap as `config.toml -> ..data/config.toml`, `..data -> ..<stamp>`,
/// and updates it by writing a new `..<stamp>` directory and renaming a new `..data` link over
/// the old one.
fn configmap_update(dir: &Path, stamp: &str, text: &str) {
    let target = dir.join(stamp);
    std::fs::create_dir_all(&target).expect("dir");
    std::fs::write(target.join("config.toml"), text).expect("write");
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(stamp, &tmp).expect("link");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_is_picked_up_by_the_file_watch_and_a_new_core_clears_the_caches() {
    let core = StubCore::start().await;
    let uri = core.uri();
    let dir = std::env::temp_dir().join(format!("session-authorizer-reload-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    configmap_update(&dir, "..2026_12_08_01_00_00.1", "");
    std::os::unix::fs::symlink("..data/config.toml", dir.join("config.toml")).expect("link");
    // The default watch interval: the change must show within a second on its own.
    let v1 = config(&uri, 1, 500, "");
    let proc = Process::serve_in(dir.clone(), &v1, &[]);
    assert!(
        std::fs::symlink_metadata(dir.join("config.toml"))
            .expect("stat")
            .file_type()
            .is_symlink()
    );
    proc.wait_up().await;
    let before = metrics_text(proc.http).await;

    let (changed_at, answers) = under_load(
        &proc,
        &core,
        async {
            configmap_update(&dir, "..2026_12_08_01_05_00.2", &config(&uri, 2, 500, ""));
            Instant::now()
        },
        Duration::from_millis(1_500),
    )
    .await;
    let lag = assert_switched(&answers, changed_at, &proc.log());
    eprintln!("ConfigMap swap: last answer from the old configuration {lag:?} after the swap");
    let line = wait_for_log(&proc, "configuration reloaded").await;
    assert!(line.contains("file changed"), "{line}");
    let after = metrics_text(proc.http).await;
    assert_eq!(metric(&after, "session_authorizer_config_reload_total{result=\"ok\"}"), 1.0);
    let fetches = |t: &str| metric(t, "session_authorizer_jwks_fetch_total{result=\"ok\"}");
    assert_eq!(fetches(&after), fetches(&before), "the keys survived");

    // Another address for the core: keys and verified sessions start again from it.
    let elsewhere = uri.replace("127.0.0.1", "localhost");
    configmap_update(&dir, "..2026_12_08_01_10_00.3", &config(&elsewhere, 2, 500, ""));
    let line = wait_for_log(&proc, "the core changed").await;
    assert!(line.contains("configuration reloaded"), "{line}");
    let client = reqwest::Client::new();
    let r2 = role_token(&core, &["r2"], 3600, "h2", false);
    assert_eq!(ask(&client, &proc.url("/forward-auth"), &r2, 2).await, Ok(Seen::V2));
    assert!(
        fetches(&metrics_text(proc.http).await) > fetches(&after),
        "the keys were fetched from the new address"
    );
}
