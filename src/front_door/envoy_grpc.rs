//! Envoy ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`). Allow is status OK
//! with identity headers set (overwriting), `headers_to_remove` for every identity header not
//! set, and Set-Cookie/front-token for the client; a denial carries the HTTP status (401/403) and
//! the SDK's JSON body, since Envoy does not map gRPC codes to HTTP ones.

use std::borrow::Cow;
use std::collections::HashMap;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue,
    HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;

use crate::decision::Decision;
use crate::front_door::denial::{cors_on_denial, denial};
use crate::front_door::http_proxy::cookies_joined_by_envoy;
use crate::front_door::identity;
use crate::request::{AuthRequest, FrontDoor, METHOD_OVERRIDE_HEADERS, TraceContext};
use crate::settings::Settings;
use crate::state::AppState;

/// gRPC status codes used in `CheckResponse.status`.
const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const UNAUTHENTICATED: i32 = 16;

pub struct CheckService {
    state: AppState,
}

/// The Check service; a message may carry the original request's headers and (with Envoy's
/// `with_request_body`) its body, so it is bounded by `max_header_bytes + max_body_bytes`
/// (larger ones get `OUT_OF_RANGE` before any decoding work).
pub fn service(state: AppState) -> AuthorizationServer<CheckService> {
    let server = &state.server;
    let limit = server.max_header_bytes.saturating_add(server.max_body_bytes);
    AuthorizationServer::new(CheckService { state }).max_decoding_message_size(limit)
}

/// The request headers Envoy sent: the `headers` map, or `header_map` with `encode_raw_headers`.
struct GrpcHeaders {
    map: HashMap<String, Vec<String>>,
    /// Whether the headers came as `header_map` (one entry per line) rather than joined.
    raw: bool,
}

impl GrpcHeaders {
    fn from_request(req: &CheckRequest) -> (Self, String, String) {
        let http = req
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut raw = false;
        let (mut method, mut path) = (String::from("GET"), String::from("/"));
        if let Some(http) = http {
            for (k, v) in &http.headers {
                map.entry(k.to_ascii_lowercase()).or_default().push(v.clone());
            }
            if let Some(header_map) = &http.header_map {
                raw = !header_map.headers.is_empty();
                for h in &header_map.headers {
                    let value = if h.raw_value.is_empty() {
                        h.value.clone()
                    } else {
                        String::from_utf8_lossy(&h.raw_value).into_owned()
                    };
                    map.entry(h.key.to_ascii_lowercase()).or_default().push(value);
                }
            }
            if !http.method.is_empty() {
                method = http.method.clone();
            }
            if !http.path.is_empty() {
                path = http.path.clone();
            }
        }
        (Self { map, raw }, method, path)
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// The request's cookies. Envoy sends each `Cookie` line on its own with
    /// `encode_raw_headers`; without it the `headers` map holds them joined with `,`.
    fn cookie(&self) -> Option<Cow<'_, str>> {
        let joined = AuthRequest::join_cookies(self.map.get("cookie")?.iter().map(|v| Cow::Borrowed(v.as_str())).collect());
        if self.raw { joined } else { joined.map(cookies_joined_by_envoy) }
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.map.get(name).into_iter().flatten().map(String::as_str)
    }
}

fn header(key: &str, value: &str, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append_action: action as i32,
        keep_empty_value: false,
        ..Default::default()
    }
}

pub fn check_response(decision: &Decision, settings: &Settings, origin: Option<&str>) -> Result<CheckResponse, tonic::Status> {
    let response = match denial(decision) {
        None => {
            let upstream = identity::upstream(&settings.headers, settings.assertion_header(), decision);
            let headers_to_remove = upstream.remove.iter().map(|n| (*n).to_owned()).collect();
            let headers = upstream
                .set
                .iter()
                .map(|(k, v)| header(k.as_str(), v, HeaderAppendAction::OverwriteIfExistsOrAdd))
                .collect();
            let mut response_headers_to_add = Vec::new();
            if let Decision::Allow { effects, .. } = decision {
                for c in &effects.set_cookies {
                    response_headers_to_add.push(header("set-cookie", c, HeaderAppendAction::AppendIfExistsOrAdd));
                }
                for (k, v) in &effects.headers {
                    response_headers_to_add.push(header(k, v, HeaderAppendAction::OverwriteIfExistsOrAdd));
                }
            }
            CheckResponse {
                status: Some(rpc::Status {
                    code: OK,
                    message: String::new(),
                    details: Vec::new(),
                }),
                http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                    headers,
                    headers_to_remove,
                    response_headers_to_add,
                    ..Default::default()
                })),
                ..Default::default()
            }
        }
        Some((500, _)) => return Err(tonic::Status::unavailable("authorizer could not decide (core failure)")),
        Some((400, body)) => CheckResponse {
            status: Some(rpc::Status {
                code: INVALID_ARGUMENT,
                message: decision.outcome().as_str().to_owned(),
                details: Vec::new(),
            }),
            http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                status: Some(HttpStatus { code: 400 }),
                headers: vec![header(
                    "content-type",
                    "application/json",
                    HeaderAppendAction::OverwriteIfExistsOrAdd,
                )],
                body,
            })),
            ..Default::default()
        },
        Some((code, body)) => {
            // The body travels in the response itself; no need for NGINX's body header here.
            let mut headers = vec![header(
                "content-type",
                "application/json",
                HeaderAppendAction::OverwriteIfExistsOrAdd,
            )];
            for (k, v) in cors_on_denial(origin, settings.supertokens.website_domain.origin()) {
                headers.push(header(k, &v, HeaderAppendAction::OverwriteIfExistsOrAdd));
            }
            if let Decision::Unauthorised { effects, .. } = decision {
                for c in &effects.set_cookies {
                    headers.push(header("set-cookie", c, HeaderAppendAction::AppendIfExistsOrAdd));
                }
                for (k, v) in &effects.headers {
                    headers.push(header(k, v, HeaderAppendAction::AppendIfExistsOrAdd));
                }
            }
            CheckResponse {
                status: Some(rpc::Status {
                    code: if code == 401 { UNAUTHENTICATED } else { PERMISSION_DENIED },
                    message: decision.outcome().as_str().to_owned(),
                    details: Vec::new(),
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus { code: i32::from(code) }),
                    headers,
                    body,
                })),
                ..Default::default()
            }
        }
    };
    Ok(response)
}

#[tonic::async_trait]
impl Authorization for CheckService {
    async fn check(&self, request: tonic::Request<CheckRequest>) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let req = request.into_inner();
        let (headers, method, path) = GrpcHeaders::from_request(&req);
        let origin = headers.first("origin");
        let auth = AuthRequest {
            front_door: FrontDoor::EnvoyGrpc,
            method: Cow::Borrowed(method.as_str()),
            path: Cow::Borrowed(path.as_str()),
            authorization: headers.first("authorization").map(Cow::Borrowed),
            cookie: headers.cookie(),
            anti_csrf: headers.first("anti-csrf").map(Cow::Borrowed),
            has_rid: headers.first("rid").is_some(),
            method_overrides: METHOD_OVERRIDE_HEADERS
                .iter()
                .flat_map(|name| headers.all(name))
                .map(|v| Cow::Borrowed(v.trim()))
                .collect(),
            preflight: headers.first("access-control-request-method").is_some(),
            // Envoy sets `x-request-id` on every request it routes.
            request_id: headers
                .first("x-request-id")
                .and_then(AuthRequest::request_id_from)
                .map(Cow::Borrowed),
            trace: TraceContext::from_headers(
                headers.first("traceparent"),
                headers.first("b3"),
                headers.first("x-b3-traceid"),
                headers.first("x-b3-spanid"),
            ),
        };
        let live = self.state.live();
        let decision = live.authorizer.decide(&auth).await;
        check_response(&decision, &live.settings, origin).map(tonic::Response::new)
    }
}

/// Server reflection, both the v1 API and the v1alpha one older clients (grpcurl 1.8) speak.
pub fn reflection() -> (
    Option<tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>>,
    Option<tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>>,
) {
    let builder = || tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(DESCRIPTOR_SET);
    (builder().build_v1().ok(), builder().build_v1alpha().ok())
}

/// `envoy.service.auth.v3` and its imports, as a serialized `FileDescriptorSet`.
const DESCRIPTOR_SET: &[u8] = include_bytes!("../../proto/ext_authz_descriptor_set.bin");
