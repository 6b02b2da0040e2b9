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
use axum::extract::{DefaultBodyLimit, State};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::{BoxError, Router};
use bytes::{Bytes, BytesMut};
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

#[derive(Debug, thiserror::Error)]
enum BodyRead {
    #[error("the body is over the limit")]
    TooLarge,
    #[error(transparent)]
    Failed(axum::Error),
}

/// Reads a request body of at most `limit` bytes. A body that arrives in one piece, as an event
/// sent with its request head does, is kept as it is; only one in several pieces is copied
/// together (axum's collector allocates a list of pieces for every body).
async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, BodyRead> {
    use futures_util::StreamExt;
    let mut pieces = body.into_data_stream();
    let mut whole = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(piece) = pieces.next().await {
        let piece = piece.map_err(BodyRead::Failed)?;
        let held = joined.as_ref().map_or(whole.len(), BytesMut::len);
        if held.saturating_add(piece.len()) > limit {
            return Err(BodyRead::TooLarge);
        }
        match joined.as_mut() {
            Some(j) => j.extend_from_slice(&piece),
            None if whole.is_empty() => whole = piece,
            None => {
                let mut j = BytesMut::with_capacity(held + piece.len());
                j.extend_from_slice(&whole);
                j.extend_from_slice(&piece);
                joined = Some(j);
            }
        }
    }
    Ok(joined.map_or(whole, BytesMut::freeze))
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
    let body = match read_body(request.into_body(), limit).await {
        Ok(b) => b,
        Err(BodyRead::TooLarge) => return too_large(),
        Err(BodyRead::Failed(e)) => {
            let message = format!("Failed to buffer the request body: {e}");
            return json_response(StatusCode::BAD_REQUEST, serde_json::json!({ "message": message }).to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(pieces: Vec<Result<&'static str, std::io::Error>>) -> axum::body::Body {
        axum::body::Body::from_stream(futures_util::stream::iter(
            pieces.into_iter().map(|p| p.map(|s| Bytes::from_static(s.as_bytes()))),
        ))
    }

    #[tokio::test]
    async fn bodies_are_read_whole_and_bounded() {
        let one = read_body(body(vec![Ok("{\"a\":1}")]), 7).await.expect("one piece");
        assert_eq!(&one[..], b"{\"a\":1}");
        let several = read_body(body(vec![Ok("{\"a\""), Ok(""), Ok(":1"), Ok("}")]), 7)
            .await
            .expect("joined");
        assert_eq!(&several[..], b"{\"a\":1}");
        let empty = read_body(body(vec![]), 7).await.expect("empty");
        assert!(empty.is_empty());
        assert!(matches!(
            read_body(body(vec![Ok("{\"a\""), Ok(":12}")]), 7).await,
            Err(BodyRead::TooLarge)
        ));
        assert!(matches!(read_body(body(vec![Ok("12345678")]), 7).await, Err(BodyRead::TooLarge)));
        let broken = read_body(body(vec![Ok("{"), Err(std::io::Error::other("reset"))]), 7).await;
        assert!(matches!(broken, Err(BodyRead::Failed(_))));
    }
}
