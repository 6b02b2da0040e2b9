//! `POST /authorize` bodies: decoding any bytes as a Lambda authorizer event, then rendering
//! every session-less answer for the contract the event asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_authorizer::credentials;
use session_authorizer::decision::Decision;
use session_authorizer::request::FrontDoor;
use session_authorizer::effects::TokenEffects;
use session_authorizer::front_door::lambda::{Refusal, decode, render};
use session_authorizer::settings::{HttpApiResponse, LambdaSettings, PolicyResource};
use session_authorizer_fuzz::FUZZ_NOW_MS;

fuzz_target!(|data: &[u8]| {
    for (http_api_response, policy_resource) in [
        (HttpApiResponse::Simple, PolicyResource::Exact),
        (HttpApiResponse::Iam, PolicyResource::Stage),
    ] {
        let settings = LambdaSettings {
            http_api_response,
            appsync_ttl_secs: 300,
            policy_resource,
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
        let _ = credentials::carried_tokens(req.authorization.as_deref(), req.cookie.as_deref());
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
            // An answer is a JSON object, or a refusal the front door turns into 401 or 500.
            match render(d, &decoded.reply, &settings, FUZZ_NOW_MS) {
                Ok(body) => {
                    let body: serde_json::Value = serde_json::from_str(&body).expect("rendered body is JSON");
                    assert!(body.is_object());
                }
                Err(Refusal::Unauthorized | Refusal::Internal) => {}
                Err(Refusal::Event(e)) => panic!("rendering refused a decoded event: {e}"),
            }
        }
    }
});
