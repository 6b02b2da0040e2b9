//! `session-authorizer lambda`: the process is the Lambda function itself. It polls the Lambda
//! Runtime API and answers every event with `protocol::lambda::authorize`, the function behind
//! `POST /authorize`, so both transports share one authorizer.
//!
//! One `AppState` lives as long as the process (the execution environment), so the JWKS and the
//! verified-session cache carry over from one invocation to the next.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::value::RawValue;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::front_door::lambda::{self, Refusal};
use crate::settings::ConfigError;
use crate::state::{AppState, StateError};

/// Variables the Lambda service sets for every function; `lambda_runtime` panics without them,
/// so they are checked first and a missing one is named.
const REQUIRED_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error(
        "not running under the Lambda Runtime API: {0} (run `session-authorizer lambda` as the function's bootstrap, or under a Runtime API emulator)"
    )]
    Environment(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("Lambda Runtime API: {0}")]
    Runtime(String),
}

impl LambdaError {
    /// The `Lambda-Runtime-Function-Error-Type` of an init failure (`Category.Reason`).
    fn init_error_type(&self) -> &'static str {
        match self {
            LambdaError::Config(_) => "Runtime.ConfigInvalid",
            _ => "Runtime.UnknownReason",
        }
    }
}

/// The Runtime API endpoint (`host:port`), once the environment is known to be a Lambda one.
#[derive(Debug, Clone)]
pub struct RuntimeApi(String);

impl RuntimeApi {
    pub fn from_env() -> Result<Self, LambdaError> {
        for name in REQUIRED_ENV {
            if std::env::var_os(name).is_none() {
                return Err(LambdaError::Environment(format!("`{name}` is not set")));
            }
        }
        let memory = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
        if memory.parse::<i32>().is_err() {
            return Err(LambdaError::Environment(format!(
                "`AWS_LAMBDA_FUNCTION_MEMORY_SIZE` is `{memory}`, not a number"
            )));
        }
        let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
        match api.parse::<http::Uri>() {
            Ok(uri) if uri.authority().is_some() => Ok(Self(api)),
            _ => Err(LambdaError::Environment(format!(
                "`AWS_LAMBDA_RUNTIME_API` is `{api}`, not host:port"
            ))),
        }
    }

    fn url(&self, path: &str) -> String {
        let base = self.0.trim_end_matches('/');
        if base.contains("://") {
            format!("{base}{path}")
        } else {
            format!("http://{base}{path}")
        }
    }

    /// Tells the Lambda service why the function could not start, so the failure shows up in
    /// the invoke response and the logs instead of as a bare exit code.
    pub async fn report_init_error(&self, error: &LambdaError) {
        let diagnostic = Diagnostic {
            error_type: error.init_error_type().to_owned(),
            error_message: error.to_string(),
        };
        let client = match reqwest::Client::builder().timeout(Duration::from_secs(2)).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot report the init error");
                return;
            }
        };
        let sent = client
            .post(self.url("/2018-06-01/runtime/init/error"))
            .header("lambda-runtime-function-error-type", error.init_error_type())
            .json(&diagnostic)
            .send()
            .await;
        if let Err(e) = sent {
            tracing::error!(error = %e, "cannot report the init error");
        }
    }
}

/// Loads the configuration (`config` if it exists, or must exist when `must_exist`, under the
/// `SESSION_AUTHORIZER__*` variables) and builds the state: the function's init phase.
pub fn init(config: &Path, must_exist: bool) -> Result<AppState, LambdaError> {
    let config = Config::load(config, !must_exist)?;
    // No trace export: a frozen Lambda sandbox cannot flush a batch exporter.
    let _ = crate::observe::logging::init(config.settings.server.log_format, &Default::default());
    Ok(AppState::new(config, Arc::new(SystemClock))?)
}

/// Serves invocations until the Runtime API goes away.
pub async fn run(state: AppState) -> Result<(), LambdaError> {
    // Started before the first poll so the key fetch overlaps the wait for the first event; a
    // decision that needs the keys first joins the same fetch.
    let warm = tokio::spawn(state.clone().keep_jwks_warm());
    let handler = service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let state = state.clone();
        async move { invoke(&state, event.payload.get().as_bytes()).await }
    });
    let result = lambda_runtime::run(handler).await;
    warm.abort();
    result.map_err(|e| LambdaError::Runtime(e.to_string()))
}

/// One invocation. A refusal becomes a function error whose message is the refusal's text, so
/// "Unauthorized" is exactly what API Gateway turns into a 401.
async fn invoke(state: &AppState, event: &[u8]) -> Result<Box<RawValue>, Diagnostic> {
    let refusal = match lambda::authorize(state, event).await {
        Ok(body) => match RawValue::from_string(body) {
            Ok(raw) => return Ok(raw),
            Err(_) => Refusal::Internal,
        },
        Err(refusal) => refusal,
    };
    let error_type = match &refusal {
        Refusal::Event(e) => {
            tracing::warn!(error = %e, "not an authorizer event");
            "InvalidEvent"
        }
        Refusal::Unauthorized => "Unauthorized",
        Refusal::Internal => "InternalError",
    };
    Err(Diagnostic {
        error_type: error_type.to_owned(),
        error_message: refusal.to_string(),
    })
}
