//! `ANY /ext-authz/{*path}`: Envoy's ext_authz HTTP service (`path_prefix: /ext-authz`). Envoy
//! sends the original method and path; exactly 200 allows, any other status is sent to the client.

use axum::extract::State;
use axum::response::Response;

use std::borrow::Cow;

use crate::front_door::http_proxy::{self, HttpFlavour};
use crate::request::FrontDoor;
use crate::state::AppState;

pub const PREFIX: &str = "/ext-authz";

pub async fn handle(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (method, headers) = (request.method(), request.headers());
    let full = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let path = full.strip_prefix(PREFIX).unwrap_or(full);
    let path = if path.is_empty() || path.starts_with('?') {
        Cow::Owned(format!("/{path}"))
    } else {
        Cow::Borrowed(path)
    };
    let origin = headers.get("origin").and_then(|v| v.to_str().ok());
    let request = http_proxy::request_from_headers(FrontDoor::EnvoyHttp, Cow::Borrowed(method.as_str()), path, headers);
    let live = state.live();
    let decision = live.authorizer.decide(&request).await;
    http_proxy::render_http(&decision, &live.settings, origin, HttpFlavour::Envoy)
}
