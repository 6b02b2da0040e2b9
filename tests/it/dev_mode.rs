//! `session-authorizer dev`: start the binary, run the curl lines it prints, and see each return
//! what the line above it says (Allow, 401, a Deny that API Gateway turns into 403, the SDK's
//! refresh call passing); with `--config`, the file's routes decide.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::KillOnDrop;

/// Starts `dev` with `args`; returns the (description, curl line) pairs it printed, and the other
/// lines.
fn start(args: &[&str]) -> (KillOnDrop, Vec<(String, String)>, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
        .args(["dev", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dev");
    let stdout = child.stdout.take().expect("stdout");
    let guard = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let mut pairs = Vec::new();
    let mut last_comment = String::new();
    let started = Instant::now();
    // Read to the last line printed: a closed pipe would stop the process at its next line.
    while started.elapsed() < Duration::from_secs(30) {
        let Some(Ok(line)) = lines.next() else { break };
        if line.starts_with("# ready when") {
            break;
        }
        if line.starts_with("curl ") {
            pairs.push((last_comment.clone(), line));
        } else {
            if let Some(c) = line.strip_prefix("# ") {
                last_comment = c.to_owned();
            }
            banner.push(line);
        }
    }
    (guard, pairs, banner)
}

fn run(cmd: &str) -> String {
    // The server starts serving right after printing; give it a moment on a slow machine.
    for _ in 0..50 {
        let out = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .expect("run curl (is curl installed?)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && !text.trim().is_empty() {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("curl never got an answer: {cmd}");
}

/// Whether a curl answer is what its description says.
fn as_described(description: &str, answer: &str) -> bool {
    let status = answer.trim_end().rsplit('\n').next().unwrap_or_default();
    if description.contains(": 401 ") {
        return status == "401" && answer.contains(r#"{"message":"Unauthorized"}"#);
    }
    if description.contains(": 200, Deny (API Gateway answers 403)") {
        return status == "200" && answer.contains(r#""Effect":"Deny""#);
    }
    if description.contains(": 200, Allow with principalId \"\"") {
        return status == "200" && answer.contains(r#""Effect":"Allow""#) && answer.contains(r#""principalId":"""#);
    }
    if let Some(rest) = description.split(": 200, Allow with principalId ").nth(1) {
        let user = rest.split(' ').next().unwrap_or_default();
        return status == "200" && answer.contains(r#""Effect":"Allow""#) && answer.contains(&format!(r#""principalId":"{user}""#));
    }
    false
}

#[test]
fn dev_mode_prints_curl_lines_that_return_what_they_say() {
    let (_guard, pairs, banner) = start(&[]);
    assert!(banner.iter().any(|l| l.contains("WARNING: dev mode")), "loud warning: {banner:?}");
    assert_eq!(pairs.len(), 4, "four curl lines: {banner:?}");
    for (description, curl) in &pairs {
        let answer = run(curl);
        assert!(as_described(description, &answer), "{description}\n{answer}");
    }
    // The four outcomes a newcomer should see, in this order.
    let said: Vec<&str> = pairs.iter().map(|(d, _)| d.as_str()).collect();
    assert!(said[0].contains("Allow with principalId dev-user"), "{said:?}");
    assert!(said[1].contains(": 401 "), "{said:?}");
    assert!(
        said[2].contains("Deny (API Gateway answers 403)") && said[2].contains("invalid claim"),
        "{said:?}"
    );
    assert!(said[3].contains("Allow with principalId \"\""), "{said:?}");
}

#[test]
fn dev_with_a_config_file_uses_its_routes() {
    let dir = std::env::temp_dir().join(format!("session-authorizer-dev-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("routes.toml");
    // Every path needs the admin role here, but for the SDK's own routes; the core settings of
    // the file are replaced by the embedded issuer.
    std::fs::write(
        &file,
        "[supertokens]\nconnection_uri = \"http://core.invalid:3567\"\n\n[[routes]]\npath = \"/**\"\nsession = \"required\"\nclaims = [{ claim = \"st-role\", includes = \"admin\" }]\n",
    )
    .expect("write");
    let (_guard, pairs, banner) = start(&["--config", file.to_str().expect("path")]);
    assert!(
        banner.iter().any(|l| l.contains("settings from") && l.contains("routes.toml")),
        "says where the settings come from: {banner:?}"
    );
    assert_eq!(pairs.len(), 4, "{banner:?}");
    for (description, curl) in &pairs {
        let answer = run(curl);
        assert!(as_described(description, &answer), "{description}\n{answer}");
    }
    assert!(
        pairs[0].0.contains("Deny (API Gateway answers 403)"),
        "the file's route decides: {:?}",
        pairs[0]
    );
    // A file the binary refuses stops `dev` as it stops `serve`.
    std::fs::write(&file, "[supertokens]\nanti_csfr = \"NONE\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
        .args(["dev", "--config", file.to_str().expect("path")])
        .output()
        .expect("dev");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `anti_csrf`"));
    let _ = std::fs::remove_dir_all(&dir);
}
