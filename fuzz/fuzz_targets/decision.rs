//! The whole decision on an arbitrary request, offline: the text is a request head (see
//! `RawRequest`), decided as the Lambda/gRPC doors pass it (raw strings) and as the HTTP doors do
//! (a `HeaderMap`, forward-auth's original method and URI), then rendered by every front door.
//! An allow must name a seed user: anything else would be a forged session.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use session_authorizer::decision::Decision;
use session_authorizer::request::{AuthRequest, FrontDoor};
use session_authorizer::front_door::lambda::{Refusal, Reply, render};
use session_authorizer::front_door::http_proxy::{self, HttpFlavour};
use session_authorizer::front_door::{envoy_grpc, forwarded};
use session_authorizer::settings::LambdaSettings;
use session_authorizer_fuzz::{FUZZ_NOW_MS, RawRequest, SEED_USERS, fixture};

fn check(decision: &Decision, live: &session_authorizer::state::Live, origin: Option<&str>) {
    if let Decision::Allow { session, .. } = decision {
        assert!(
            SEED_USERS.contains(&session.user_id()),
            "allowed a session for {:?}, which no seed token names",
            session.user_id()
        );
    }
    for flavour in [HttpFlavour::Envoy, HttpFlavour::ForwardAuth] {
        let r = http_proxy::render_http(decision, &live.settings, origin, flavour);
        assert!(matches!(r.status().as_u16(), 200 | 400 | 401 | 403 | 500));
    }
    let _ = envoy_grpc::check_response(decision, &live.settings, origin);
    let lambda = LambdaSettings::default();
    for reply in [
        Reply::Policy {
            resource: "arn:aws:execute-api:r:a:api/s/GET/x".into(),
        },
        Reply::Simple,
        Reply::AppSync,
    ] {
        match render(decision, &reply, &lambda, FUZZ_NOW_MS) {
            Ok(body) => assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| v.is_object())),
            Err(Refusal::Unauthorized | Refusal::Internal) => {}
            Err(Refusal::Event(e)) => panic!("rendering refused a decision: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let raw = RawRequest::parse(&text);
    let f = fixture();
    let live = f.state(raw.header("x-fuzz-profile")).live();
    let origin = raw.header("origin");
    // As the Lambda and gRPC doors hand it over: any strings.
    let direct = AuthRequest {
        front_door: FrontDoor::EnvoyGrpc,
        method: Cow::Borrowed(raw.method),
        path: Cow::Borrowed(raw.path),
        authorization: raw.header("authorization").map(Cow::Borrowed),
        cookie: AuthRequest::join_cookies(raw.all("cookie").into_iter().map(Cow::Borrowed).collect()),
        anti_csrf: raw.header("anti-csrf").map(Cow::Borrowed),
        has_rid: raw.header("rid").is_some(),
        method_overrides: raw.all("x-http-method-override").into_iter().map(Cow::Borrowed).collect(),
        preflight: raw.header("access-control-request-method").is_some(),
        request_id: None,
        trace: None,
    };
    let decision = f.runtime.block_on(live.authorizer.decide(&direct));
    check(&decision, &live, origin);
    // As forward-auth receives it: only valid HTTP header names and values survive.
    let mut headers = http::HeaderMap::new();
    for (k, v) in &raw.headers {
        if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(v)) {
            headers.append(k, v);
        }
    }
    let decision = match forwarded::original(&headers, &live.settings.forward_auth) {
        Ok((method, uri)) => {
            let request = http_proxy::request_from_headers(FrontDoor::ForwardAuth, method.into(), uri, &headers);
            f.runtime.block_on(live.authorizer.decide(&request))
        }
        Err(e) => live.authorizer.refuse(FrontDoor::ForwardAuth, "GET", e.to_string(), e.to_string()),
    };
    check(&decision, &live, origin);
});
