//! What every proxy front door (Envoy HTTP and gRPC, forward-auth) shares: the identity headers
//! sent upstream, the status and JSON body of a denial, and CORS on denials to the website.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};
use serde_json::Value;

use crate::decision::Decision;
use crate::front_door::sdk_json::{self, invalid_claim_body};
use crate::request::{AuthRequest, FrontDoor};
use crate::session::SessionInfo;
use crate::settings::Settings;

/// Headers a denied browser request must be able to read to refresh its session.
const CORS_EXPOSE: &str = "front-token, st-access-token, st-refresh-token, anti-csrf";
/// NGINX drops an auth subrequest's body; this header carries it to `error_page`.
pub const BODY_HEADER: &str = "x-session-authorizer-body";

/// Identity header names, resolved once from `[headers]`.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user_id: HeaderName,
    pub tenant_id: Option<HeaderName>,
    pub session_handle: Option<HeaderName>,
    pub claims: Vec<(String, HeaderName)>,
    /// The website's origin (`scheme://host[:port]`), for CORS on denials.
    pub website_origin: String,
}

impl IdentityHeaders {
    pub fn from_settings(s: &Settings) -> Self {
        let h = &s.headers;
        Self {
            user_id: h.user_id.clone(),
            tenant_id: h.tenant_id.clone(),
            session_handle: h.session_handle.clone(),
            claims: h.claims.iter().map(|c| (c.claim.clone(), c.header.clone())).collect(),
            website_origin: s.supertokens.website_domain.origin().to_owned(),
        }
    }

    /// Every identity header name we manage (set on a session, removed otherwise).
    pub fn all_names(&self) -> Vec<&str> {
        let mut names = vec![self.user_id.as_str()];
        names.extend(self.tenant_id.as_ref().map(HeaderName::as_str));
        names.extend(self.session_handle.as_ref().map(HeaderName::as_str));
        names.extend(self.claims.iter().map(|(_, h)| h.as_str()));
        names
    }

    /// The identity headers of a session: (name, value) for each one that has a value.
    pub fn values<'s>(&'s self, session: &'s SessionInfo) -> Vec<(&'s HeaderName, Cow<'s, str>)> {
        let mut out = vec![(&self.user_id, Cow::Borrowed(session.user_id()))];
        if let (Some(name), Some(t)) = (&self.tenant_id, session.tenant_id()) {
            out.push((name, Cow::Borrowed(t)));
        }
        if let Some(name) = &self.session_handle {
            out.push((name, Cow::Borrowed(session.session_handle())));
        }
        if !self.claims.is_empty() {
            let claims = session.claims();
            for (claim, header) in &self.claims {
                if let Some(v) = claim_header_value(claims.get(claim)) {
                    out.push((header, Cow::Owned(v)));
                }
            }
        }
        out
    }

    /// Identity header names a session leaves unset (to be removed upstream).
    pub fn unset<'a>(&'a self, set: &[(&HeaderName, Cow<'_, str>)]) -> Vec<&'a str> {
        self.all_names()
            .into_iter()
            .filter(|n| !set.iter().any(|(s, _)| s.as_str() == *n))
            .collect()
    }
}

/// A claim as a header value: `{v: ...}` claims by their value, arrays as comma lists.
fn claim_header_value(claim: Option<&Value>) -> Option<String> {
    let value = match claim? {
        Value::Object(o) if o.contains_key("v") => o.get("v")?,
        other => other,
    };
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    // A header value cannot carry control characters; drop the mapping rather than fail.
    if text.chars().any(|c| c.is_control()) { None } else { Some(text) }
}

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

/// CORS headers for a denial answered to the configured website, so its SDK can read the 401.
pub fn cors_on_denial(origin: Option<&str>, identity: &IdentityHeaders) -> Vec<(&'static str, String)> {
    match origin {
        Some(o) if o == identity.website_origin => vec![
            ("access-control-allow-origin", o.to_owned()),
            ("access-control-allow-credentials", "true".to_owned()),
            ("access-control-expose-headers", CORS_EXPOSE.to_owned()),
        ],
        _ => Vec::new(),
    }
}

/// Headers with which a client asks a backend's method-override middleware (Express's
/// `method-override`, Spring's `HiddenHttpMethodFilter` setups, Symfony, Rails Rack) to serve
/// the request as another method.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

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
        }
    }
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_values_become_header_values() {
        assert_eq!(claim_header_value(Some(&json!({"v": ["a", "b"], "t": 1}))), Some("a,b".into()));
        assert_eq!(claim_header_value(Some(&json!("plain"))), Some("plain".into()));
        assert_eq!(claim_header_value(Some(&json!({"v": 3}))), Some("3".into()));
        assert_eq!(claim_header_value(Some(&json!({"v": "a\nb"}))), None);
        assert_eq!(claim_header_value(None), None);
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
    identity: &IdentityHeaders,
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
            let set = match decision {
                Decision::Allow { session, .. } => identity.values(session),
                _ => Vec::new(),
            };
            if flavour == HttpFlavour::Envoy {
                let unset = identity.unset(&set);
                if !unset.is_empty() {
                    put_named(map, HeaderName::from_static("x-envoy-auth-headers-to-remove"), &unset.join(", "));
                }
            }
            for (k, v) in set {
                put_named(map, k.clone(), &v);
            }
        }
        Some((code, body)) => {
            *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let map = response.headers_mut();
            map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            put_named(map, HeaderName::from_static(BODY_HEADER), &body);
            for (k, v) in cors_on_denial(origin, identity) {
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
