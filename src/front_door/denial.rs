//! A denial as the proxies answer it: the status and JSON body of the SDK's error handler,
//! and CORS headers so that the website's SDK can read a 401 and refresh.

use crate::decision::Decision;
use crate::front_door::sdk_json::{self, invalid_claim_body};

/// Headers a denied browser request must be able to read to refresh its session.
const CORS_EXPOSE: &str = "front-token, st-access-token, st-refresh-token, anti-csrf";

/// Status and body of a denial, as the SDK's error handler writes them.
pub fn denial(decision: &Decision) -> Option<(u16, String)> {
    match decision {
        Decision::Allow { .. } | Decision::Anonymous => None,
        Decision::TryRefresh { .. } => Some((401, sdk_json::TRY_REFRESH_BODY.into())),
        Decision::Unauthorised { .. } => Some((401, sdk_json::UNAUTHORISED_BODY.into())),
        Decision::InvalidClaims { errors } => Some((403, invalid_claim_body(errors))),
        Decision::Error { .. } => Some((500, sdk_json::INTERNAL_ERROR_BODY.into())),
        Decision::BadRequest { message, .. } => Some((400, sdk_json::message_body(message))),
    }
}

/// CORS headers for a denial answered to the configured website (`website_origin`), so its SDK
/// can read the 401.
pub fn cors_on_denial(origin: Option<&str>, website_origin: &str) -> Vec<(&'static str, String)> {
    match origin {
        Some(o) if o == website_origin => vec![
            ("access-control-allow-origin", o.to_owned()),
            ("access-control-allow-credentials", "true".to_owned()),
            ("access-control-expose-headers", CORS_EXPOSE.to_owned()),
        ],
        _ => Vec::new(),
    }
}
