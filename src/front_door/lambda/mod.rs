//! The AWS Lambda authorizer contract over HTTP (`POST /authorize`): REST `REQUEST`/`TOKEN`
//! events, HTTP API payload 2.0 (and 1.0), and AppSync, detected from the event itself.
//!
//! Events are read with borrowed, typed serde structs holding only the fields a decision needs;
//! responses are written in the exact shape of the SuperTokens docs' Node handler.
//!
//! `authorize` is the one entry point: `POST /authorize` and the Lambda Runtime API loop
//! (`session-authorizer lambda`) both call it and differ only in how they carry a refusal.

pub mod runtime;

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::app::state::AppState;
use crate::decision::Decision;
use crate::front_door::sdk_json::{invalid_claim_body, message_body};
use crate::request::{AuthRequest, FrontDoor};
use crate::session::SessionInfo;
use crate::settings::{HttpApiResponse, LambdaSettings, PolicyResource};

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("request body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "not a Lambda authorizer event: expected `type` REQUEST or TOKEN with `methodArn`, `version` \"2.0\" with `routeArn`, or AppSync `authorizationToken` with `requestContext.apiId`"
    )]
    Unrecognised,
    #[error("{kind} event is missing `{field}`")]
    Missing { kind: &'static str, field: &'static str },
    #[error("not a Lambda authorizer event: the body is {0}, not a JSON object")]
    NotAnObject(&'static str),
}

/// What a JSON text is, from its first significant byte, when that is not an object (serde's
/// derived structs would also read an array positionally, which no gateway sends).
fn non_object_kind(body: &[u8]) -> Option<&'static str> {
    let first = body.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))?;
    match first {
        b'[' => Some("an array"),
        b'"' => Some("a string"),
        b't' | b'f' => Some("a boolean"),
        b'n' => Some("null"),
        b'-' | b'0'..=b'9' => Some("a number"),
        _ => None,
    }
}

/// Why an invocation gets no response object. Over HTTP each is a status code; under the Lambda
/// Runtime API each is a function error whose message is this `Display`.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not an authorizer event (HTTP 400).
    #[error(transparent)]
    Event(#[from] EventError),
    /// TRY_REFRESH_TOKEN or UNAUTHORISED. API Gateway answers 401 only when a Lambda fails with
    /// exactly this message, so it must never change.
    #[error("Unauthorized")]
    Unauthorized,
    /// The core failed, or the answer could not be written: fail closed (HTTP 500; any other
    /// function error is API Gateway's 500 too).
    #[error("Internal server error")]
    Internal,
}

/// One authorizer invocation: the event in, the contract's response object (JSON text) out.
pub async fn authorize(state: &AppState, event: &[u8]) -> Result<String, Refusal> {
    let settings = &state.settings.lambda;
    let decoded = decode(event, settings)?;
    let decision = state.authorizer.decide(&decoded.request).await;
    // Only AppSync's answer depends on the time (its TTL).
    let now_ms = if decoded.reply == Reply::AppSync { state.clock.now_ms() } else { 0 };
    render(&decision, &decoded.reply, settings, now_ms)
}

/// A string borrowed from the request body when it has no escapes (serde's own `Cow` impl
/// always copies; `#[serde(borrow)]` on a newtype does not).
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// An optional string field, borrowed when it has no escapes (`Option<Cow<str>>` alone would
/// always copy).
fn borrowed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

/// The headers a decision reads, in `WANTED` order: the credentials, then the method-override
/// headers a backend may serve the request by (`proxy::METHOD_OVERRIDE_HEADERS`).
const WANTED: [&str; 7] = [
    "authorization",
    "anti-csrf",
    "rid",
    "cookie",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];
const COOKIE: usize = 3;
const METHOD_OVERRIDES: std::ops::Range<usize> = 4..7;

/// A header object as API Gateway sends it (names in any case, `null` values dropped), keeping
/// only the headers in `WANTED`, first occurrence each. Every other value is still read as `V`,
/// so a wrongly shaped event is refused whichever header is wrong, but nothing else is kept.
/// `V` is one value (`headers`) or a list of values (`multiValueHeaders`).
#[derive(Debug)]
struct HeaderObject<V>([Option<V>; WANTED.len()]);

impl<V> Default for HeaderObject<V> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| None))
    }
}

impl<V> HeaderObject<V> {
    fn get(&self, i: usize) -> Option<&V> {
        self.0.get(i).and_then(Option::as_ref)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for HeaderObject<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Visit<V> {
            type Value = HeaderObject<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of header names to string values (or lists of them)")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(HeaderObject::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = HeaderObject::default();
                while let Some(name) = m.next_key::<Text<'de>>()? {
                    let value = m.next_value::<Option<V>>()?;
                    let slot = WANTED
                        .iter()
                        .position(|w| name.0.eq_ignore_ascii_case(w))
                        .and_then(|i| out.0.get_mut(i));
                    if let Some(slot) = slot
                        && slot.is_none()
                    {
                        *slot = value;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(Visit(std::marker::PhantomData))
    }
}

type Headers<'a> = HeaderObject<Text<'a>>;
type MultiHeaders<'a> = HeaderObject<Values<'a>>;

/// A `multiValueHeaders` list: nearly always one value, kept without a list of its own.
#[derive(Debug)]
struct Values<'a> {
    first: Option<Text<'a>>,
    rest: Vec<Text<'a>>,
}

impl<'a> Values<'a> {
    fn iter(&self) -> impl Iterator<Item = &Text<'a>> {
        self.first.iter().chain(self.rest.iter())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Values<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Visit<'a> {
            type Value = Values<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence of header values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Text<'a>>()?;
                let mut rest = Vec::new();
                while let Some(v) = seq.next_element::<Text<'a>>()? {
                    rest.push(v);
                }
                Ok(Values { first, rest })
            }
        }
        d.deserialize_seq(Visit(std::marker::PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
struct HttpContext<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed")]
    method: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed")]
    api_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    http: Option<HttpContext<'a>>,
}

/// The union of the fields we read from every event kind.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed", rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    method_arn: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    route_arn: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    authorization_token: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    http_method: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    raw_path: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrowed")]
    raw_query_string: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    headers: Headers<'a>,
    #[serde(borrow, default)]
    multi_value_headers: MultiHeaders<'a>,
    #[serde(borrow, default)]
    cookies: Option<Vec<Text<'a>>>,
    #[serde(borrow, default)]
    request_context: Option<RequestContext<'a>>,
}

/// Which contract the response follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// IAM policy on this resource ARN.
    Policy {
        resource: String,
    },
    /// HTTP API simple response.
    Simple,
    AppSync,
}

/// A decoded event: the request to decide and how to answer it.
pub struct Decoded<'a> {
    pub request: AuthRequest<'a>,
    pub reply: Reply,
}

impl<'a> RawEvent<'a> {
    /// Case-insensitive header lookup (`WANTED[i]`): `headers` first, then `multiValueHeaders`.
    fn header(&self, i: usize) -> Option<Cow<'a, str>> {
        if let Some(v) = self.headers.get(i) {
            return Some(v.0.clone());
        }
        self.multi_value_headers.get(i)?.first.as_ref().map(|v| v.0.clone())
    }

    /// Every cookie the event carries, joined: the `cookie` header (or its multi-value form),
    /// then HTTP API v2's `cookies` array. The first occurrence of a name wins downstream.
    fn cookie_header(&self) -> Option<Cow<'a, str>> {
        let mut parts: Vec<Cow<'a, str>> = Vec::new();
        if let Some(v) = self.headers.get(COOKIE) {
            parts.push(v.0.clone());
        } else if let Some(vs) = self.multi_value_headers.get(COOKIE) {
            parts.extend(vs.iter().map(|v| v.0.clone()));
        }
        if let Some(cs) = &self.cookies {
            parts.extend(cs.iter().map(|c| c.0.clone()));
        }
        AuthRequest::join_cookies(parts)
    }
}

/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{VERB}/{path...}` -> (verb, /path).
fn split_method_arn(arn: &str) -> Option<(&str, String)> {
    let mut parts = arn.splitn(4, '/');
    let _api = parts.next()?;
    let _stage = parts.next()?;
    let verb = parts.next()?;
    let path = parts.next().unwrap_or("");
    Some((verb, format!("/{path}")))
}

/// The `Resource` of the policy statement. API Gateway caches the whole policy per identity
/// source and applies it to every method and path the authorizer guards, so a cached policy on
/// the exact ARN denies the next path; `Stage` covers them all. An ARN without api and stage
/// keeps the exact value: narrower fails closed.
fn policy_resource(arn: Cow<'_, str>, mode: PolicyResource) -> String {
    match mode {
        PolicyResource::Exact => arn.into_owned(),
        PolicyResource::Stage => {
            let mut parts = arn.splitn(3, '/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(api), Some(stage), Some(_)) if !api.is_empty() && !stage.is_empty() => format!("{api}/{stage}/*/*"),
                _ => arn.into_owned(),
            }
        }
    }
}

pub fn decode<'a>(body: &'a [u8], settings: &LambdaSettings) -> Result<Decoded<'a>, EventError> {
    if let Some(kind) = non_object_kind(body) {
        return Err(EventError::NotAnObject(kind));
    }
    // One UTF-8 check of the whole body: serde_json's byte reader validates every string it
    // borrows on its own, about a tenth of the event's parse time. Bodies that are not UTF-8
    // go through the byte reader only so its error names the line and column.
    let ev: RawEvent<'_> = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text)?,
        Err(_) => serde_json::from_slice(body)?,
    };
    let is_v2 = ev.version.as_deref() == Some("2.0");
    let kind = ev.kind.as_deref();
    if is_v2 {
        let route_arn = ev.route_arn.clone().ok_or(EventError::Missing {
            kind: "HTTP API 2.0",
            field: "routeArn",
        })?;
        let method = ev
            .request_context
            .as_ref()
            .and_then(|c| c.http.as_ref())
            .and_then(|h| h.method.clone())
            .ok_or(EventError::Missing {
                kind: "HTTP API 2.0",
                field: "requestContext.http.method",
            })?;
        let raw_path = ev.raw_path.clone().unwrap_or(Cow::Borrowed("/"));
        let path = match ev.raw_query_string.as_deref() {
            Some(q) if !q.is_empty() => Cow::Owned(format!("{raw_path}?{q}")),
            _ => raw_path,
        };
        let reply = match settings.http_api_response {
            HttpApiResponse::Simple => Reply::Simple,
            HttpApiResponse::Iam => Reply::Policy {
                resource: policy_resource(route_arn, settings.policy_resource),
            },
        };
        return Ok(Decoded {
            request: http_like(&ev, FrontDoor::LambdaHttpApi, method, path),
            reply,
        });
    }
    match kind {
        Some("REQUEST") => {
            let arn = ev.method_arn.clone().ok_or(EventError::Missing {
                kind: "REQUEST",
                field: "methodArn",
            })?;
            // The ARN's verb and path only stand in for fields the event lacks.
            let from_arn = || split_method_arn(&arn).map_or(("GET", "/".to_owned()), |(v, p)| (v, p));
            let method = ev.http_method.clone().unwrap_or_else(|| Cow::Owned(from_arn().0.to_owned()));
            let path = ev.path.clone().unwrap_or_else(|| Cow::Owned(from_arn().1));
            let request = http_like(&ev, FrontDoor::LambdaRequest, method, path);
            Ok(Decoded {
                request,
                reply: Reply::Policy {
                    resource: policy_resource(arn, settings.policy_resource),
                },
            })
        }
        Some("TOKEN") => {
            let arn = ev.method_arn.clone().ok_or(EventError::Missing {
                kind: "TOKEN",
                field: "methodArn",
            })?;
            let token = ev.authorization_token.clone().ok_or(EventError::Missing {
                kind: "TOKEN",
                field: "authorizationToken",
            })?;
            let (verb, path) = split_method_arn(&arn).ok_or(EventError::Missing {
                kind: "TOKEN",
                field: "methodArn verb and path",
            })?;
            let request = token_request(FrontDoor::LambdaToken, token, verb.to_owned(), path);
            Ok(Decoded {
                request,
                reply: Reply::Policy {
                    resource: policy_resource(arn, settings.policy_resource),
                },
            })
        }
        Some(_) => Err(EventError::Unrecognised),
        None => {
            let api_id = ev.request_context.as_ref().and_then(|c| c.api_id.as_ref());
            match (&ev.authorization_token, api_id) {
                (Some(token), Some(_)) => Ok(Decoded {
                    request: token_request(FrontDoor::AppSync, token.clone(), "POST".into(), "/graphql".into()),
                    reply: Reply::AppSync,
                }),
                _ => Err(EventError::Unrecognised),
            }
        }
    }
}

fn http_like<'a>(ev: &RawEvent<'a>, front_door: FrontDoor, method: Cow<'a, str>, path: Cow<'a, str>) -> AuthRequest<'a> {
    AuthRequest {
        front_door,
        method,
        path,
        authorization: ev.header(0),
        cookie: ev.cookie_header(),
        anti_csrf: ev.header(1),
        has_rid: ev.header(2).is_some(),
        method_overrides: METHOD_OVERRIDES.filter_map(|i| ev.header(i)).collect(),
        // API Gateway answers CORS preflights itself; the SDK's handler has no such case.
        preflight: false,
    }
}

/// TOKEN and AppSync events carry one value: a `Bearer` header or the bare token.
fn token_request<'a>(front_door: FrontDoor, token: Cow<'a, str>, method: String, path: String) -> AuthRequest<'a> {
    let authorization = if token.starts_with("Bearer ") {
        token
    } else {
        Cow::Owned(format!("Bearer {token}"))
    };
    AuthRequest {
        front_door,
        method: Cow::Owned(method),
        path: Cow::Owned(path),
        authorization: Some(authorization),
        cookie: None,
        anti_csrf: None,
        has_rid: false,
        method_overrides: Vec::new(),
        preflight: false,
    }
}

/// The authorizer context, written straight from the decision. Values are strings only, as
/// API Gateway requires; absent ones are left out.
#[derive(Default)]
struct Context<'a> {
    body: Option<String>,
    set_cookie: Option<String>,
    user_id: Option<&'a str>,
    tenant_id: Option<&'a str>,
    session_handle: Option<&'a str>,
}

impl Context<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let fields = [
            ("body", self.body.as_deref()),
            ("setCookie", self.set_cookie.as_deref()),
            ("userId", self.user_id),
            ("tenantId", self.tenant_id),
            ("sessionHandle", self.session_handle),
        ];
        out.push(b'{');
        for (i, (key, value)) in fields.iter().filter_map(|(k, v)| Some((k, (*v)?))).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, key);
            out.push(b':');
            push_str(out, value);
        }
        out.push(b'}');
    }
}

/// Appends `s` as a JSON string. Identifiers and ARNs almost never hold a byte JSON escapes
/// (control characters, `"` and `\`), so they are copied as they are; any other string goes
/// through serde_json's escaping.
fn push_str(out: &mut Vec<u8>, s: &str) {
    let plain = s.bytes().fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let start = out.len();
        if serde_json::to_writer(&mut *out, s).is_err() {
            // Writing into a Vec cannot fail; were it to, an empty string keeps the JSON whole.
            out.truncate(start);
            out.extend_from_slice(b"\"\"");
        }
    }
}

/// The body `POST /authorize` sends with its 401, as API Gateway does.
pub const UNAUTHORIZED_BODY: &str = r#"{"message":"Unauthorized"}"#;
pub const INTERNAL_BODY: &str = r#"{"message":"Internal server error"}"#;

/// Maps a decision onto the contract of the event it answers.
pub fn render(decision: &Decision, reply: &Reply, settings: &LambdaSettings, now_ms: u64) -> Result<String, Refusal> {
    let (allow, principal, mut context) = match decision {
        Decision::Allow { session, effects } => (true, session.user_id(), allow_context(session, &effects.set_cookies)),
        Decision::Anonymous => (
            true,
            "",
            Context {
                set_cookie: Some(String::new()),
                ..Default::default()
            },
        ),
        Decision::InvalidClaims { errors } => (
            false,
            "",
            Context {
                body: Some(invalid_claim_body(errors)),
                set_cookie: Some(String::new()),
                ..Default::default()
            },
        ),
        // A Lambda authorizer cannot answer 400: a request it cannot judge is denied (API
        // Gateway's 403), with the reason where `$context.authorizer.body` finds it.
        Decision::BadRequest { message, .. } => (
            false,
            "",
            Context {
                body: Some(message_body(message)),
                set_cookie: Some(String::new()),
                ..Default::default()
            },
        ),
        Decision::TryRefresh { .. } | Decision::Unauthorised { .. } => return Err(Refusal::Unauthorized),
        Decision::Error { .. } => return Err(Refusal::Internal),
    };
    // Sized once for a typical answer (a policy is about 300 bytes before cookies). The fixed
    // parts are written as they are: the fields and their order are the Node handler's.
    let mut out = Vec::with_capacity(512);
    let verdict: &[u8] = if allow { b"true" } else { b"false" };
    match reply {
        Reply::Policy { resource } => {
            out.extend_from_slice(b"{\"principalId\":");
            push_str(&mut out, principal);
            out.extend_from_slice(br#","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"#);
            out.extend_from_slice(if allow { b"\"Allow\"" } else { b"\"Deny\"" });
            out.extend_from_slice(br#","Resource":"#);
            push_str(&mut out, resource);
            out.extend_from_slice(br#"}]},"context":"#);
            context.write(&mut out);
        }
        Reply::Simple => {
            out.extend_from_slice(br#"{"isAuthorized":"#);
            out.extend_from_slice(verdict);
            out.extend_from_slice(br#","context":"#);
            context.write(&mut out);
        }
        Reply::AppSync => {
            let ttl = match decision {
                Decision::Allow { session, .. } => settings.appsync_ttl_secs.min(session.expiry_ms.saturating_sub(now_ms) / 1000),
                _ => 0,
            };
            context.set_cookie = None;
            out.extend_from_slice(br#"{"isAuthorized":"#);
            out.extend_from_slice(verdict);
            out.extend_from_slice(br#","resolverContext":"#);
            context.write(&mut out);
            out.extend_from_slice(br#","ttlOverride":"#);
            out.extend_from_slice(ttl.to_string().as_bytes());
        }
    }
    out.push(b'}');
    String::from_utf8(out).map_err(|_| Refusal::Internal)
}

fn allow_context<'a>(session: &'a SessionInfo, set_cookies: &[String]) -> Context<'a> {
    Context {
        body: None,
        set_cookie: Some(set_cookies.join(", ")),
        user_id: Some(session.user_id()),
        tenant_id: session.tenant_id(),
        session_handle: Some(session.session_handle()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LambdaSettings {
        LambdaSettings::default()
    }

    #[test]
    fn detects_each_kind() {
        let rest = br#"{"type":"REQUEST","methodArn":"arn:aws:execute-api:r:a:api/prod/GET/items/1","httpMethod":"GET","path":"/items/1","headers":{"Cookie":"sAccessToken=x","X":null},"multiValueHeaders":{"Authorization":["Bearer y"]}}"#;
        let d = decode(rest, &settings()).expect("rest");
        assert_eq!(d.request.front_door, FrontDoor::LambdaRequest);
        assert_eq!(d.request.cookie.as_deref(), Some("sAccessToken=x"));
        assert_eq!(d.request.authorization.as_deref(), Some("Bearer y"));
        // Read in place, not copied.
        assert!(matches!(
            (&d.request.method, &d.request.path, &d.request.cookie),
            (Cow::Borrowed(_), Cow::Borrowed(_), Some(Cow::Borrowed(_)))
        ));
        let token = br#"{"type":"TOKEN","authorizationToken":"abc","methodArn":"arn:aws:execute-api:r:a:api/prod/POST/a/b"}"#;
        let d = decode(token, &settings()).expect("token");
        assert_eq!(d.request.method, "POST");
        assert_eq!(d.request.path, "/a/b");
        assert_eq!(d.request.authorization.as_deref(), Some("Bearer abc"));
        let v2 = br#"{"version":"2.0","type":"REQUEST","routeArn":"arn:x","rawPath":"/p","rawQueryString":"a=1","cookies":["a=1","sAccessToken=t"],"requestContext":{"http":{"method":"PUT"}}}"#;
        let d = decode(v2, &settings()).expect("v2");
        assert_eq!(d.reply, Reply::Simple);
        assert_eq!(d.request.path, "/p?a=1");
        assert_eq!(d.request.cookie.as_deref(), Some("a=1; sAccessToken=t"));
        let appsync = br#"{"authorizationToken":"t","requestContext":{"apiId":"x"}}"#;
        assert_eq!(decode(appsync, &settings()).expect("appsync").reply, Reply::AppSync);
    }

    #[test]
    fn text_and_byte_readers_agree() {
        // Valid UTF-8 goes through the text reader; the same event with a stray byte in a field
        // no decision reads goes through the byte reader, which skips that field unchecked as
        // before. Both must read the same request.
        let valid = br#"{"type":"REQUEST","methodArn":"arn:aws:execute-api:r:a:api/prod/GET/x","headers":{"cookie":"sAccessToken=t"},"requestContext":{"identity":{"userAgent":"caf\u00e9 \u00e9"}}}"#;
        let mut stray = valid.to_vec();
        let at = stray.windows(4).position(|w| w == b"caf\\").expect("marker") + 3;
        stray.splice(at..at + 6, [0xff]);
        assert!(std::str::from_utf8(&stray).is_err());
        for body in [&valid[..], &stray[..]] {
            let d = decode(body, &settings()).expect("decoded");
            assert_eq!(d.request.cookie.as_deref(), Some("sAccessToken=t"));
            assert_eq!((d.request.method.as_ref(), d.request.path.as_ref()), ("GET", "/x"));
        }
        // A stray byte in a string a decision reads is refused, with the byte reader's position.
        let err = decode(b"{\"type\":\"REQ\xffUEST\"}", &settings()).err().expect("refused");
        assert!(err.to_string().contains("invalid unicode code point at line 1 column"), "{err}");
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(matches!(decode(b"{", &settings()), Err(EventError::Json(_))));
        assert!(matches!(decode(b"{}", &settings()), Err(EventError::Unrecognised)));
        // An array would fill the event's fields positionally; it is refused as the wrong shape.
        let positional = br#"["REQUEST", null, "arn:aws:execute-api:r:a:api/prod/GET/x"]"#;
        assert!(matches!(decode(positional, &settings()), Err(EventError::NotAnObject("an array"))));
        assert!(matches!(decode(b" \n\t-1", &settings()), Err(EventError::NotAnObject("a number"))));
        let e = decode(br#"{"type":"REQUEST"}"#, &settings()).err().expect("missing");
        assert_eq!(e.to_string(), "REQUEST event is missing `methodArn`");
        assert!(matches!(
            decode(br#"{"type":"REQUEST","methodArn":"a","headers":{"x":1}}"#, &settings()),
            Err(EventError::Json(_))
        ));
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain-id_1",
            "caf\u{e9} \u{1f600}",
            "q\"uote",
            "back\\slash",
            "nl\nand\ttab",
            "\u{0}\u{1f}\u{7f}",
            "</script>",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(String::from_utf8(out).ok(), serde_json::to_string(s).ok(), "{s:?}");
        }
    }

    #[test]
    fn answers_have_the_node_handlers_shape() {
        let arn = "arn:aws:execute-api:r:a:api/prod/GET/x";
        let policy = Reply::Policy { resource: arn.into() };
        let text = render(&Decision::Anonymous, &policy, &settings(), 0).expect("rendered");
        assert_eq!(
            text,
            r#"{"principalId":"","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:r:a:api/prod/GET/x"}]},"context":{"setCookie":""}}"#
        );
        let denied = Decision::InvalidClaims { errors: Vec::new() };
        let value = |reply: &Reply| -> serde_json::Value {
            serde_json::from_str(&render(&denied, reply, &settings(), 0).expect("rendered")).expect("valid JSON")
        };
        let body = r#"{"message":"invalid claim","claimValidationErrors":[]}"#;
        assert_eq!(
            value(&policy),
            serde_json::json!({"principalId": "", "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": arn}]},
                "context": {"body": body, "setCookie": ""}})
        );
        assert_eq!(
            value(&Reply::Simple),
            serde_json::json!({"isAuthorized": false, "context": {"body": body, "setCookie": ""}})
        );
        assert_eq!(
            value(&Reply::AppSync),
            serde_json::json!({"isAuthorized": false, "resolverContext": {"body": body}, "ttlOverride": 0})
        );
        let mut out = Vec::new();
        Context {
            user_id: Some("u\"1"),
            tenant_id: Some("public"),
            session_handle: Some("h"),
            ..Default::default()
        }
        .write(&mut out);
        assert_eq!(out, br#"{"userId":"u\"1","tenantId":"public","sessionHandle":"h"}"#);
    }

    #[test]
    fn refusals_carry_the_exact_messages() {
        let r = render(&Decision::TryRefresh { reason: String::new() }, &Reply::Simple, &settings(), 0);
        assert_eq!(r.err().map(|e| e.to_string()).as_deref(), Some("Unauthorized"));
        let r = render(&Decision::Error { reason: String::new() }, &Reply::AppSync, &settings(), 0);
        assert!(matches!(r, Err(Refusal::Internal)));
    }

    #[test]
    fn stage_resource_covers_every_method_and_path() {
        let stage = |arn: &str| policy_resource(Cow::Borrowed(arn), PolicyResource::Stage);
        assert_eq!(
            stage("arn:aws:execute-api:us-east-1:123:abc/prod/GET/items/1"),
            "arn:aws:execute-api:us-east-1:123:abc/prod/*/*"
        );
        assert_eq!(
            stage("arn:aws:execute-api:r:a:abc/$default/POST/"),
            "arn:aws:execute-api:r:a:abc/$default/*/*"
        );
        // Not an execute-api ARN we understand: keep it exact (narrower, so it fails closed).
        assert_eq!(stage("arn:x"), "arn:x");
        assert_eq!(stage("arn:x/prod"), "arn:x/prod");
        let exact = policy_resource(Cow::Borrowed("arn:x/prod/GET/a"), PolicyResource::Exact);
        assert_eq!(exact, "arn:x/prod/GET/a");
    }
}
