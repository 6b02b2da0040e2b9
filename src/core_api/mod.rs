//! Client for the SuperTokens core: JWKS, session verify and regenerate, and the user, email
//! verification and role lookups behind claim refetches, with the `api-key`, `cdi-version` and
//! `rid` headers the SDK sends and failover across `;`-separated hosts.

mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tracing::Instrument;

pub use wire::{CoreAccessToken, CoreLoginMethod, CoreSession, CoreUser, RegenerateOutcome, VerifyOutcome, VerifyRequest};
use wire::{RegenerateReply, StatusReply, VerifyReply};

use crate::observe::metrics::Metrics;
use crate::settings::{CoreHost, Secret};
use crate::verification::jwks::{JwksError, JwksSource, VerificationKey, parse_jwks};

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

enum Method<'b> {
    Get(&'b [(&'b str, &'b str)]),
    Post(&'b [u8]),
}

#[derive(Clone)]
pub struct CoreClient {
    hosts: Vec<CoreHost>,
    api_key: Secret,
    http: reqwest::Client,
    metrics: Option<Arc<Metrics>>,
}

impl CoreClient {
    pub fn new(hosts: Vec<CoreHost>, api_key: Secret, timeout: Duration) -> Result<Self, CoreError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CoreError::Unreachable(e.to_string()))?;
        Ok(Self {
            hosts,
            api_key,
            http,
            metrics: None,
        })
    }

    /// Counts every call in `core_requests_total` and `core_request_duration_seconds`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn hosts(&self) -> &[CoreHost] {
        &self.hosts
    }

    /// `GET {host}/.well-known/jwks.json` on each host in turn; the first usable answer wins.
    /// Counted in `jwks_fetch_total` and, like every core call, in `core_requests_total`.
    pub async fn fetch_jwks(&self) -> Result<Vec<VerificationKey>, JwksError> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "jwks fetch",
            otel.name = "GET /.well-known/jwks.json",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
        );
        let result = self.jwks_from_hosts().instrument(span.clone()).await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        self.observe("jwks", result.is_ok(), started);
        if let Some(m) = &self.metrics {
            m.jwks_fetches
                .with_label_values(&[if result.is_ok() { "ok" } else { "error" }])
                .inc();
        }
        if let Err(e) = &result {
            tracing::warn!(error = %e, "JWKS fetch failed");
        }
        result
    }

    async fn jwks_from_hosts(&self) -> Result<Vec<VerificationKey>, JwksError> {
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

    /// `POST /recipe/session/verify`.
    pub async fn verify_session(&self, request: &VerifyRequest<'_>) -> Result<VerifyOutcome, CoreError> {
        const PATH: &str = "/recipe/session/verify";
        let body = serde_json::to_vec(request).map_err(|e| decode(PATH, e))?;
        let parsed: VerifyReply = self.call("verify", PATH, PATH, Method::Post(&body), Some("session")).await?;
        let message = parsed.message.unwrap_or_default();
        match parsed.status.as_str() {
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
        }
    }

    /// `POST /recipe/session/regenerate`: the same session with a new payload (same `exp`).
    pub async fn regenerate(&self, access_token: &str, user_data_in_jwt: &Map<String, Value>) -> Result<RegenerateOutcome, CoreError> {
        const PATH: &str = "/recipe/session/regenerate";
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            access_token: &'a str,
            #[serde(rename = "userDataInJWT")]
            user_data_in_jwt: &'a Map<String, Value>,
        }
        let body = serde_json::to_vec(&Body {
            access_token,
            user_data_in_jwt,
        })
        .map_err(|e| decode(PATH, e))?;
        let parsed: RegenerateReply = self.call("regenerate", PATH, PATH, Method::Post(&body), Some("session")).await?;
        match (parsed.status.as_str(), parsed.session) {
            ("UNAUTHORISED", _) => Ok(RegenerateOutcome::Unauthorised),
            ("OK", Some(session)) => Ok(RegenerateOutcome::Ok {
                session,
                access_token: parsed.access_token,
            }),
            (status, _) => Err(CoreError::Decode {
                path: PATH,
                message: format!("status {status}"),
            }),
        }
    }

    /// `GET /user/id`: `None` for an unknown user.
    pub async fn get_user(&self, user_id: &str) -> Result<Option<CoreUser>, CoreError> {
        const PATH: &str = "/user/id";
        let reply: StatusReply = self.call("user", PATH, PATH, Method::Get(&[("userId", user_id)]), None).await?;
        match reply.status.as_str() {
            "OK" => reply.user.map(Some).ok_or_else(|| CoreError::Decode {
                path: PATH,
                message: "OK without user".into(),
            }),
            _ => Ok(None),
        }
    }

    /// `GET /recipe/user/email/verify`.
    pub async fn is_email_verified(&self, recipe_user_id: &str, email: &str) -> Result<bool, CoreError> {
        const PATH: &str = "/recipe/user/email/verify";
        let reply: StatusReply = self
            .call(
                "email_verify",
                PATH,
                PATH,
                Method::Get(&[("userId", recipe_user_id), ("email", email)]),
                Some("emailverification"),
            )
            .await?;
        reply.is_verified.ok_or_else(|| CoreError::Decode {
            path: PATH,
            message: format!("status {} without isVerified", reply.status),
        })
    }

    /// `GET /<tenantId>/recipe/user/roles`.
    pub async fn roles_for_user(&self, tenant_id: &str, user_id: &str) -> Result<Vec<String>, CoreError> {
        const PATH: &str = "/<tenantId>/recipe/user/roles";
        let path = format!("/{tenant_id}/recipe/user/roles");
        let reply: StatusReply = self
            .call("user_roles", PATH, &path, Method::Get(&[("userId", user_id)]), Some("userroles"))
            .await?;
        reply.roles.ok_or_else(|| CoreError::Decode {
            path: PATH,
            message: format!("status {} without roles", reply.status),
        })
    }

    /// `GET /recipe/role/permissions`: `None` for an unknown role.
    pub async fn permissions_for_role(&self, role: &str) -> Result<Option<Vec<String>>, CoreError> {
        const PATH: &str = "/recipe/role/permissions";
        let reply: StatusReply = self
            .call("role_permissions", PATH, PATH, Method::Get(&[("role", role)]), Some("userroles"))
            .await?;
        Ok(if reply.status == "OK" { reply.permissions } else { None })
    }

    /// One call with the SDK querier's rules: the `api-key`, `cdi-version` and `rid` headers,
    /// and the next host tried when one cannot be reached (an HTTP error status is final).
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        label_path: &'static str,
        path: &str,
        method: Method<'_>,
        rid: Option<&'static str>,
    ) -> Result<T, CoreError> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "core call",
            otel.name = label_path,
            otel.kind = "client",
            core.endpoint = endpoint,
            otel.status_code = tracing::field::Empty,
        );
        let result = self.call_hosts(label_path, path, &method, rid).instrument(span.clone()).await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        self.observe(endpoint, result.is_ok(), started);
        let body = result?;
        serde_json::from_slice(&body).map_err(|e| decode(label_path, e))
    }

    async fn call_hosts(
        &self,
        label_path: &'static str,
        path: &str,
        method: &Method<'_>,
        rid: Option<&'static str>,
    ) -> Result<bytes::Bytes, CoreError> {
        let mut last = CoreError::Unreachable("no core configured".into());
        for host in &self.hosts {
            let url = format!("{}{path}", host.0);
            let mut builder = match method {
                Method::Get(query) => {
                    let mut u = url::Url::parse(&url).map_err(|e| CoreError::Unreachable(format!("{url}: {e}")))?;
                    u.query_pairs_mut().extend_pairs(query.iter());
                    self.http.get(u)
                }
                Method::Post(body) => self
                    .http
                    .post(&url)
                    .header("content-type", "application/json; charset=utf-8")
                    .body(body.to_vec()),
            };
            builder = builder.header("cdi-version", CDI_VERSION);
            if let Some(rid) = rid {
                builder = builder.header("rid", rid);
            }
            if !self.api_key.is_empty() {
                builder = builder.header("api-key", self.api_key.expose());
            }
            let reply = match builder.send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() || e.is_timeout() => {
                    tracing::warn!(host = %host.0, path = label_path, error = %error_chain(&e), "core host unreachable; trying the next one");
                    last = CoreError::Unreachable(format!("{}: {}", host.0, error_chain(&e)));
                    continue;
                }
                Err(e) => return Err(CoreError::Unreachable(format!("{}: {}", host.0, error_chain(&e)))),
            };
            if reply.status() != reqwest::StatusCode::OK {
                return Err(CoreError::Status {
                    status: reply.status().as_u16(),
                    path: label_path,
                });
            }
            return reply.bytes().await.map_err(|e| CoreError::Unreachable(error_chain(&e)));
        }
        Err(last)
    }

    fn observe(&self, endpoint: &'static str, ok: bool, started: Instant) {
        if let Some(m) = &self.metrics {
            m.observe_core(endpoint, if ok { "ok" } else { "error" }, started.elapsed());
        }
    }
}

fn decode(path: &'static str, e: serde_json::Error) -> CoreError {
    CoreError::Decode {
        path,
        message: e.to_string(),
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
