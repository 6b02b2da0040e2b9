//! The front doors: each reads its wire format into an `AuthRequest` and writes the `Decision`
//! back in it; `router` puts the HTTP ones behind one axum `Router`.

pub mod denial;
pub mod envoy_grpc;
pub mod envoy_http;
pub mod forward_auth;
pub mod forwarded;
pub mod http_proxy;
pub mod identity;
pub mod lambda;
pub mod ops;
pub mod sdk_json;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::{BoxError, Router};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let server = &state.server;
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
        .route("/.well-known/jwks.json", get(ops::assertion_keys))
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
    TooLarge(axum::body::BodyDataStream),
    #[error("the bodies being read together are over server.max_buffered_body_bytes")]
    Overloaded,
    #[error(transparent)]
    Failed(axum::Error),
}

/// A body read whole, and its share of `server.max_buffered_body_bytes` (held until the
/// request is answered).
struct ReadBody {
    bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Reads a request body of at most `limit` bytes, each piece counted against `budget`. A body
/// that arrives in one piece, as an event sent with its request head does, is kept as it is;
/// only one in several pieces is copied together (axum's collector allocates a list of pieces
/// for every body). Over the limit, the rest of the body is handed back to be drained.
async fn read_body(body: axum::body::Body, limit: usize, budget: &Arc<Semaphore>) -> Result<ReadBody, BodyRead> {
    use futures_util::StreamExt;
    let mut pieces = body.into_data_stream();
    let mut whole = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(piece) = pieces.next().await {
        let piece = piece.map_err(BodyRead::Failed)?;
        let len = joined.as_ref().map_or(whole.len(), BytesMut::len);
        if len.saturating_add(piece.len()) > limit {
            return Err(BodyRead::TooLarge(pieces));
        }
        let share = u32::try_from(piece.len()).map_err(|_| BodyRead::Overloaded)?;
        let permit = budget.clone().try_acquire_many_owned(share).map_err(|_| BodyRead::Overloaded)?;
        match held.as_mut() {
            Some(h) => h.merge(permit),
            None => held = Some(permit),
        }
        match joined.as_mut() {
            Some(j) => j.extend_from_slice(&piece),
            None if whole.is_empty() => whole = piece,
            None => {
                let mut j = BytesMut::with_capacity(len + piece.len());
                j.extend_from_slice(&whole);
                j.extend_from_slice(&piece);
                joined = Some(j);
            }
        }
    }
    Ok(ReadBody {
        bytes: joined.map_or(whole, BytesMut::freeze),
        _budget: held,
    })
}

/// How much of a refused body is still read, and for how long, so that a client that sends its
/// whole body before reading the answer (Python's `http.client`, curl without
/// `Expect: 100-continue`) gets the 413 rather than a reset connection.
const DRAIN_BYTES: u64 = 32 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and drops what is left of a refused body in the background, up to `DRAIN_BYTES` and
/// `DRAIN_TIME`, while the 413 is written (NGINX's lingering close does the same).
fn drain(mut rest: axum::body::BodyDataStream) {
    use futures_util::StreamExt;
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + DRAIN_TIME;
        let mut seen: u64 = 0;
        while let Ok(Some(Ok(piece))) = tokio::time::timeout_at(deadline, rest.next()).await {
            seen = seen.saturating_add(piece.len() as u64);
            if seen > DRAIN_BYTES {
                break;
            }
        }
    });
}

/// `POST /authorize`: the Lambda authorizer contract, with each refusal as its status code.
async fn authorize(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let limit = state.server.max_body_bytes;
    let too_large = |close: bool| {
        let message = format!("request body is larger than {limit} bytes (server.max_body_bytes)");
        let mut r = json_response(StatusCode::PAYLOAD_TOO_LARGE, serde_json::json!({ "message": message }).to_string());
        if close {
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    };
    // A declared length over the limit is answered before waiting for a body that may never
    // come; what there is of it is drained meanwhile, unless it is more than worth reading.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > limit as u64) {
        if n <= DRAIN_BYTES {
            drain(request.into_body().into_data_stream());
            return too_large(false);
        }
        return too_large(true);
    }
    let body = match read_body(request.into_body(), limit, &state.body_budget).await {
        Ok(b) => b,
        Err(BodyRead::TooLarge(rest)) => {
            drain(rest);
            return too_large(false);
        }
        Err(BodyRead::Overloaded) => {
            return json_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"message":"overloaded, retry later"}"#.into());
        }
        Err(BodyRead::Failed(e)) => {
            let message = format!("Failed to buffer the request body: {e}");
            return json_response(StatusCode::BAD_REQUEST, serde_json::json!({ "message": message }).to_string());
        }
    };
    match lambda::authorize(&state, &body.bytes).await {
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
        let budget = Arc::new(Semaphore::new(100));
        let one = read_body(body(vec![Ok("{\"a\":1}")]), 7, &budget).await.expect("one piece");
        assert_eq!(&one.bytes[..], b"{\"a\":1}");
        assert_eq!(budget.available_permits(), 93, "the body holds its share while it is used");
        drop(one);
        assert_eq!(budget.available_permits(), 100);
        let several = read_body(body(vec![Ok("{\"a\""), Ok(""), Ok(":1"), Ok("}")]), 7, &budget)
            .await
            .expect("joined");
        assert_eq!(&several.bytes[..], b"{\"a\":1}");
        drop(several);
        let empty = read_body(body(vec![]), 7, &budget).await.expect("empty");
        assert!(empty.bytes.is_empty());
        assert!(matches!(
            read_body(body(vec![Ok("{\"a\""), Ok(":12}")]), 7, &budget).await,
            Err(BodyRead::TooLarge(_))
        ));
        assert!(matches!(
            read_body(body(vec![Ok("12345678")]), 7, &budget).await,
            Err(BodyRead::TooLarge(_))
        ));
        let broken = read_body(body(vec![Ok("{"), Err(std::io::Error::other("reset"))]), 7, &budget).await;
        assert!(matches!(broken, Err(BodyRead::Failed(_))));
        assert_eq!(budget.available_permits(), 100, "refused bodies give their share back");
        // Bodies being read together cannot pass the budget.
        let small = Arc::new(Semaphore::new(10));
        let held = read_body(body(vec![Ok("123456")]), 7, &small).await.expect("first");
        assert!(matches!(
            read_body(body(vec![Ok("123"), Ok("456")]), 7, &small).await,
            Err(BodyRead::Overloaded)
        ));
        drop(held);
        assert!(read_body(body(vec![Ok("123"), Ok("456")]), 7, &small).await.is_ok());
    }
}
