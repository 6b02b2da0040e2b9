//! The HTTP proxy doors (Envoy ext_authz HTTP, NGINX auth_request, Traefik and Caddy
//! forward-auth): the request read from the headers the proxy forwards, and the answer written
//! back as status, headers and body.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

use crate::decision::Decision;
use crate::front_door::denial::{cors_on_denial, denial};
use crate::front_door::identity;
use crate::request::{AuthRequest, FrontDoor, METHOD_OVERRIDE_HEADERS, TraceContext};
use crate::settings::Settings;

/// NGINX drops an auth subrequest's body; this header carries it to `error_page`.
pub const BODY_HEADER: &str = "x-session-authorizer-body";

/// Envoy joins a request's repeated headers with `,` before it asks the authorizer, `Cookie`
/// lines too, while the backend reads each line as a cookie list of its own (Node joins them
/// with `; `). No SuperTokens token holds a `,`, so reading it as `;` finds the cookies the
/// backend sees.
pub fn cookies_joined_by_envoy(cookie: Cow<'_, str>) -> Cow<'_, str> {
    if memchr::memchr(b',', cookie.as_bytes()).is_some() {
        Cow::Owned(cookie.replace(',', ";"))
    } else {
        cookie
    }
}

/// An `AuthRequest` from HTTP headers (forward-auth, ext_authz HTTP); all `Cookie` headers joined.
pub fn request_from_headers<'a>(
    front_door: FrontDoor,
    method: Cow<'a, str>,
    path: Cow<'a, str>,
    headers: &'a HeaderMap,
) -> AuthRequest<'a> {
    use http::header::{ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, COOKIE};
    const ANTI_CSRF: HeaderName = HeaderName::from_static("anti-csrf");
    const RID: HeaderName = HeaderName::from_static("rid");
    const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    const B3: HeaderName = HeaderName::from_static("b3");
    const B3_TRACE: HeaderName = HeaderName::from_static("x-b3-traceid");
    const B3_SPAN: HeaderName = HeaderName::from_static("x-b3-spanid");
    const METHOD_OVERRIDES: [HeaderName; 3] = [
        HeaderName::from_static(METHOD_OVERRIDE_HEADERS[0]),
        HeaderName::from_static(METHOD_OVERRIDE_HEADERS[1]),
        HeaderName::from_static(METHOD_OVERRIDE_HEADERS[2]),
    ];
    // One pass over the request's few headers rather than a lookup (a hash of the name) for each
    // of the eight read here. The first value of a header counts, as `HeaderMap::get` has it;
    // every `Cookie` line counts.
    let (mut authorization, mut anti_csrf) = (None, None);
    let (mut has_rid, mut preflight) = (false, false);
    let mut cookies = Vec::new();
    let mut method_overrides = Vec::new();
    let (mut request_id, mut traceparent, mut b3, mut b3_trace, mut b3_span) = (None, None, None, None, None);
    for (name, value) in headers {
        if *name == COOKIE {
            cookies.extend(value.to_str().ok().map(Cow::Borrowed));
        } else if *name == AUTHORIZATION {
            authorization.get_or_insert(value.to_str().ok().map(Cow::Borrowed));
        } else if *name == ACCESS_CONTROL_REQUEST_METHOD {
            preflight = true;
        } else if *name == ANTI_CSRF {
            anti_csrf.get_or_insert(value.to_str().ok().map(Cow::Borrowed));
        } else if *name == RID {
            has_rid = true;
        } else if METHOD_OVERRIDES.contains(name) {
            // A value that is not text is still a reading the backend may make: keep it lossily.
            method_overrides.push(String::from_utf8_lossy(value.as_bytes()).trim().to_owned().into());
        } else if *name == REQUEST_ID {
            request_id.get_or_insert(value.to_str().ok());
        } else if *name == TRACEPARENT {
            traceparent.get_or_insert(value.to_str().ok());
        } else if *name == B3 {
            b3.get_or_insert(value.to_str().ok());
        } else if *name == B3_TRACE {
            b3_trace.get_or_insert(value.to_str().ok());
        } else if *name == B3_SPAN {
            b3_span.get_or_insert(value.to_str().ok());
        }
    }
    let trace = TraceContext::from_headers(traceparent.flatten(), b3.flatten(), b3_trace.flatten(), b3_span.flatten());
    let mut cookie = AuthRequest::join_cookies(cookies);
    if front_door == FrontDoor::EnvoyHttp {
        cookie = cookie.map(cookies_joined_by_envoy);
    }
    AuthRequest {
        front_door,
        method,
        path,
        authorization: authorization.flatten(),
        cookie,
        anti_csrf: anti_csrf.flatten(),
        has_rid,
        method_overrides,
        preflight,
        request_id: request_id.flatten().and_then(AuthRequest::request_id_from).map(Cow::Borrowed),
        trace,
    }
}

/// Which HTTP proxy protocol a response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFlavour {
    /// Envoy ext_authz HTTP: removal of unset identity headers via `x-envoy-auth-headers-to-remove`.
    Envoy,
    /// NGINX, Traefik, Caddy: unset identity headers are simply absent (their configs overwrite).
    ForwardAuth,
}

/// The HTTP answer for a proxy: 200 (allow) or 401/403 with the SDK's JSON body. Written straight
/// into the response's header map.
pub fn render_http(
    decision: &Decision,
    settings: &Settings,
    origin: Option<&str>,
    flavour: HttpFlavour,
) -> http::Response<axum::body::Body> {
    use axum::body::Body;
    use http::header::{CONTENT_TYPE, SET_COOKIE};
    use http::{HeaderValue, Response, StatusCode};

    fn put(map: &mut HeaderMap, name: &str, value: &str) {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            put_named(map, n, value);
        }
    }
    fn put_named(map: &mut HeaderMap, name: HeaderName, value: &str) {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.append(name, v);
        }
    }
    let mut response = Response::new(Body::empty());
    let map = response.headers_mut();
    let effects = match decision {
        Decision::Allow { effects, .. } | Decision::Unauthorised { effects, .. } => Some(effects),
        _ => None,
    };
    let mut expose: Option<String> = None;
    match denial(decision) {
        None => {
            let upstream = identity::upstream(&settings.headers, settings.assertion_header(), decision);
            if flavour == HttpFlavour::Envoy && !upstream.remove.is_empty() {
                put_named(
                    map,
                    HeaderName::from_static("x-envoy-auth-headers-to-remove"),
                    &upstream.remove.join(", "),
                );
            }
            for (k, v) in upstream.set {
                put_named(map, k.clone(), &v);
            }
        }
        Some((code, body)) => {
            *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let map = response.headers_mut();
            map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            put_named(map, HeaderName::from_static(BODY_HEADER), &body);
            for (k, v) in cors_on_denial(origin, settings.supertokens.website_domain.origin()) {
                if k == "access-control-expose-headers" {
                    expose = Some(v);
                } else {
                    put(map, k, &v);
                }
            }
            *response.body_mut() = Body::from(body);
        }
    }
    let map = response.headers_mut();
    if let Some(fx) = effects {
        for c in &fx.set_cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                map.append(SET_COOKIE, v);
            }
        }
        for (k, v) in &fx.headers {
            // One expose list: merged with the CORS one when both are present.
            if *k == "access-control-expose-headers" {
                expose = Some(match expose.take() {
                    Some(e) => format!("{e}, {v}"),
                    None => v.clone(),
                });
            } else {
                put(map, k, v);
            }
        }
    }
    if let Some(e) = expose {
        put(map, "access-control-expose-headers", &e);
    }
    response
}
