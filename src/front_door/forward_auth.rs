//! `ANY /forward-auth`: NGINX `auth_request`, Traefik ForwardAuth and Caddy `forward_auth`. The
//! original method and URI come only from the two headers the configured proxy sets, each
//! overwriting any copy a client sent (`forward_auth.proxy`); every other forwarding header a
//! client can send (`X-Forwarded-Uri` to NGINX, `X-Original-URL`, `X-Rewrite-URL`, ...) is
//! ignored. Answers are 200, 401 or 403 (NGINX turns anything else into 500), and 400 for a
//! request that cannot be judged.

use axum::extract::State;
use axum::response::Response;

use crate::front_door::forwarded::original;
use crate::front_door::http_proxy::{self, HttpFlavour};
use crate::request::FrontDoor;
use crate::state::AppState;

pub async fn handle(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let headers = request.headers();
    let origin = headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok());
    let live = state.live();
    let decision = match original(headers, &live.settings.forward_auth) {
        Ok((method, target)) => {
            let request = http_proxy::request_from_headers(FrontDoor::ForwardAuth, method.into(), target, headers);
            live.authorizer.decide(&request).await
        }
        Err(e) => live.authorizer.refuse(
            FrontDoor::ForwardAuth,
            request.method().as_str(),
            format!("bad forwarded request: {e}"),
            e.to_string(),
        ),
    };
    http_proxy::render_http(&decision, &live.settings, origin, HttpFlavour::ForwardAuth)
}
