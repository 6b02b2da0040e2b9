//! The smaller sections: `[server]`, `[headers]`, `[lambda]`, `[cache]`, `[paths]` and
//! `[forward_auth]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use http::HeaderName;
use serde::{Deserialize, Serialize};

use super::values::{LogFormat, header_name, optional_header_name};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub http_listen: SocketAddr,
    pub grpc_listen: SocketAddr,
    /// Largest request body accepted (Lambda events); larger ones get 413. The default is
    /// Lambda's own limit on a synchronous invocation's payload, so every event API Gateway or
    /// AppSync can send is read.
    pub max_body_bytes: usize,
    /// Request bodies held in memory at once, all requests together; a body that would pass it
    /// is refused with 503 (a few large events cannot take all the memory).
    pub max_buffered_body_bytes: usize,
    /// Requests that take longer are answered 503 rather than left hanging.
    pub request_timeout_ms: u64,
    /// Requests in flight at once, HTTP and gRPC together; above it new ones are shed (503,
    /// gRPC `RESOURCE_EXHAUSTED`).
    pub max_concurrency: usize,
    /// An HTTP/1 client must send a whole request head within this time (counted from the
    /// connection's first byte wait, and again for each keep-alive request), else it is closed.
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers) accepted on HTTP/1, and largest header
    /// list on HTTP/2; larger ones get 431. A gRPC `Check` message may carry this plus
    /// `max_body_bytes`.
    pub max_header_bytes: usize,
    pub log_format: LogFormat,
    /// After SIGTERM, `/readyz` fails at once while both listeners keep serving this long, so
    /// that load balancers and Kubernetes endpoints stop sending before the listeners close.
    pub shutdown_delay_ms: u64,
    /// Then the listeners close and requests in flight have this long to finish.
    pub shutdown_timeout_ms: u64,
    /// How often `serve` looks at the configuration file and reloads it when its content
    /// changed (0: only on SIGHUP).
    pub config_watch_interval_ms: u64,
    /// TLS on both listeners (off unless `cert_file` and `key_file` are set).
    pub tls: TlsSettings,
}

/// How the identity assertion is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssertionAlgorithm {
    /// ECDSA with P-256 and SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl AssertionAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            AssertionAlgorithm::Es256 => "ES256",
            AssertionAlgorithm::EdDsa => "EdDSA",
        }
    }
}

/// `[assertion]`: a signed JWT naming the user, sent upstream with every allowed request that
/// has a session, verifiable against `GET /.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssertionSettings {
    pub enabled: bool,
    #[serde(with = "header_name")]
    pub header: HeaderName,
    /// `aud`: who the assertion is for (required when enabled).
    pub audience: String,
    /// `iss`.
    pub issuer: String,
    /// Lifetime of one assertion; one is reused for the same token, route and method while it
    /// has at least half of it left.
    pub ttl_secs: u64,
    /// What the JWT carries besides `sub` (the user id): `tenant_id`, `session_handle`, `roles`,
    /// `permissions`, or the name of any claim of the access token with a primitive value.
    pub claims: Vec<String>,
    pub algorithm: AssertionAlgorithm,
    /// PKCS#8 PEM private key; unset: a key generated at start (one replica only).
    pub key_file: Option<PathBuf>,
}

impl Default for AssertionSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            header: HeaderName::from_static("x-session-assertion"),
            audience: String::new(),
            issuer: "session-authorizer".into(),
            ttl_secs: 60,
            claims: ["tenant_id", "session_handle", "roles", "permissions"].map(String::from).to_vec(),
            algorithm: AssertionAlgorithm::Es256,
            key_file: None,
        }
    }
}

/// `[telemetry]`: traces exported over OTLP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// An OpenTelemetry collector's OTLP/gRPC endpoint (`http://collector:4317`); empty: no
    /// spans are made or sent.
    pub otlp_endpoint: String,
    /// `service.name` of the spans.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: "session-authorizer".into(),
        }
    }
}

impl TelemetrySettings {
    pub fn enabled(&self) -> bool {
        !self.otlp_endpoint.is_empty()
    }
}

/// `[server.tls]`: PEM files, re-read at every reload so that a renewed certificate is served
/// to new connections without a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// The certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// The private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// CA certificates: when set, a client must present a certificate one of them issued, or
    /// the handshake fails.
    pub client_ca_file: Option<PathBuf>,
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            http_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 9191)),
            max_body_bytes: 6 * 1024 * 1024,
            max_buffered_body_bytes: 256 * 1024 * 1024,
            request_timeout_ms: 5_000,
            max_concurrency: 4_096,
            header_read_timeout_ms: 10_000,
            max_header_bytes: 64 * 1024,
            log_format: LogFormat::Json,
            // Kubernetes' default grace period is 30 s: 5 s for endpoints to drop the pod, 20 s
            // for requests in flight, 5 s to spare.
            shutdown_delay_ms: 5_000,
            shutdown_timeout_ms: 20_000,
            config_watch_interval_ms: 500,
            tls: TlsSettings::default(),
        }
    }
}

/// Maps a claim of the verified session to a header sent upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimHeader {
    pub claim: String,
    #[serde(with = "header_name")]
    pub header: HeaderName,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderSettings {
    #[serde(with = "header_name")]
    pub user_id: HeaderName,
    #[serde(with = "optional_header_name")]
    pub tenant_id: Option<HeaderName>,
    #[serde(with = "optional_header_name")]
    pub session_handle: Option<HeaderName>,
    pub claims: Vec<ClaimHeader>,
}

impl HeaderSettings {
    /// Every identity header name configured: the user id, then the tenant, the session handle
    /// and the claim headers that are set.
    pub fn names(&self) -> impl Iterator<Item = &HeaderName> {
        std::iter::once(&self.user_id)
            .chain(self.tenant_id.as_ref())
            .chain(self.session_handle.as_ref())
            .chain(self.claims.iter().map(|c| &c.header))
    }
}

impl Default for HeaderSettings {
    fn default() -> Self {
        Self {
            user_id: HeaderName::from_static("x-user-id"),
            tenant_id: None,
            session_handle: None,
            claims: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpApiResponse {
    /// `{isAuthorized, context}` (needs `enableSimpleResponses`).
    Simple,
    /// An IAM policy on `routeArn`.
    Iam,
}

/// The `Resource` of an IAM policy answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyResource {
    /// The event's `methodArn` (`routeArn`): right only when API Gateway does not cache results.
    Exact,
    /// `{api}/{stage}/*/*`: one cached policy serves every method and path of the stage, which
    /// is safe only when the decision does not depend on them (checked by `validate`).
    Stage,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LambdaSettings {
    pub http_api_response: HttpApiResponse,
    /// Upper bound of AppSync's `ttlOverride` on allow; 0 disables AppSync caching.
    pub appsync_ttl_secs: u64,
    pub policy_resource: PolicyResource,
}

impl Default for LambdaSettings {
    fn default() -> Self {
        Self {
            http_api_response: HttpApiResponse::Simple,
            appsync_ttl_secs: 0,
            policy_resource: PolicyResource::Exact,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Verified sessions kept in memory (0 disables the cache).
    pub max_entries: u64,
    /// No cached session outlives this, whatever its `exp`.
    pub max_ttl_secs: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_ttl_secs: 300,
        }
    }
}

/// How request paths are read before routes are matched (`src/request_target/` has the readings).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathSettings {
    /// Whether a backend may route paths without regard to case (Express's default, ASP.NET
    /// Core, IIS): then a path is also matched case-insensitively, and refused when that finds
    /// another route. Set false only when every backend routes case-sensitively.
    pub case_insensitive_backends: bool,
}

impl Default for PathSettings {
    fn default() -> Self {
        Self {
            case_insensitive_backends: true,
        }
    }
}

/// The proxy in front of `/forward-auth`, which decides the headers that carry the original
/// request's method and URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardAuthProxy {
    /// NGINX `auth_request` (and ingress-nginx): `X-Original-Method`, `X-Original-URI`.
    Nginx,
    /// Traefik ForwardAuth: `X-Forwarded-Method`, `X-Forwarded-Uri`.
    Traefik,
    /// Caddy `forward_auth`: `X-Forwarded-Method`, `X-Forwarded-Uri`.
    Caddy,
}

impl ForwardAuthProxy {
    pub fn method_header(self) -> HeaderName {
        HeaderName::from_static(match self {
            ForwardAuthProxy::Nginx => "x-original-method",
            ForwardAuthProxy::Traefik | ForwardAuthProxy::Caddy => "x-forwarded-method",
        })
    }

    pub fn uri_header(self) -> HeaderName {
        HeaderName::from_static(match self {
            ForwardAuthProxy::Nginx => "x-original-uri",
            ForwardAuthProxy::Traefik | ForwardAuthProxy::Caddy => "x-forwarded-uri",
        })
    }
}

/// Where `/forward-auth` reads the original request: only from the headers the proxy sets
/// (overwriting any copy a client sent), never from another forwarding header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthSettings {
    pub proxy: ForwardAuthProxy,
    /// Overrides the proxy's method header.
    #[serde(with = "optional_header_name")]
    pub method_header: Option<HeaderName>,
    /// Overrides the proxy's URI header; its value is a path (`/a?b`) or an absolute URL.
    #[serde(with = "optional_header_name")]
    pub uri_header: Option<HeaderName>,
}

impl Default for ForwardAuthSettings {
    fn default() -> Self {
        Self {
            proxy: ForwardAuthProxy::Nginx,
            method_header: None,
            uri_header: None,
        }
    }
}

impl ForwardAuthSettings {
    /// The header that carries the original method: the override, else the proxy's.
    pub fn method_header(&self) -> HeaderName {
        self.method_header.clone().unwrap_or_else(|| self.proxy.method_header())
    }

    /// The header that carries the original URI: the override, else the proxy's.
    pub fn uri_header(&self) -> HeaderName {
        self.uri_header.clone().unwrap_or_else(|| self.proxy.uri_header())
    }
}
