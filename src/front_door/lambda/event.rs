//! Reading an event: which contract it follows (REST REQUEST or TOKEN, HTTP API 2.0 or 1.0,
//! AppSync), the request to decide, and how the answer must be shaped.

use std::borrow::Cow;

use serde::Deserialize;

use super::EventError;
use super::borrowed::{COOKIE, Headers, METHOD_OVERRIDES, MultiHeaders, Text, borrowed};
use crate::request::{AuthRequest, FrontDoor};
use crate::settings::{HttpApiResponse, LambdaSettings, PolicyResource};

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
    #[serde(borrow, default, deserialize_with = "borrowed")]
    request_id: Option<Cow<'a, str>>,
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
    /// API Gateway's and AppSync's `requestContext.requestId`, when it is one worth logging.
    fn request_id(&self) -> Option<Cow<'a, str>> {
        let id = self.request_context.as_ref()?.request_id.clone()?;
        AuthRequest::request_id_from(&id).is_some().then_some(id)
    }

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
            let mut request = token_request(FrontDoor::LambdaToken, token, verb.to_owned(), path);
            request.request_id = ev.request_id();
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
                (Some(token), Some(_)) => {
                    let mut request = token_request(FrontDoor::AppSync, token.clone(), "POST".into(), "/graphql".into());
                    request.request_id = ev.request_id();
                    Ok(Decoded {
                        request,
                        reply: Reply::AppSync,
                    })
                }
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
        request_id: ev.request_id(),
        trace: None,
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
        request_id: None,
        trace: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LambdaSettings {
        LambdaSettings::default()
    }

    #[test]
    fn the_request_id_comes_from_the_request_context() {
        let rest = br#"{"type":"REQUEST","methodArn":"arn:aws:execute-api:r:a:api/prod/GET/x","path":"/x","httpMethod":"GET","requestContext":{"requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef"}}"#;
        let d = decode(rest, &settings()).expect("rest");
        assert_eq!(d.request.request_id.as_deref(), Some("c6af9ac6-7b61-11e6-9a41-93e8deadbeef"));
        let spaced = br#"{"type":"REQUEST","methodArn":"arn:aws:execute-api:r:a:api/prod/GET/x","path":"/x","httpMethod":"GET","requestContext":{"requestId":"a b"}}"#;
        assert_eq!(
            decode(spaced, &settings()).expect("rest").request.request_id,
            None,
            "not logged as sent"
        );
        let appsync = br#"{"authorizationToken":"t","requestContext":{"apiId":"x","requestId":"r-1"}}"#;
        assert_eq!(
            decode(appsync, &settings()).expect("appsync").request.request_id.as_deref(),
            Some("r-1")
        );
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
