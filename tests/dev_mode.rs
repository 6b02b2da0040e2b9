//! `session-authorizer dev`: start the binary, run the curl lines it prints, and see Allow, 401
//! and 403 (a Deny policy) come back.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::KillOnDrop;

#[test]
fn dev_mode_prints_working_curl_lines() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
        .args(["dev", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dev");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    let mut curls = Vec::new();
    let started = Instant::now();
    while curls.len() < 4 && started.elapsed() < Duration::from_secs(30) {
        let Some(Ok(line)) = lines.next() else { break };
        if line.starts_with("curl ") {
            curls.push(line);
        } else {
            banner.push(line);
        }
    }
    assert!(banner.iter().any(|l| l.contains("WARNING: dev mode")), "loud warning: {banner:?}");
    assert_eq!(curls.len(), 4, "four curl lines: {banner:?}");
    let run = |cmd: &str| {
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
    };
    let allow = run(&curls[0]);
    assert!(
        allow.contains(r#""Effect":"Allow""#) && allow.contains(r#""principalId":"dev-user""#),
        "{allow}"
    );
    assert!(allow.trim_end().ends_with("200"), "{allow}");
    let expired = run(&curls[1]);
    assert!(
        expired.contains(r#"{"message":"Unauthorized"}"#) && expired.trim_end().ends_with("401"),
        "{expired}"
    );
    let refresh = run(&curls[3]);
    assert!(
        refresh.contains(r#""Effect":"Allow""#) && refresh.contains(r#""principalId":"","#) && refresh.trim_end().ends_with("200"),
        "{refresh}"
    );
    let denied = run(&curls[2]);
    assert!(
        denied.contains(r#""Effect":"Deny""#) && denied.contains("invalid claim"),
        "{denied}"
    );
}
