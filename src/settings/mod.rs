//! Typed settings: `config.toml` layered under `SESSION_AUTHORIZER__*` environment overrides.
//! Every value is typed while it is read (URLs, domains, cookie attributes, header names, claim
//! validators), so a bad one is refused with the key that holds it and nothing downstream parses
//! a setting again. This module imports nothing else of the crate.

pub mod errors;
pub mod routes;
pub mod sections;
pub mod supertokens;
pub mod values;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use errors::{ConfigError, ENV_PREFIX};
pub use routes::{ClaimRule, RouteSettings, SessionRequirement};
pub use sections::{
    AssertionAlgorithm, AssertionSettings, CacheSettings, ClaimHeader, ForwardAuthProxy, ForwardAuthSettings, HeaderSettings,
    HttpApiResponse, LambdaSettings, PathSettings, PolicyResource, ServerSettings, TelemetrySettings, TlsSettings,
};
pub use supertokens::{AntiCsrfMode, AntiCsrfSetting, EmailVerificationMode, SuperTokensSettings};
pub use values::{CookieDomain, CoreHost, CoreUrls, LogFormat, SameSite, Secret, SiteUrl};

/// The smallest `server.max_header_bytes` (hyper's minimum HTTP/1 buffer).
pub const MIN_HEADER_BYTES: usize = 8 * 1024;

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
    pub telemetry: TelemetrySettings,
    pub assertion: AssertionSettings,
    /// First match wins; when none matches, the session is optional and no validator runs.
    pub routes: Vec<RouteSettings>,
}

impl Settings {
    /// Loads `path` (which must exist unless `allow_missing`) under the environment overrides.
    pub fn load(path: &Path, allow_missing: bool) -> Result<Self, ConfigError> {
        if !allow_missing && !path.exists() {
            return Err(ConfigError::Missing(path.display().to_string()));
        }
        Self::from_figment(Figment::from(Serialized::defaults(Settings::default())).merge(Toml::file(path)))
            .map_err(|e| e.located(Some(path)))
    }

    /// Parses TOML text under the environment overrides (used by tests and `dev`).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(text))).map_err(|e| e.located(None))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(errors::from_figment)?;
        settings.validate()?;
        Ok(settings)
    }

    /// The identity assertion's header, when assertions are on.
    pub fn assertion_header(&self) -> Option<&http::HeaderName> {
        self.assertion.enabled.then_some(&self.assertion.header)
    }

    /// The checks that span several keys, or a key and its neighbours.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let st = &self.supertokens;
        if !st.api_base_path.starts_with('/') {
            return Err(ConfigError::invalid("supertokens.api_base_path", "must start with `/`"));
        }
        if st.pass_sdk_routes && st.api_base().is_empty() {
            return Err(ConfigError::invalid(
                "supertokens.pass_sdk_routes",
                "with api_base_path \"/\" the SDK's routes would be every path: set pass_sdk_routes = false and \
                 give the SDK's routes `session = \"public\"` routes of their own",
            ));
        }
        for (key, value) in [
            ("supertokens.jwks_refresh_interval_secs", st.jwks_refresh_interval_secs),
            ("supertokens.core_timeout_ms", st.core_timeout_ms),
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            ("server.header_read_timeout_ms", self.server.header_read_timeout_ms),
            ("server.max_body_bytes", self.server.max_body_bytes as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be above 0"));
            }
        }
        if self.server.max_buffered_body_bytes < self.server.max_body_bytes {
            return Err(ConfigError::invalid(
                "server.max_buffered_body_bytes",
                "must be at least server.max_body_bytes",
            ));
        }
        let tls = &self.server.tls;
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            let key = if tls.cert_file.is_some() {
                "server.tls.key_file"
            } else {
                "server.tls.cert_file"
            };
            return Err(ConfigError::invalid(key, "TLS needs both cert_file and key_file"));
        }
        if tls.client_ca_file.is_some() && !tls.enabled() {
            return Err(ConfigError::invalid(
                "server.tls.client_ca_file",
                "client certificates are checked only over TLS: set cert_file and key_file too",
            ));
        }
        let assertion = &self.assertion;
        if assertion.enabled && assertion.audience.trim().is_empty() {
            return Err(ConfigError::invalid(
                "assertion.audience",
                "an assertion needs the audience its backends check (`aud`)",
            ));
        }
        if !(2..=86_400).contains(&assertion.ttl_secs) {
            return Err(ConfigError::invalid("assertion.ttl_secs", "must be 2 to 86400"));
        }
        if self.headers.names().any(|h| *h == assertion.header) {
            return Err(ConfigError::invalid(
                "assertion.header",
                "is already an identity header of [headers]",
            ));
        }
        let otlp = &self.telemetry.otlp_endpoint;
        if !otlp.is_empty() && !url::Url::parse(otlp).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
            return Err(ConfigError::invalid(
                "telemetry.otlp_endpoint",
                format!("{otlp:?} is not an http:// or https:// URL (an OTLP/gRPC endpoint, e.g. http://collector:4317)"),
            ));
        }
        // hyper's HTTP/1 read buffer cannot be smaller than 8 KiB.
        if self.server.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError::invalid(
                "server.max_header_bytes",
                format!("must be at least {MIN_HEADER_BYTES}"),
            ));
        }
        for (i, route) in self.routes.iter().enumerate() {
            route.check().map_err(|m| ConfigError::invalid(format!("routes[{i}]"), m))?;
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
            global_claims: false,
            ..RouteSettings::any_method(format!("{}/**", st.api_base()), SessionRequirement::Public)
        });
        sdk.into_iter().chain(self.routes.iter().cloned()).collect()
    }

    /// Whether every request meets the same route rule, so the decision cannot depend on the
    /// method or path (the later routes never match after a catch-all).
    fn one_rule_for_every_route(&self) -> bool {
        self.effective_routes().first().is_none_or(RouteSettings::matches_everything)
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
