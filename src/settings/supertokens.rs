//! `[supertokens]`: the core to ask, and the SDK settings whose decisions the authorizer repeats.

use serde::{Deserialize, Serialize};

use super::values::{CookieDomain, CoreUrls, SameSite, Secret, SiteUrl};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AntiCsrfSetting {
    /// The SDK default: VIA_CUSTOM_HEADER when cookies are `SameSite=None`, else NONE.
    Auto,
    None,
    ViaToken,
    ViaCustomHeader,
}

/// The anti-CSRF mode in force, AUTO resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AntiCsrfMode {
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
    pub connection_uri: CoreUrls,
    pub api_key: Secret,
    pub jwks_refresh_interval_secs: u64,
    /// A kid miss refetches the JWKS at most once per this window (the SDK's 500 ms).
    pub jwks_cooldown_ms: u64,
    /// Keys are kept and used this long past their refresh time while the core is unreachable.
    pub jwks_max_stale_secs: u64,
    pub anti_csrf: AntiCsrfSetting,
    pub api_domain: SiteUrl,
    pub website_domain: SiteUrl,
    /// The SDK's `apiBasePath`: the refresh-token cookie path is `{api_base_path}/session/refresh`.
    pub api_base_path: String,
    /// Whether the backend SDK's own routes (`{api_base_path}/**`: sign-in, refresh, sign-out)
    /// are served behind this authorizer and pass untouched (a `public` route before every
    /// other). False when the SDK's API is elsewhere.
    pub pass_sdk_routes: bool,
    pub cookie_domain: Option<CookieDomain>,
    /// Overrides the derived SameSite (`lax`, `strict`, `none`).
    pub cookie_same_site: Option<SameSite>,
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
            connection_uri: CoreUrls::localhost(),
            api_key: Secret::default(),
            jwks_refresh_interval_secs: 14_400,
            jwks_cooldown_ms: 500,
            jwks_max_stale_secs: 86_400,
            anti_csrf: AntiCsrfSetting::Auto,
            api_domain: SiteUrl::localhost(3001),
            website_domain: SiteUrl::localhost(3000),
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

impl SuperTokensSettings {
    /// `api_base_path` without its trailing `/` (`""` for the root).
    pub fn api_base(&self) -> &str {
        self.api_base_path.trim_end_matches('/')
    }

    /// The refresh-token cookie's path.
    pub fn refresh_path(&self) -> String {
        format!("{}/session/refresh", self.api_base())
    }

    /// The SDK's default `cookieSecure`: the API is served over https.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure.unwrap_or_else(|| self.api_domain.is_https())
    }

    /// The SDK's default `cookieSameSite`: `none` when the sites differ (registrable domain or
    /// scheme), else `lax`; a configured value wins.
    pub fn same_site(&self) -> SameSite {
        if let Some(v) = self.cookie_same_site {
            return v;
        }
        let (api, web) = (&self.api_domain, &self.website_domain);
        if api.scheme() == web.scheme() && site_of(api.host()) == site_of(web.host()) {
            SameSite::Lax
        } else {
            SameSite::None
        }
    }

    /// `antiCsrf`, with AUTO resolved as the SDK does: VIA_CUSTOM_HEADER for `SameSite=None`
    /// cookies, else NONE.
    pub fn anti_csrf_mode(&self) -> AntiCsrfMode {
        match self.anti_csrf {
            AntiCsrfSetting::None => AntiCsrfMode::None,
            AntiCsrfSetting::ViaToken => AntiCsrfMode::ViaToken,
            AntiCsrfSetting::ViaCustomHeader => AntiCsrfMode::ViaCustomHeader,
            AntiCsrfSetting::Auto if self.same_site() == SameSite::None => AntiCsrfMode::ViaCustomHeader,
            AntiCsrfSetting::Auto => AntiCsrfMode::None,
        }
    }
}

/// The registrable domain ("eTLD+1"); localhost and IP addresses are one site, as in the SDK.
fn site_of(host: &url::Host<String>) -> String {
    match host {
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => "localhost".into(),
        url::Host::Domain(d) if d.starts_with("localhost") => "localhost".into(),
        url::Host::Domain(d) => psl::domain_str(d).unwrap_or(d.as_str()).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(api: &str, web: &str) -> SuperTokensSettings {
        SuperTokensSettings {
            api_domain: api.parse().expect("api url"),
            website_domain: web.parse().expect("website url"),
            ..Default::default()
        }
    }

    #[test]
    fn auto_mode_follows_site() {
        assert_eq!(
            st("http://localhost:3001", "http://localhost:3000").anti_csrf_mode(),
            AntiCsrfMode::None
        );
        assert_eq!(
            st("https://api.example.com", "https://www.example.com").anti_csrf_mode(),
            AntiCsrfMode::None
        );
        assert_eq!(
            st("https://api.example.com", "https://example.org").anti_csrf_mode(),
            AntiCsrfMode::ViaCustomHeader
        );
        assert_eq!(
            st("http://api.example.com", "https://example.com").anti_csrf_mode(),
            AntiCsrfMode::ViaCustomHeader
        );
        assert_eq!(
            st("https://a.github.io", "https://b.github.io").anti_csrf_mode(),
            AntiCsrfMode::ViaCustomHeader
        );
    }
}
