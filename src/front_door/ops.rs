//! Liveness, readiness and the Prometheus endpoint.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::front_door::json_response;
use crate::state::AppState;

pub async fn healthz() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.into())
}

/// Ready while the keys are usable and no shutdown has begun.
pub async fn readyz(axum::extract::State(state): State<AppState>) -> Response {
    let status = state.live().authorizer.verifier.jwks.status();
    let draining = state.draining.load(std::sync::atomic::Ordering::Relaxed);
    let ready = status.usable && !draining;
    let body = serde_json::json!({
        "ready": ready,
        "draining": draining,
        "jwks": { "keys": status.keys, "fresh": status.fresh, "age_seconds": status.age_ms.map(|ms| ms / 1000) },
    })
    .to_string();
    json_response(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    state.update_gauges().await;
    let mut r = (StatusCode::OK, state.metrics.render()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

/// The public keys of the identity assertion (`[assertion]`): the signing key and, for one
/// assertion lifetime after a rotation, the key it replaced. 404 with assertions off.
pub async fn assertion_keys(State(state): State<AppState>) -> Response {
    match &state.live().authorizer.assertions {
        Some(assertions) => {
            let mut r = json_response(StatusCode::OK, assertions.jwks().to_string());
            // Backends may cache the set for a minute: a new key signs at once after a rotation,
            // and JWKS clients fetch again on a `kid` they do not know (jose's
            // createRemoteJWKSet, PyJWT's PyJWKClient).
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
            r
        }
        None => json_response(
            StatusCode::NOT_FOUND,
            r#"{"message":"identity assertions are off ([assertion] enabled = false)"}"#.into(),
        ),
    }
}
