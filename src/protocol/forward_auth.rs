//! `ANY /forward-auth`: NGINX `auth_request`, Traefik ForwardAuth and Caddy `forward_auth`. The
//! original method and URI come from `X-Forwarded-*` / `X-Original-*`; answers are only 200, 401
//! or 403 (NGINX turns anything else into 500), with identity headers on 200.

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderName, Method};

use crate::decision::{Decision, FrontDoor};
use crate::protocol::proxy::{self, HttpFlavour};
use crate::state::AppState;

/// The original request line the proxy reports.
pub fn original(method: &Method, headers: &HeaderMap) -> (String, String) {
    const FORWARDED_METHOD: [HeaderName; 2] = [
        HeaderName::from_static("x-forwarded-method"),
        HeaderName::from_static("x-original-method"),
    ];
    const FORWARDED_URI: [HeaderName; 2] = [
        HeaderName::from_static("x-forwarded-uri"),
        HeaderName::from_static("x-original-uri"),
    ];
    const ORIGINAL_URL: [HeaderName; 1] = [HeaderName::from_static("x-original-url")];
    let header = |names: &[HeaderName]| {
        names
            .iter()
            .find_map(|n| headers.get(n).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()))
    };
    let method = header(&FORWARDED_METHOD).unwrap_or(method.as_str()).to_ascii_uppercase();
    let uri = header(&FORWARDED_URI)
        .map(str::to_owned)
        .or_else(|| header(&ORIGINAL_URL).map(path_of_url))
        .unwrap_or_else(|| "/".to_owned());
    (method, uri)
}

/// ingress-nginx sends a full URL in `X-Original-URL`: keep its path and query.
fn path_of_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(url) => match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        },
        Err(_) => u.to_owned(),
    }
}

pub async fn handle(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let headers = request.headers();
    let (orig_method, uri) = original(request.method(), headers);
    let origin = headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok());
    let decision = if proxy::is_preflight(&orig_method, headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)) {
        Decision::Anonymous
    } else {
        let request = proxy::request_from_headers(FrontDoor::ForwardAuth, orig_method, uri, headers);
        state.authorizer.decide(&request).await
    };
    proxy::render_http(&decision, &state.identity, origin, HttpFlavour::ForwardAuth)
}
