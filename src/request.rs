//! What a front door reads from its wire format: only what the decision needs, borrowed from
//! the request where it can be.

use std::borrow::Cow;

use serde::Serialize;

pub use crate::labels::FrontDoor;
pub use crate::trace_context::TraceContext;

/// How the token came in, and so how a new one goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMethod {
    Cookie,
    Header,
}

/// Headers with which a client asks a backend's method-override middleware (Express's
/// `method-override`, Spring's `HiddenHttpMethodFilter` setups, Symfony, Rails Rack) to serve
/// the request as another method.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

/// Longer request ids are not logged as sent (Envoy's are 36 characters, API Gateway's 36).
pub const MAX_REQUEST_ID: usize = 128;

#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    pub front_door: FrontDoor,
    pub method: Cow<'a, str>,
    /// Original path, with the query string if any.
    pub path: Cow<'a, str>,
    pub authorization: Option<Cow<'a, str>>,
    /// All `Cookie` header values of the request, joined with `; `.
    pub cookie: Option<Cow<'a, str>>,
    pub anti_csrf: Option<Cow<'a, str>>,
    pub has_rid: bool,
    /// Values of `X-HTTP-Method-Override` and its kin: a backend with a method-override
    /// middleware serves the request as that method, so its route must be the same.
    pub method_overrides: Vec<Cow<'a, str>>,
    /// The request carries `Access-Control-Request-Method`: with `OPTIONS`, a CORS preflight,
    /// which is never refused for lack of a session.
    pub preflight: bool,
    /// The id the proxy gave the request (`x-request-id`, API Gateway's `requestId`), for the
    /// decision log; one is made up when there is none.
    pub request_id: Option<Cow<'a, str>>,
    /// The caller's trace context, for the decision log.
    pub trace: Option<TraceContext<'a>>,
}

impl<'a> AuthRequest<'a> {
    /// Several `Cookie` values as one header, joined with `; ` (borrowed when there is one).
    pub fn join_cookies(mut values: Vec<Cow<'a, str>>) -> Option<Cow<'a, str>> {
        match values.len() {
            0 | 1 => values.pop(),
            _ => Some(Cow::Owned(values.join("; "))),
        }
    }

    /// A CORS preflight the backend will serve as one: a real `OPTIONS`, not one a method
    /// override turns into something else.
    pub fn is_preflight(&self) -> bool {
        self.preflight && self.method == "OPTIONS" && self.method_overrides.is_empty()
    }

    /// A request id as a proxy sent it, if it is one worth logging: 1 to 128 visible ASCII
    /// characters (anything else is replaced by a made-up id, never logged as sent).
    pub fn request_id_from(value: &str) -> Option<&str> {
        let ok = (1..=MAX_REQUEST_ID).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
        ok.then_some(value)
    }

    /// The request's method and every method a backend may read it as.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.method.as_ref()).chain(self.method_overrides.iter().map(|m| m.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_logged_as_sent_only_when_plain() {
        assert_eq!(AuthRequest::request_id_from("0f3c-11e6"), Some("0f3c-11e6"));
        let longest = "a".repeat(MAX_REQUEST_ID);
        assert!(AuthRequest::request_id_from(&longest).is_some());
        for bad in ["", "a b", "tab\there", "line\nbreak", "é", &"a".repeat(MAX_REQUEST_ID + 1)] {
            assert_eq!(AuthRequest::request_id_from(bad), None, "{bad:?}");
        }
    }
}
