//! Protocol adapters: each turns its wire format into an `AuthRequest` and renders the
//! `Decision`; `router` puts the HTTP ones behind one axum `Router`.

pub mod envoy_grpc;
pub mod envoy_http;
pub mod forward_auth;
pub mod lambda;
pub mod ops;
pub mod proxy;

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRequest, State};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::{BoxError, Router};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let server = &state.settings.server;
    // One in-flight budget for every route (and the gRPC listener): `Router::layer` builds the
    // layer once per route, so a per-layer limit would multiply it by the number of routes.
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overload_response))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(state.in_flight.clone()))
        .timeout(Duration::from_millis(server.request_timeout_ms.max(1)));
    Router::new()
        .route("/authorize", post(authorize))
        .route("/forward-auth", any(forward_auth::handle))
        .route(envoy_http::PREFIX, any(envoy_http::handle))
        .route("/ext-authz/", any(envoy_http::handle))
        .route("/ext-authz/{*path}", any(envoy_http::handle))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(DefaultBodyLimit::max(server.max_body_bytes))
        .layer(limits)
        .with_state(state)
}

async fn overload_response(err: BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        json_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"message":"request timed out"}"#.into())
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        json_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"message":"overloaded, retry later"}"#.into())
    } else {
        json_response(StatusCode::INTERNAL_SERVER_ERROR, lambda::INTERNAL_BODY.into())
    }
}

pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `POST /authorize`: the Lambda authorizer contract, with each refusal as its status code.
async fn authorize(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let limit = state.settings.server.max_body_bytes;
    let too_large = || {
        let message = format!("request body is larger than {limit} bytes (server.max_body_bytes)");
        json_response(StatusCode::PAYLOAD_TOO_LARGE, serde_json::json!({ "message": message }).to_string())
    };
    // A declared length over the limit is refused before waiting for a body that may never come.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let body = match Bytes::from_request(request, &()).await {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(),
        Err(rejection) => {
            let message = rejection.body_text();
            return json_response(rejection.status(), serde_json::json!({ "message": message }).to_string());
        }
    };
    match lambda::authorize(&state, &body).await {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(lambda::Refusal::Event(e)) => {
            let body = serde_json::json!({ "message": e.to_string() }).to_string();
            json_response(StatusCode::BAD_REQUEST, body)
        }
        Err(lambda::Refusal::Unauthorized) => json_response(StatusCode::UNAUTHORIZED, lambda::UNAUTHORIZED_BODY.into()),
        Err(lambda::Refusal::Internal) => json_response(StatusCode::INTERNAL_SERVER_ERROR, lambda::INTERNAL_BODY.into()),
    }
}
