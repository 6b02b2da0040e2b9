//! Criterion benchmarks of the hot functions, in process: a cached decision end to end (event
//! parse, decision, render), its parts (event decoding, cookie extraction, cache key, token parse
//! and structure check, claim evaluation, response rendering, the canonical target and its
//! route), and one RS256 verification (the cost a cache hit avoids).

use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::json;
use session_authorizer::assertion::{Assertions, Subject};
use session_authorizer::canonical_target::{MAX_READ_PATH_BYTES, canonicalise};
use session_authorizer::clock::SystemClock;
use session_authorizer::config::Config;
use session_authorizer::credentials;
use session_authorizer::credentials::token::ParsedToken;
use session_authorizer::dev::{Issuer, MintOptions};
use session_authorizer::front_door::lambda;
use session_authorizer::policy::claims::{ClaimRule, validate};
use session_authorizer::session::SessionInfo;
use session_authorizer::settings::{AssertionAlgorithm, AssertionSettings, Settings};
use session_authorizer::state::AppState;
use session_authorizer::verification::cache::token_key;
use session_authorizer::verification::facts::SessionToken;

fn event(token: &str) -> Vec<u8> {
    json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/items",
        "resource": "/items", "path": "/items", "httpMethod": "GET",
        "headers": {
            "Accept": "application/json, text/plain, */*", "Accept-Language": "en-GB,en;q=0.9", "CloudFront-Viewer-Country": "GB",
            "Host": "abcdef123.execute-api.us-east-1.amazonaws.com", "Origin": "https://app.example.com",
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
            "Via": "2.0 a1b2c3d4e5f6.cloudfront.net (CloudFront)", "X-Amzn-Trace-Id": "Root=1-5e66d96f-7491f09xmpl79d18acf3d050",
            "X-Forwarded-For": "203.0.113.10, 198.51.100.7", "X-Forwarded-Proto": "https",
            "cookie": format!("theme=dark; sAccessToken={token}; sFrontToken=x")
        },
        "multiValueHeaders": {}, "queryStringParameters": {"page": "1"}, "pathParameters": {}, "stageVariables": {},
        "requestContext": {"resourceId": "qxj2eb", "resourcePath": "/items", "httpMethod": "GET", "path": "/prod/items",
            "accountId": "123456789012", "protocol": "HTTP/1.1", "stage": "prod", "requestId": "a9b4fe43-6f6a-4f7e-9c8e-6e7fexample",
            "identity": {"sourceIp": "203.0.113.10"}, "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com", "apiId": "abcdef123"}
    })
    .to_string()
    .into_bytes()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let issuer = Issuer::new().expect("issuer");
    let core = rt.block_on(issuer.serve(SocketAddr::from(([127, 0, 0, 1], 0)))).expect("core");
    let mut settings = Settings::default();
    settings.supertokens.connection_uri = format!("http://{core}").parse().expect("core URI");
    let state = AppState::new(Config::compile(settings.clone()).expect("config"), Arc::new(SystemClock)).expect("state");
    let token = issuer
        .mint(&MintOptions {
            ttl_secs: 86_400,
            ..Default::default()
        })
        .expect("mint");
    let body = event(&token);
    let lambda_settings = settings.lambda.clone();

    // Warm: JWKS loaded, token verified and cached.
    rt.block_on(async {
        let d = lambda::decode(&body, &lambda_settings).expect("decode");
        assert_eq!(
            state.live().authorizer.decide(&d.request).await.outcome(),
            session_authorizer::labels::Outcome::Allow
        );
    });

    c.bench_function("cached decision, end to end (parse event, decide, render)", |b| {
        b.to_async(&rt).iter(|| lambda::authorize(&state, &body))
    });
    c.bench_function("parse the 1.6 KB REST event", |b| {
        b.iter(|| lambda::decode(&body, &lambda_settings).map(|d| d.request.path.len()))
    });
    let decoded = lambda::decode(&body, &lambda_settings).expect("decode");
    c.bench_function("decide on a cached session", |b| {
        let live = state.live();
        b.to_async(&rt).iter(|| live.authorizer.decide(&decoded.request))
    });
    c.bench_function("parse and structure-check a token", |b| {
        b.iter(|| ParsedToken::parse(&token).map(|t| t.version))
    });

    let cookie = format!("theme=dark; sAccessToken={token}; sFrontToken=x");
    c.bench_function("cookie extraction (sAccessToken from a three-cookie header)", |b| {
        b.iter(|| credentials::carried_tokens(None, Some(&cookie)).map(|c| c.cookie.map(|v| v.len())))
    });
    c.bench_function("cache key (SHA-256 of the token)", |b| b.iter(|| token_key(&token)));
    let mut payload = (*ParsedToken::parse(&token).expect("parse").payload).clone();
    payload.insert("st-ev".into(), json!({"v": true, "t": 1_795_478_400_000_u64}));
    let email = ClaimRule::email_verified();
    c.bench_function("claim evaluation (email verified, from the payload)", |b| {
        b.iter(|| validate(&email, &payload, 1_795_478_400_000).map(|e| e.is_none()))
    });
    let decision = rt.block_on(state.live().authorizer.decide(&decoded.request));
    c.bench_function("response rendering (Allow policy for a REST event)", |b| {
        b.iter(|| lambda::render(&decision, &decoded.reply, &lambda_settings, 1_795_478_400_000).map(|s| s.len()))
    });

    // The canonical target: an ordinary path (the common case, borrowed), a path with an escape,
    // and a confusable one with every reading a backend may make; each then matched to a route.
    let routed = Config::from_toml_str(
        "[[routes]]\npath = \"/admin/**\"\nsession = \"required\"\n[[routes]]\nmethods = [\"DELETE\"]\npath = \"/items/*\"\n",
    )
    .expect("settings");
    let policy = AppState::new(routed, Arc::new(SystemClock)).expect("state");
    let policy = policy.live();
    let policy = &policy.authorizer.policy;
    // The costliest path the readings are worked out for: every feature, repeated up to the limit.
    let worst = format!("/{}", "%252e%2e;a\\%252F/..//%3f/".repeat(MAX_READ_PATH_BYTES / 28 - 1));
    for (name, target) in [
        ("worst 4 KiB path", worst.as_str()),
        ("ordinary path", "/api/v1/items/42?page=2"),
        ("path with an escape", "/api/v1/items/caf%C3%A9?page=2"),
        ("confusable path", "/x/%2e%2e/%61dmin%2Fusers;a//b?page=2"),
    ] {
        c.bench_function(&format!("canonical target ({name})"), |b| {
            b.iter(|| canonicalise(target).map(|t| t.canonical().len()))
        });
        c.bench_function(&format!("canonical target and route ({name})"), |b| {
            b.iter(|| canonicalise(target).map(|t| policy.route_for(&["GET"], &t).is_ok()))
        });
    }

    let jwk = issuer.public_jwk();
    let key = DecodingKey::from_rsa_components(jwk["n"].as_str().expect("n"), jwk["e"].as_str().expect("e")).expect("key");
    let parsed = ParsedToken::parse(&token).expect("parse");
    c.bench_function("RS256 verify (jsonwebtoken, aws_lc_rs)", |b| {
        b.iter(|| jsonwebtoken::crypto::verify(parsed.signature(), parsed.signing_input(), &key, Algorithm::RS256).expect("verify"))
    });

    // The identity assertion: one signature (a token without a reusable key: signed every
    // time), and the reuse of one already signed for the same token, route and method.
    let session = SessionInfo::from_token(&Arc::new(SessionToken::from_parsed(&parsed)));
    for algorithm in [AssertionAlgorithm::Es256, AssertionAlgorithm::EdDsa] {
        let settings = AssertionSettings {
            enabled: true,
            audience: "bench".into(),
            algorithm,
            ..AssertionSettings::default()
        };
        let assertions = Assertions::build(&settings, None, Arc::new(SystemClock), 1000)
            .expect("signer")
            .expect("enabled");
        let key = [7u8; 32];
        let subject = |token| Subject {
            session: &session,
            token,
            route: "/**",
            route_id: 1,
            method: "GET",
        };
        c.bench_function(&format!("identity assertion, one signature ({})", algorithm.as_str()), |b| {
            b.iter(|| assertions.for_request(&subject(None)).map(|j| j.len()))
        });
        c.bench_function(&format!("identity assertion, reused ({})", algorithm.as_str()), |b| {
            b.iter(|| assertions.for_request(&subject(Some(&key))).map(|j| j.len()))
        });
    }
}

criterion_group!(hot, benches);
criterion_main!(hot);
