//! Cookie and Authorization parsing: the first line is the `Authorization` value, the rest the
//! `Cookie` header (a `\x01` splits it into several Cookie headers, joined as the doors join them).
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use session_authorizer::credentials::{self, ACCESS_TOKEN_COOKIE};
use session_authorizer::request::{AuthRequest, FrontDoor};
use session_authorizer::front_door::http_proxy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (auth, cookies) = text.split_once('\n').unwrap_or((text, ""));
    let joined = AuthRequest::join_cookies(cookies.split('\u{1}').map(Cow::Borrowed).collect());
    let cookie = joined.as_deref();
    if let Ok(c) = credentials::carried_tokens(Some(auth), cookie) {
        // Only an exact `Bearer ` prefix makes a header candidate, trimmed.
        assert_eq!(c.header, auth.strip_prefix("Bearer ").map(str::trim));
        assert!(!c.duplicate_cookies || c.cookie.is_some());
        // A cookie candidate is only ever found under its own name.
        if c.cookie.is_some() {
            assert!(cookie.unwrap_or_default().contains(ACCESS_TOKEN_COOKIE));
        }
    }
    // The same values as real HTTP headers (forward-auth, ext_authz HTTP), where they are valid.
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(auth) {
        headers.insert(http::header::AUTHORIZATION, v);
    }
    for c in cookies.split('\u{1}') {
        if let Ok(v) = http::HeaderValue::from_str(c) {
            headers.append(http::header::COOKIE, v);
        }
    }
    let req = http_proxy::request_from_headers(FrontDoor::ForwardAuth, "GET".into(), "/".into(), &headers);
    let _ = credentials::carried_tokens(req.authorization.as_deref(), req.cookie.as_deref());
});
