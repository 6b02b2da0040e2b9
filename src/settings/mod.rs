//! Typed settings: `config.toml` layered under `SESSION_AUTHORIZER__*` environment overrides,
//! validated once at start so a bad value is reported with the key that holds it.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

pub mod errors;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::policy::claims::ValidatorSpec;

/// Prefix of every environment override; `__` separates the section from the key.
pub const ENV_PREFIX: &str = "SESSION_AUTHORIZER__";

/// The smallest `server.max_header_bytes` (hyper's minimum HTTP/1 buffer).
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not TOML, or cannot be read.
    #[error("cannot read configuration: {0}")]
    Load(String),
    /// A key's value is refused; `origin` is ` (FILE, line N)` or ` (from VARIABLE)` when known.
    #[error("invalid configuration: `{key}`{origin}: {message}")]
    Invalid { key: String, message: String, origin: String },
    #[error("configuration file `{0}` does not exist")]
    Missing(String),
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
            origin: String::new(),
        }
    }

    /// Says where a refused key was set: its environment variable when there is one, else its
    /// line in `file`.
    fn placed(self, file: Option<&Path>) -> Self {
        match self {
            Self::Invalid { key, message, origin } if origin.is_empty() => {
                let names: Vec<&str> = key
                    .split(['.', '['])
                    .filter(|s| !s.ends_with(']') && !s.is_empty())
                    .take(2)
                    .collect();
                let var = format!("{ENV_PREFIX}{}", names.join("__").to_ascii_uppercase());
                let origin = if std::env::var_os(&var).is_some() {
                    format!(" (from {var})")
                } else {
                    file.map(|f| crate::settings::errors::origin_in_file(f, &key)).unwrap_or_default()
                };
                Self::Invalid { key, message, origin }
            }
            other => other,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub supertokens: SuperTokensSettings,
    pub headers: HeaderSettings,
    pub lambda: LambdaSettings,
    pub cache: CacheSettings,
    pub paths: PathSettings,
    pub forward_auth: ForwardAuthSettings,
    /// First match wins; when none matches, the session is optional and no validator runs.
    pub routes: Vec<RouteSettings>,
}

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
    /// Log format: "json" (default, one object per line) or "text".
    pub log_format: String,
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
            log_format: "json".into(),
        }
    }
}

/// A secret that never prints: `Debug`, `Display` and serialisation all redact it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"[redacted]\"" })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AntiCsrfSetting {
    /// The SDK default: VIA_CUSTOM_HEADER when cookies are `SameSite=None`, else NONE.
    Auto,
    None,
    ViaToken,
    ViaCustomHeader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailVerificationMode {
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuperTokensSettings {
    /// `;`-separated core URLs, tried in order, as in the SDKs.
    pub connection_uri: String,
    pub api_key: Secret,
    pub jwks_refresh_interval_secs: u64,
    /// A kid miss refetches the JWKS at most once per this window (the SDK's 500 ms).
    pub jwks_cooldown_ms: u64,
    /// Keys are kept and used this long past their refresh time while the core is unreachable.
    pub jwks_max_stale_secs: u64,
    pub anti_csrf: AntiCsrfSetting,
    pub api_domain: String,
    pub website_domain: String,
    /// The SDK's `apiBasePath`: the refresh-token cookie path is `{api_base_path}/session/refresh`.
    pub api_base_path: String,
    /// Whether the backend SDK's own routes (`{api_base_path}/**`: sign-in, refresh, sign-out)
    /// are served behind this authorizer and pass untouched (a `public` route before every
    /// other). False when the SDK's API is elsewhere.
    pub pass_sdk_routes: bool,
    pub cookie_domain: Option<String>,
    /// Overrides the derived SameSite (`lax`, `strict`, `none`).
    pub cookie_same_site: Option<String>,
    /// Overrides the derived `Secure` flag (default: api_domain is https).
    pub cookie_secure: Option<bool>,
    pub check_database: bool,
    /// How long the core's answer to a `check_database` verify is reused for the same token:
    /// a revoked session is refused at most this long after revocation. 0 asks on every request,
    /// as the SDK does.
    pub check_database_cache_ms: u64,
    pub use_dynamic_access_token_signing_key: bool,
    pub email_verification: EmailVerificationMode,
    pub mfa: bool,
    /// Leeway on `exp`/`nbf`; the SDK has none.
    pub clock_skew_secs: u64,
    /// Timeout of one call to the core (JWKS, verify, regenerate, claim lookups), per host.
    pub core_timeout_ms: u64,
}

impl Default for SuperTokensSettings {
    fn default() -> Self {
        Self {
            connection_uri: "http://localhost:3567".into(),
            api_key: Secret::default(),
            jwks_refresh_interval_secs: 14_400,
            jwks_cooldown_ms: 500,
            jwks_max_stale_secs: 86_400,
            anti_csrf: AntiCsrfSetting::Auto,
            api_domain: "http://localhost:3001".into(),
            website_domain: "http://localhost:3000".into(),
            api_base_path: "/auth".into(),
            pass_sdk_routes: true,
            cookie_domain: None,
            cookie_same_site: None,
            cookie_secure: None,
            check_database: false,
            check_database_cache_ms: 0,
            use_dynamic_access_token_signing_key: true,
            email_verification: EmailVerificationMode::Off,
            mfa: false,
            clock_skew_secs: 0,
            core_timeout_ms: 5_000,
        }
    }
}

/// Maps a claim of the verified session to a header sent upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimHeader {
    pub claim: String,
    pub header: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderSettings {
    pub user_id: String,
    pub tenant_id: Option<String>,
    pub session_handle: Option<String>,
    pub claims: Vec<ClaimHeader>,
}

impl Default for HeaderSettings {
    fn default() -> Self {
        Self {
            user_id: "x-user-id".into(),
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

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub fn method_header(self) -> &'static str {
        match self {
            ForwardAuthProxy::Nginx => "x-original-method",
            ForwardAuthProxy::Traefik | ForwardAuthProxy::Caddy => "x-forwarded-method",
        }
    }

    pub fn uri_header(self) -> &'static str {
        match self {
            ForwardAuthProxy::Nginx => "x-original-uri",
            ForwardAuthProxy::Traefik | ForwardAuthProxy::Caddy => "x-forwarded-uri",
        }
    }
}

/// Where `/forward-auth` reads the original request: only from the headers the proxy sets
/// (overwriting any copy a client sent), never from another forwarding header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardAuthSettings {
    pub proxy: ForwardAuthProxy,
    /// Overrides the proxy's method header.
    pub method_header: Option<String>,
    /// Overrides the proxy's URI header; its value is a path (`/a?b`) or an absolute URL.
    pub uri_header: Option<String>,
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
    pub fn method_header(&self) -> &str {
        self.method_header.as_deref().unwrap_or(self.proxy.method_header())
    }

    pub fn uri_header(&self) -> &str {
        self.uri_header.as_deref().unwrap_or(self.proxy.uri_header())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionRequirement {
    Optional,
    Required,
    /// Credentials are not read at all: allowed, with no identity (client copies removed). For
    /// the backend SDK's own routes: its refresh call carries an expired access token, or a
    /// refresh token as `Authorization: Bearer`, neither of which is a session to judge.
    Public,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    #[serde(default = "any_method")]
    pub methods: Vec<String>,
    pub path: String,
    #[serde(default = "optional_session")]
    pub session: SessionRequirement,
    #[serde(default)]
    pub check_database: Option<bool>,
    #[serde(default)]
    pub claims: Vec<ValidatorSpec>,
    /// Whether the global validators (`email_verification`, `mfa`) apply here; a route validator
    /// on the same claim replaces the global one either way (the SDK's
    /// `overrideGlobalClaimValidators`).
    #[serde(default = "yes")]
    pub global_claims: bool,
    /// Tenants (`tId`, `public` when absent) whose sessions may use the route; empty allows all.
    #[serde(default)]
    pub tenants: Vec<String>,
}

fn yes() -> bool {
    true
}

fn any_method() -> Vec<String> {
    vec!["*".into()]
}
fn optional_session() -> SessionRequirement {
    SessionRequirement::Optional
}

impl Settings {
    /// Loads `path` (which must exist unless `allow_missing`) under the environment overrides.
    pub fn load(path: &Path, allow_missing: bool) -> Result<Self, ConfigError> {
        if !allow_missing && !path.exists() {
            return Err(ConfigError::Missing(path.display().to_string()));
        }
        Self::from_figment(Figment::from(Serialized::defaults(Settings::default())).merge(Toml::file(path)))
            .map_err(|e| e.placed(Some(path)))
    }

    /// Parses TOML text under the environment overrides (used by tests and `dev`).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(text))).map_err(|e| e.placed(None))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(crate::settings::errors::from_figment)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let st = &self.supertokens;
        let hosts =
            crate::core_api::parse_connection_uri(&st.connection_uri).map_err(|m| ConfigError::invalid("supertokens.connection_uri", m))?;
        if hosts.is_empty() {
            return Err(ConfigError::invalid("supertokens.connection_uri", "no core URL given"));
        }
        for (key, value) in [
            ("supertokens.api_domain", &st.api_domain),
            ("supertokens.website_domain", &st.website_domain),
        ] {
            let url = url::Url::parse(value).map_err(|e| ConfigError::invalid(key, format!("`{value}` is not a URL: {e}")))?;
            if url.host_str().is_none() {
                return Err(ConfigError::invalid(key, format!("`{value}` has no host")));
            }
        }
        if !st.api_base_path.starts_with('/') {
            return Err(ConfigError::invalid("supertokens.api_base_path", "must start with `/`"));
        }
        if st.pass_sdk_routes && st.api_base_path.trim_end_matches('/').is_empty() {
            return Err(ConfigError::invalid(
                "supertokens.pass_sdk_routes",
                "with api_base_path \"/\" the SDK's routes would be every path: set pass_sdk_routes = false and \
                 give the SDK's routes `session = \"public\"` routes of their own",
            ));
        }
        if let Some(same_site) = &st.cookie_same_site
            && !matches!(same_site.to_ascii_lowercase().as_str(), "lax" | "strict" | "none")
        {
            return Err(ConfigError::invalid("supertokens.cookie_same_site", "must be lax, strict or none"));
        }
        if st.jwks_refresh_interval_secs == 0 {
            return Err(ConfigError::invalid("supertokens.jwks_refresh_interval_secs", "must be above 0"));
        }
        if st.core_timeout_ms == 0 {
            return Err(ConfigError::invalid("supertokens.core_timeout_ms", "must be above 0"));
        }
        for (key, name) in std::iter::once(("headers.user_id", Some(&self.headers.user_id)))
            .chain([
                ("headers.tenant_id", self.headers.tenant_id.as_ref()),
                ("headers.session_handle", self.headers.session_handle.as_ref()),
            ])
            .chain(self.headers.claims.iter().map(|c| ("headers.claims.header", Some(&c.header))))
            .chain([
                ("forward_auth.method_header", self.forward_auth.method_header.as_ref()),
                ("forward_auth.uri_header", self.forward_auth.uri_header.as_ref()),
            ])
        {
            if let Some(name) = name
                && http::HeaderName::from_bytes(name.as_bytes()).is_err()
            {
                return Err(ConfigError::invalid(key, format!("`{name}` is not a valid header name")));
            }
        }
        if self.server.max_body_bytes == 0 {
            return Err(ConfigError::invalid("server.max_body_bytes", "must be above 0"));
        }
        if self.server.max_buffered_body_bytes < self.server.max_body_bytes {
            return Err(ConfigError::invalid(
                "server.max_buffered_body_bytes",
                "must be at least server.max_body_bytes",
            ));
        }
        // hyper's HTTP/1 read buffer cannot be smaller than 8 KiB.
        if self.server.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError::invalid(
                "server.max_header_bytes",
                format!("must be at least {MIN_HEADER_BYTES}"),
            ));
        }
        for (key, value) in [
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            ("server.header_read_timeout_ms", self.server.header_read_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be above 0"));
            }
        }
        if !matches!(self.server.log_format.as_str(), "json" | "text") {
            return Err(ConfigError::invalid("server.log_format", "must be json or text"));
        }
        for (i, route) in self.routes.iter().enumerate() {
            crate::policy::Route::compile(route, &crate::policy::claims::global_validators(st), &self.paths)
                .map_err(|m| ConfigError::invalid(format!("routes[{i}]"), m))?;
        }
        if self.lambda.policy_resource == PolicyResource::Stage && !self.one_rule_for_every_route() {
            return Err(ConfigError::invalid(
                "lambda.policy_resource",
                "\"stage\" lets API Gateway reuse one cached policy for every method and path, so an allow on one \
                 route would open the others: it needs no [[routes]], or a first route that matches everything \
                 (methods = [\"*\"], path = \"/**\"), and supertokens.pass_sdk_routes = false (the SDK's routes \
                 pass without a session check); otherwise keep \"exact\" and turn API Gateway's result cache off",
            ));
        }
        Ok(())
    }

    /// The routes in force: the SDK's own, when they pass untouched, then `[[routes]]`.
    pub fn effective_routes(&self) -> Vec<RouteSettings> {
        let st = &self.supertokens;
        let sdk = st.pass_sdk_routes.then(|| RouteSettings {
            methods: any_method(),
            path: format!("{}/**", st.api_base_path.trim_end_matches('/')),
            session: SessionRequirement::Public,
            check_database: None,
            claims: Vec::new(),
            global_claims: false,
            tenants: Vec::new(),
        });
        sdk.into_iter().chain(self.routes.iter().cloned()).collect()
    }

    /// Whether every request meets the same route rule, so the decision cannot depend on the
    /// method or path (the later routes never match after a catch-all).
    fn one_rule_for_every_route(&self) -> bool {
        self.effective_routes()
            .first()
            .is_none_or(|r| r.path == "/**" && r.methods.iter().any(|m| m == "*"))
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_policy_resource_needs_one_rule_for_every_route() {
        let stage = "[supertokens]\npass_sdk_routes = false\n[lambda]\npolicy_resource = \"stage\"\n";
        assert!(Settings::from_toml_str(stage).is_ok());
        let catch_all = "[[routes]]\npath = \"/**\"\nsession = \"required\"\nclaims = [{ claim = \"st-role\", includes = \"admin\" }]\n[[routes]]\npath = \"/x\"\n";
        assert!(Settings::from_toml_str(&format!("{stage}{catch_all}")).is_ok());
        for routes in [
            "[[routes]]\npath = \"/admin/**\"\nsession = \"required\"\n",
            "[[routes]]\nmethods = [\"GET\"]\npath = \"/**\"\n",
        ] {
            let err = Settings::from_toml_str(&format!("{stage}{routes}")).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains("`lambda.policy_resource`")),
                "{routes}: {err:?}"
            );
            // The default (exact) takes any routes.
            assert!(Settings::from_toml_str(routes).is_ok());
        }
        assert!(Settings::from_toml_str("[lambda]\npolicy_resource = \"any\"\n").is_err());
    }
}
