//! Writes the seed corpora and `seeds/jwks.json`: tokens minted by a throwaway issuer (its
//! private keys are never written) at one minute before the fuzzing clock, and real-looking
//! events and requests carrying them. Run from the repository root:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example make-seeds
//! ```
//!
//! Re-running replaces every seed together with the key set, so they always match.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use session_authorizer::clock::ManualClock;
use session_authorizer::dev::{Issuer, KeyChoice, MintOptions};
use session_authorizer_fuzz::FUZZ_NOW_MS;

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) {
    fs::create_dir_all(dir).expect("mkdir");
    fs::write(dir.join(name), content).expect("write");
}

fn claims(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");
    for target in ["lambda_event", "credentials", "token", "decision"] {
        let _ = fs::remove_dir_all(corpus.join(target));
    }
    let issuer = Issuer::with_clock(Arc::new(ManualClock::new(FUZZ_NOW_MS - 60_000))).expect("issuer");
    let jwks = serde_json::to_string_pretty(&issuer.jwks()).expect("jwks");
    write(&root.join("seeds"), "jwks.json", format!("{jwks}\n"));

    let t0 = (FUZZ_NOW_MS / 1000 - 60) as i64;
    let mint = |o: MintOptions| issuer.mint(&o).expect("mint");
    let user = mint(MintOptions {
        user_id: "fuzz-user".into(),
        session_handle: "fuzz-s1".into(),
        claims: claims(&[
            ("st-role", json!({"v": ["user"], "t": t0 * 1000})),
            ("st-ev", json!({"v": true, "t": t0 * 1000})),
        ]),
        ..Default::default()
    });
    let admin = mint(MintOptions {
        user_id: "fuzz-admin".into(),
        session_handle: "fuzz-s2".into(),
        anti_csrf_token: Some("fuzz-csrf".into()),
        claims: claims(&[
            ("st-role", json!({"v": ["admin"], "t": t0 * 1000})),
            ("st-perm", json!({"v": ["read"], "t": t0 * 1000})),
            ("plan", json!({"v": "pro", "t": t0 * 1000})),
        ]),
        ..Default::default()
    });
    let static_key = mint(MintOptions {
        user_id: "fuzz-user".into(),
        key: KeyChoice::Static,
        ..Default::default()
    });
    let v4 = mint(MintOptions {
        user_id: "fuzz-user".into(),
        version: 4,
        tenant_id: None,
        ..Default::default()
    });
    let v3 = mint(MintOptions {
        user_id: "fuzz-user".into(),
        version: 3,
        ..Default::default()
    });
    let expired = mint(MintOptions {
        user_id: "fuzz-user".into(),
        ttl_secs: -1,
        ..Default::default()
    });
    let refreshed = mint(MintOptions {
        user_id: "fuzz-user".into(),
        parent_refresh_token_hash1: Some("parent".into()),
        ..Default::default()
    });
    let legacy = format!(
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsInZlcnNpb24iOiIyIn0=.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(
            json!({"userId": "fuzz-user", "expiryTime": FUZZ_NOW_MS + 3_600_000, "timeCreated": FUZZ_NOW_MS - 60_000,
                   "sessionHandle": "h", "refreshTokenHash1": "r", "userData": {"st-role": {"v": ["user"], "t": 0}}})
            .to_string()
        )
    );
    let alg_none = {
        let (_, rest) = user.split_once('.').expect("token");
        let payload = rest.split('.').next().expect("payload");
        let header = json!({"alg": "none", "typ": "JWT", "kid": issuer.dynamic_kid(), "version": "5"});
        format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header.to_string()))
    };

    // token: the raw text of tokens.
    let dir = corpus.join("token");
    for (name, t) in [
        ("v5-dynamic", &user),
        ("v5-admin-anti-csrf", &admin),
        ("v5-static", &static_key),
        ("v4-no-tid", &v4),
        ("v3", &v3),
        ("expired", &expired),
        ("after-refresh", &refreshed),
        ("v2-legacy", &legacy),
        ("alg-none", &alg_none),
    ] {
        write(&dir, name, t);
    }
    write(&dir, "garbage", "not.a.token");

    // credentials: Authorization value, newline, Cookie header(s) split by \x01.
    let dir = corpus.join("credentials");
    write(&dir, "bearer", format!("Bearer {user}\n"));
    write(&dir, "cookie", format!("\ntheme=dark; sAccessToken={admin}; sFrontToken=x"));
    write(&dir, "both", format!("Bearer  {user} \nsAccessToken={static_key}"));
    write(
        &dir,
        "duplicate-cookies",
        format!("Basic dXNlcjpwdw==\nsAccessToken={user}; sAccessToken={admin}"),
    );
    write(&dir, "split-cookie-headers", format!("\na=1\u{1}sAccessToken=\"{v3}\"\u{1}b=2"));
    write(&dir, "legacy-and-json", format!("\nsIdRefreshToken=x; sAccessToken=j:\"{v4}\""));
    write(&dir, "percent-encoded", format!("\nsAccessToken={}", user.replace('.', "%2E")));

    // lambda_event: real-looking API Gateway and AppSync events.
    let dir = corpus.join("lambda_event");
    let arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod";
    let events = [
        (
            "rest-request-cookie",
            json!({"type": "REQUEST", "methodArn": format!("{arn}/POST/items"), "resource": "/items", "path": "/items", "httpMethod": "POST",
                   "headers": {"Cookie": format!("sAccessToken={admin}"), "anti-csrf": "fuzz-csrf", "rid": "session", "Via": null},
                   "multiValueHeaders": {"Cookie": [format!("sAccessToken={admin}")]}, "queryStringParameters": null,
                   "requestContext": {"accountId": "123456789012", "apiId": "abcdef123", "stage": "prod", "httpMethod": "POST", "path": "/prod/items"}}),
        ),
        (
            "rest-request-bearer",
            json!({"type": "REQUEST", "methodArn": format!("{arn}/GET/admin/users"), "path": "/admin/users", "httpMethod": "GET",
                   "headers": {"Authorization": format!("Bearer {user}"), "Accept": "*/*"}, "multiValueHeaders": {}}),
        ),
        (
            "rest-request-multivalue-only",
            json!({"type": "REQUEST", "methodArn": format!("{arn}/DELETE/private/x"),
                   "multiValueHeaders": {"cookie": ["a=1", format!("sAccessToken={expired}")], "authorization": ["Basic x"]}}),
        ),
        (
            "token",
            json!({"type": "TOKEN", "authorizationToken": format!("Bearer {user}"), "methodArn": format!("{arn}/GET/items")}),
        ),
        (
            "token-bare",
            json!({"type": "TOKEN", "authorizationToken": legacy, "methodArn": format!("{arn}/PUT/verified/x")}),
        ),
        (
            "http-api-v2",
            json!({"version": "2.0", "type": "REQUEST", "routeArn": format!("{arn}/GET/request"), "identitySource": ["x"], "routeKey": "$default",
                   "rawPath": "/private/x", "rawQueryString": "a=1", "cookies": ["theme=dark", format!("sAccessToken={static_key}")],
                   "headers": {"user-agent": "t", "origin": "http://localhost:3000"},
                   "requestContext": {"accountId": "123456789012", "apiId": "abcdef123", "http": {"method": "GET", "path": "/private/x"}}}),
        ),
        (
            "http-api-v1",
            json!({"version": "1.0", "type": "REQUEST", "methodArn": format!("{arn}/GET/items"), "httpMethod": "GET", "path": "/items",
                   "headers": {"authorization": format!("Bearer {v4}")}}),
        ),
        (
            "appsync",
            json!({"authorizationToken": admin, "requestContext": {"apiId": "graphql-api", "accountId": "123456789012", "requestId": "r",
                   "queryString": "query { me }", "operationName": "Me", "variables": {}}}),
        ),
    ];
    for (name, event) in events {
        write(&dir, &format!("{name}.json"), serde_json::to_string_pretty(&event).expect("json"));
    }

    // decision: request heads, one profile per x-fuzz-profile.
    let dir = corpus.join("decision");
    let requests = [
        ("get-cookie", format!("GET /items\ncookie: sAccessToken={user}\n")),
        ("post-bearer", format!("POST /items\nauthorization: Bearer {admin}\n")),
        (
            "admin-ok",
            format!("GET /admin/users?page=2\ncookie: theme=dark\ncookie: sAccessToken={admin}\n"),
        ),
        (
            "admin-denied",
            format!("POST /admin/users\nauthorization: Bearer {user}\nrid: session\n"),
        ),
        ("verified-claims", format!("PUT /verified/x\nauthorization: Bearer {admin}\n")),
        (
            "via-token",
            format!("DELETE /items/1\ncookie: sAccessToken={admin}\nanti-csrf: fuzz-csrf\nx-fuzz-profile: via-token\n"),
        ),
        (
            "via-header",
            format!(
                "PATCH /private/x\ncookie: sAccessToken={user}\nrid: anti-csrf\nx-fuzz-profile: via-header\norigin: http://localhost:3000\n"
            ),
        ),
        (
            "static-keys",
            format!("GET /private/x\nauthorization: Bearer {static_key}\nx-fuzz-profile: static-keys\n"),
        ),
        (
            "forward-auth",
            format!("GET /forward-auth\nx-forwarded-method: POST\nx-forwarded-uri: /admin/x\ncookie: sAccessToken={v3}\n"),
        ),
        (
            "ingress-nginx",
            format!("GET /forward-auth\nx-original-url: https://app.example.com/private/x?y=1\nauthorization: Bearer {expired}\n"),
        ),
        (
            "preflight",
            "OPTIONS /private/x\naccess-control-request-method: POST\norigin: http://localhost:3000\n".to_owned(),
        ),
        (
            "legacy-and-dupes",
            format!("GET /items\ncookie: sAccessToken={user}; sAccessToken={admin}; sIdRefreshToken=x\n"),
        ),
        ("alg-none", format!("GET /private/x\nauthorization: Bearer {alg_none}\n")),
        ("v2-legacy", format!("GET /items\nauthorization: Bearer {legacy}\n")),
        ("no-session", "GET /private/x\n".to_owned()),
    ];
    for (name, text) in requests {
        write(&dir, name, text);
    }
    println!("seeds written under {}", root.display());
}
