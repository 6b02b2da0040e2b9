//! `POST /authorize` bodies: decoding any bytes as a Lambda authorizer event, then rendering
//! every session-less answer for the contract the event asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_authorizer::config::{HttpApiResponse, LambdaSettings};
use session_authorizer::decision::{Decision, FrontDoor};
use session_authorizer::protocol::lambda::{decode, render};
use session_authorizer::session::credentials;
use session_authorizer::session::transport::TokenEffects;
use session_authorizer_fuzz::FUZZ_NOW_MS;

fuzz_target!(|data: &[u8]| {
    for http_api_response in [HttpApiResponse::Simple, HttpApiResponse::Iam] {
        let settings = LambdaSettings {
            http_api_response,
            appsync_ttl_secs: 300,
        };
        let Ok(decoded) = decode(data, &settings) else {
            continue;
        };
        let req = &decoded.request;
        // TOKEN and AppSync events carry one value, always handed on as a Bearer credential.
        if matches!(req.front_door, FrontDoor::LambdaToken | FrontDoor::AppSync) {
            let auth = req.authorization.as_deref().unwrap_or_default();
            assert!(auth.starts_with("Bearer "), "{auth:?}");
            assert!(req.cookie.is_none());
        }
        let _ = credentials::candidates(req.authorization.as_deref(), req.cookie.as_deref());
        let answers = [
            Decision::Anonymous,
            Decision::TryRefresh { reason: String::new() },
            Decision::Unauthorised {
                reason: String::new(),
                effects: TokenEffects::default(),
            },
            Decision::Error { reason: String::new() },
        ];
        for d in &answers {
            let r = render(d, &decoded.reply, &settings, FUZZ_NOW_MS);
            assert!(matches!(r.status, 200 | 401 | 500), "status {}", r.status);
            let body: serde_json::Value = serde_json::from_str(&r.body).expect("rendered body is JSON");
            assert!(body.is_object());
        }
    }
});
