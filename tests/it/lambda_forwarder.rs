//! `examples/lambda-forwarder/index.mjs`, the Lambda authorizer that hands API Gateway's event to
//! `POST /authorize` (docs/migrating-from-lambda.md): run under Node.js against the service, it
//! returns the Allow / Deny policy and throws "Unauthorized" exactly where the docs' SDK-based
//! Lambda does.

use crate::support;

use std::process::Command;

use serde_json::{Value, json};
use support::{Service, StubCore, repo_path, rest_event, role_token, settings};

const CONFIG: &str = r#"
[[routes]]
path = "/admin/**"
session = "required"
claims = [{ claim = "st-role", includes = "admin" }]
"#;

/// Invokes the forwarder's handler with `event` in a Node.js process: `{"ok": result}` or
/// `{"error": message}`.
fn invoke(url: &str, event: &Value) -> Value {
    let script = r#"
        const { handler } = await import(process.argv[1]);
        try {
            console.log(JSON.stringify({ ok: await handler(JSON.parse(process.argv[2])) }));
        } catch (e) {
            console.log(JSON.stringify({ error: e.message }));
        }
    "#;
    let out = Command::new("node")
        .args(["--input-type=module", "-e", script])
        .arg(repo_path("examples/lambda-forwarder/index.mjs"))
        .arg(event.to_string())
        .env("SESSION_AUTHORIZER_URL", url)
        .output()
        .expect("run node (is Node.js installed? scripts/test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

// Multi-threaded: the service keeps serving while a Node.js process blocks this thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_lambda_answers_like_the_sdk_authorizer() {
    let core = StubCore::start().await;
    let svc = Service::start(settings(&core.uri(), CONFIG)).await;
    let url = svc.url("/authorize");
    let cookie = |t: &str| vec![("cookie", format!("sAccessToken={t}"))];
    let user = role_token(&core, &["user"], 3600, "fwd-1", false);

    // Allow: principalId and context.setCookie as the docs' Lambda returns them.
    let r = invoke(&url, &rest_event("GET", "/items", &cookie(&user)));
    let policy = &r["ok"];
    assert_eq!(policy["principalId"], "user-1", "{r}");
    assert_eq!(policy["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(policy["context"]["setCookie"], "");

    // No session on an optional route: Allow with an empty principal.
    let r = invoke(&url, &rest_event("GET", "/items", &[]));
    assert_eq!(r["ok"]["principalId"], "", "{r}");
    assert_eq!(r["ok"]["policyDocument"]["Statement"][0]["Effect"], "Allow");

    // Expired token: the Lambda throws "Unauthorized" (API Gateway answers 401).
    let expired = role_token(&core, &["user"], -60, "fwd-2", false);
    let r = invoke(&url, &rest_event("GET", "/items", &cookie(&expired)));
    assert_eq!(r, json!({ "error": "Unauthorized" }));

    // Failing claim: Deny with context.body, the JSON string the Access Denied response returns.
    let r = invoke(&url, &rest_event("GET", "/admin/users", &cookie(&user)));
    assert_eq!(r["ok"]["policyDocument"]["Statement"][0]["Effect"], "Deny", "{r}");
    let body: Value = serde_json::from_str(r["ok"]["context"]["body"].as_str().expect("context.body")).expect("JSON body");
    assert_eq!(body["message"], "invalid claim");

    // Not an authorizer event: an error (API Gateway answers 500), never an Allow.
    let r = invoke(&url, &json!({ "hello": "world" }));
    assert!(r["error"].as_str().is_some_and(|e| e.contains("400")), "{r}");
}
