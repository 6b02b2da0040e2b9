//! Setting values parsed while they are read (URLs, domains, cookie attributes, header names), so
//! that nothing downstream parses a setting again, and a bad one is refused with its key.

use std::fmt;
use std::str::FromStr;

use http::HeaderName;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

/// One core base URL (scheme, host, port and an optional base path), without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreHost(pub String);

/// `supertokens.connection_uri`: `;`-separated core URLs, tried in order, each keeping its base
/// path, as the SDKs read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CoreUrls {
    text: String,
    hosts: Vec<CoreHost>,
}

impl CoreUrls {
    pub fn hosts(&self) -> &[CoreHost] {
        &self.hosts
    }

    /// One core on localhost (the default, as in the SDKs' examples).
    pub fn localhost() -> Self {
        let text = "http://localhost:3567".to_owned();
        Self {
            hosts: vec![CoreHost(text.clone())],
            text,
        }
    }
}

impl FromStr for CoreUrls {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let mut hosts = Vec::new();
        for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let url = url::Url::parse(part).map_err(|e| format!("`{part}` is not a URL: {e}"))?;
            let host = match url.host_str() {
                Some(h) if matches!(url.scheme(), "http" | "https") => h,
                _ => return Err(format!("`{part}` must be an http(s) URL with a host")),
            };
            let mut base = format!("{}://{host}", url.scheme());
            if let Some(port) = url.port() {
                base.push_str(&format!(":{port}"));
            }
            base.push_str(url.path().trim_end_matches('/'));
            hosts.push(CoreHost(base));
        }
        if hosts.is_empty() {
            return Err("no core URL given".into());
        }
        Ok(Self {
            text: value.to_owned(),
            hosts,
        })
    }
}

impl TryFrom<String> for CoreUrls {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        value.parse()
    }
}

impl From<CoreUrls> for String {
    fn from(value: CoreUrls) -> Self {
        value.text
    }
}

/// `api_domain` or `website_domain`: a URL with a host, kept as the parts the SDK reads from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteUrl {
    text: String,
    scheme: String,
    host: url::Host<String>,
    origin: String,
}

impl SiteUrl {
    /// `http://localhost:{port}` (the SDKs' example domains, the defaults).
    pub fn localhost(port: u16) -> Self {
        let origin = format!("http://localhost:{port}");
        Self {
            text: origin.clone(),
            scheme: "http".into(),
            host: url::Host::Domain("localhost".into()),
            origin,
        }
    }

    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    pub fn host(&self) -> &url::Host<String> {
        &self.host
    }

    /// `scheme://host[:port]`, as a browser sends it in `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl FromStr for SiteUrl {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let url = url::Url::parse(value).map_err(|e| format!("`{value}` is not a URL: {e}"))?;
        let host = url.host().map(|h| h.to_owned()).ok_or_else(|| format!("`{value}` has no host"))?;
        Ok(Self {
            text: value.to_owned(),
            scheme: url.scheme().to_owned(),
            host,
            origin: url.origin().ascii_serialization(),
        })
    }
}

impl TryFrom<String> for SiteUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        value.parse()
    }
}

impl From<SiteUrl> for String {
    fn from(value: SiteUrl) -> Self {
        value.text
    }
}

/// The `SameSite` attribute of the session cookies; read without regard to case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn as_cookie_attr(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

impl TryFrom<String> for SameSite {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            _ => Err(format!("`{value}` is not one of lax, strict, none")),
        }
    }
}

impl From<SameSite> for String {
    fn from(value: SameSite) -> Self {
        value.as_cookie_attr().to_ascii_lowercase()
    }
}

/// `cookie_domain` as the SDK's `normaliseSessionScopeOrThrowError` leaves it: the host alone, its
/// leading `.` kept except for localhost and IP addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct CookieDomain(String);

impl CookieDomain {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for CookieDomain {
    fn from(input: String) -> Self {
        let trimmed = input.trim().to_ascii_lowercase();
        let leading_dot = trimmed.starts_with('.');
        let bare = trimmed.trim_start_matches('.');
        let with_scheme = if bare.starts_with("http://") || bare.starts_with("https://") {
            bare.to_owned()
        } else {
            format!("http://{bare}")
        };
        let host = url::Url::parse(&with_scheme)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| bare.to_owned());
        let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
        Self(if leading_dot && host != "localhost" && !is_ip {
            format!(".{host}")
        } else {
            host
        })
    }
}

impl From<CookieDomain> for String {
    fn from(value: CookieDomain) -> Self {
        value.0
    }
}

/// `server.log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    Text,
}

/// An HTTP header name, checked and lower-cased while read (`#[serde(with = "header_name")]`).
pub mod header_name {
    use super::*;

    pub fn parse(name: &str) -> Result<HeaderName, String> {
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("`{name}` is not a valid header name"))
    }

    pub fn serialize<S: Serializer>(name: &HeaderName, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(name.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HeaderName, D::Error> {
        parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An optional HTTP header name (`#[serde(with = "optional_header_name")]`).
pub mod optional_header_name {
    use super::*;

    pub fn serialize<S: Serializer>(name: &Option<HeaderName>, s: S) -> Result<S::Ok, S::Error> {
        match name {
            Some(n) => s.serialize_some(n.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HeaderName>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|n| header_name::parse(&n).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_urls_keep_each_base_path() {
        let urls: CoreUrls = "http://a:3567/base/; https://b ;".parse().expect("urls");
        assert_eq!(urls.hosts(), [CoreHost("http://a:3567/base".into()), CoreHost("https://b".into())]);
        assert!("".parse::<CoreUrls>().is_err());
        assert!("ftp://a".parse::<CoreUrls>().is_err());
        assert!("not a url".parse::<CoreUrls>().is_err());
    }

    #[test]
    fn site_urls_give_origin_and_scheme() {
        let site: SiteUrl = "https://www.example.com:8443/app/".parse().expect("url");
        assert_eq!(site.origin(), "https://www.example.com:8443");
        assert!(site.is_https());
        assert_eq!(SiteUrl::localhost(3000), "http://localhost:3000".parse().expect("url"));
        assert!("localhost:3000".parse::<SiteUrl>().is_err(), "a scheme and no host");
        assert!("data:text/plain,x".parse::<SiteUrl>().is_err());
    }

    #[test]
    fn cookie_domains_normalise_as_the_sdk_does() {
        for (input, expected) in [
            (".Example.com", ".example.com"),
            ("https://api.example.com/x", "api.example.com"),
            (".localhost", "localhost"),
            (".127.0.0.1", "127.0.0.1"),
        ] {
            assert_eq!(CookieDomain::from(input.to_owned()).as_str(), expected, "{input}");
        }
    }

    #[test]
    fn same_site_reads_any_case() {
        assert_eq!(SameSite::try_from("Strict".to_owned()), Ok(SameSite::Strict));
        assert!(SameSite::try_from("sometimes".to_owned()).is_err());
    }
}
