//! Client for the SuperTokens core: JWKS and `/recipe/session/verify`, with the `api-key`,
//! `cdi-version` and `rid` headers the SDK sends, and failover across `;`-separated hosts.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Secret;
use crate::session::jwks::{JwksError, JwksSource, VerificationKey, parse_jwks};

/// The CDI version supertokens-node 24.x speaks; with it the core mints a new token on the first
/// verify after a refresh.
pub const CDI_VERSION: &str = "5.4";

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("core unreachable: {0}")]
    Unreachable(String),
    #[error("core answered HTTP {status} on {path}")]
    Status { status: u16, path: &'static str },
    #[error("core answer on {path} is not understood: {message}")]
    Decode { path: &'static str, message: String },
}

/// One core base URL (scheme, host, port and an optional base path), without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreHost(pub String);

/// Splits `connection_uri` on `;` as the SDKs do, keeping each URL's base path.
pub fn parse_connection_uri(value: &str) -> Result<Vec<CoreHost>, String> {
    let mut hosts = Vec::new();
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let url = url::Url::parse(part).map_err(|e| format!("`{part}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("`{part}` must be an http(s) URL with a host"));
        }
        let mut base = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        if let Some(port) = url.port() {
            base.push_str(&format!(":{port}"));
        }
        base.push_str(url.path().trim_end_matches('/'));
        hosts.push(CoreHost(base));
    }
    Ok(hosts)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest<'a> {
    pub access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_csrf_token: Option<&'a str>,
    pub do_anti_csrf_check: bool,
    pub enable_anti_csrf: bool,
    pub check_database: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreSession {
    pub handle: String,
    pub user_id: String,
    #[serde(default)]
    pub recipe_user_id: Option<String>,
    #[serde(default)]
    pub user_data_in_jwt: Option<Map<String, Value>>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CoreAccessToken {
    pub token: String,
    pub expiry: u64,
}

#[derive(Debug, Clone)]
pub enum VerifyOutcome {
    Ok {
        session: CoreSession,
        access_token: Option<CoreAccessToken>,
    },
    Unauthorised {
        message: String,
    },
    TryRefresh {
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReply {
    status: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    session: Option<CoreSession>,
    #[serde(default)]
    access_token: Option<CoreAccessToken>,
}

#[derive(Clone)]
pub struct CoreClient {
    hosts: Vec<CoreHost>,
    api_key: Secret,
    http: reqwest::Client,
}

impl CoreClient {
    pub fn new(hosts: Vec<CoreHost>, api_key: Secret, timeout: Duration) -> Result<Self, CoreError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CoreError::Unreachable(e.to_string()))?;
        Ok(Self { hosts, api_key, http })
    }

    pub fn hosts(&self) -> &[CoreHost] {
        &self.hosts
    }

    /// `GET {host}/.well-known/jwks.json` on each host in turn; the first usable answer wins.
    pub async fn fetch_jwks(&self) -> Result<Vec<VerificationKey>, JwksError> {
        let mut last = JwksError::Fetch("no core configured".into());
        for host in &self.hosts {
            let url = format!("{}/.well-known/jwks.json", host.0);
            let reply = match self.http.get(&url).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = JwksError::Fetch(format!("{}: {}", host.0, error_chain(&e)));
                    continue;
                }
            };
            if reply.status() != reqwest::StatusCode::OK {
                last = JwksError::Fetch(format!("{} answered HTTP {}", host.0, reply.status().as_u16()));
                continue;
            }
            match reply.bytes().await {
                Ok(body) => match parse_jwks(&body) {
                    Ok(keys) => return Ok(keys),
                    Err(e) => last = e,
                },
                Err(e) => last = JwksError::Fetch(format!("{}: {}", host.0, error_chain(&e))),
            }
        }
        Err(last)
    }

    /// `POST /recipe/session/verify`. Connection failures move on to the next host, as the
    /// SDK's querier does; an HTTP error status does not.
    pub async fn verify_session(&self, request: &VerifyRequest<'_>) -> Result<VerifyOutcome, CoreError> {
        const PATH: &str = "/recipe/session/verify";
        let mut last = CoreError::Unreachable("no core configured".into());
        for host in &self.hosts {
            let mut builder = self
                .http
                .post(format!("{}{PATH}", host.0))
                .header("cdi-version", CDI_VERSION)
                .header("rid", "session")
                .header("content-type", "application/json; charset=utf-8")
                .json(request);
            if !self.api_key.is_empty() {
                builder = builder.header("api-key", self.api_key.expose());
            }
            let reply = match builder.send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() => {
                    last = CoreError::Unreachable(format!("{}: {}", host.0, error_chain(&e)));
                    continue;
                }
                Err(e) => {
                    return Err(CoreError::Unreachable(format!("{}: {}", host.0, error_chain(&e))));
                }
            };
            if reply.status() != reqwest::StatusCode::OK {
                return Err(CoreError::Status {
                    status: reply.status().as_u16(),
                    path: PATH,
                });
            }
            let body = reply.bytes().await.map_err(|e| CoreError::Unreachable(error_chain(&e)))?;
            let parsed: VerifyReply = serde_json::from_slice(&body).map_err(|e| CoreError::Decode {
                path: PATH,
                message: e.to_string(),
            })?;
            let message = parsed.message.unwrap_or_default();
            return match parsed.status.as_str() {
                "OK" => match parsed.session {
                    Some(session) => Ok(VerifyOutcome::Ok {
                        session,
                        access_token: parsed.access_token,
                    }),
                    None => Err(CoreError::Decode {
                        path: PATH,
                        message: "OK without session".into(),
                    }),
                },
                "UNAUTHORISED" => Ok(VerifyOutcome::Unauthorised { message }),
                _ => Ok(VerifyOutcome::TryRefresh { message }),
            };
        }
        Err(last)
    }
}

impl JwksSource for CoreClient {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<VerificationKey>, JwksError>> + Send + '_>> {
        Box::pin(self.fetch_jwks())
    }
}

/// reqwest's top-level message hides the cause ("error sending request"); keep the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_hosts_and_keeps_base_path() {
        let hosts = parse_connection_uri("http://a:3567; https://b.example.com/appid-x/ ;").expect("parse");
        assert_eq!(
            hosts,
            vec![CoreHost("http://a:3567".into()), CoreHost("https://b.example.com/appid-x".into())]
        );
        assert!(parse_connection_uri("ftp://x").is_err());
        assert!(parse_connection_uri("not a url").is_err());
    }

    #[test]
    fn verify_body_matches_node_key_order() {
        let body = serde_json::to_string(&VerifyRequest {
            access_token: "t",
            anti_csrf_token: None,
            do_anti_csrf_check: true,
            enable_anti_csrf: false,
            check_database: true,
        })
        .expect("json");
        assert_eq!(
            body,
            r#"{"accessToken":"t","doAntiCsrfCheck":true,"enableAntiCsrf":false,"checkDatabase":true}"#
        );
    }
}
