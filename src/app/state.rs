//! `AppState`: everything a request handler needs, built once from the configuration.

use std::sync::Arc;
use std::time::Duration;

use crate::app::config::Config;
use crate::authorizer::Authorizer;
use crate::clock::SharedClock;
use crate::core_api::CoreClient;
use crate::credentials::anti_csrf::{self, AntiCsrfMode};
use crate::front_door::forwarded::ForwardedRequestHeaders;
use crate::front_door::identity::IdentityHeaders;
use crate::observe::metrics::Metrics;
use crate::session::CoreSessions;
use crate::settings::Settings;
use crate::verification::Verifier;
use crate::verification::cache::TokenCache;
use crate::verification::jwks::{JwksCache, JwksPolicy, JwksSource};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot build the core client: {0}")]
    Core(#[from] crate::core_api::CoreError),
    #[error("cannot create metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Cloned for every request (axum's `State`): one reference count, whatever it holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub settings: Arc<Settings>,
    pub authorizer: Arc<Authorizer>,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    pub identity: Arc<IdentityHeaders>,
    /// The headers `/forward-auth` reads the original request from.
    pub forwarded: ForwardedRequestHeaders,
    /// Requests in flight on both listeners (`server.max_concurrency` permits).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Request body bytes held at once (`server.max_buffered_body_bytes` permits).
    pub body_budget: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(config: Config, clock: SharedClock) -> Result<Self, StateError> {
        Self::build(config, clock, CoreClient::clone)
    }

    /// The state with keys from `jwks` instead of the core's JWKS endpoint (the fuzz targets
    /// decide offline with a fixed key set); the core is still called where the SDK would.
    pub fn with_jwks_source(config: Config, clock: SharedClock, jwks: impl JwksSource) -> Result<Self, StateError> {
        Self::build(config, clock, |_| jwks)
    }

    fn build<S: JwksSource>(config: Config, clock: SharedClock, source: impl FnOnce(&CoreClient) -> S) -> Result<Self, StateError> {
        let Config { settings, policy } = config;
        let st = &settings.supertokens;
        let metrics = Arc::new(Metrics::new()?);
        let core = CoreClient::new(
            st.connection_uri.hosts().to_vec(),
            st.api_key.clone(),
            Duration::from_millis(st.core_timeout_ms),
        )?
        .with_metrics(metrics.clone());
        let jwks = Arc::new(JwksCache::new(
            source(&core),
            clock.clone(),
            JwksPolicy {
                max_age_ms: st.jwks_refresh_interval_secs.saturating_mul(1000),
                cooldown_ms: st.jwks_cooldown_ms,
                max_stale_ms: st.jwks_max_stale_secs.saturating_mul(1000),
            },
        ));
        let cache = Arc::new(TokenCache::new(
            settings.cache.max_entries,
            settings.cache.max_ttl_secs,
            clock.clone(),
        ));
        let sessions = CoreSessions::new(
            Arc::new(core),
            cache.clone(),
            anti_csrf::resolve_mode(st) == AntiCsrfMode::ViaToken,
            st.check_database,
            (settings.cache.max_entries, Duration::from_millis(st.check_database_cache_ms)),
        );
        let verifier = Verifier::new(jwks, cache, st);
        let authorizer = Arc::new(Authorizer::new(
            &settings,
            policy,
            verifier,
            sessions,
            clock.clone(),
            metrics.clone(),
        ));
        let identity = Arc::new(IdentityHeaders::from_settings(&settings));
        let forwarded = ForwardedRequestHeaders::from_settings(&settings.forward_auth);
        let in_flight = Arc::new(tokio::sync::Semaphore::new(
            settings.server.max_concurrency.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let body_budget = Arc::new(tokio::sync::Semaphore::new(
            settings
                .server
                .max_buffered_body_bytes
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        Ok(Self(Arc::new(Shared {
            settings: Arc::new(settings),
            authorizer,
            metrics,
            clock,
            identity,
            forwarded,
            in_flight,
            body_budget,
        })))
    }

    pub async fn update_gauges(&self) {
        let status = self.authorizer.verifier.jwks.status();
        self.metrics.jwks_keys.set(i64::try_from(status.keys).unwrap_or(i64::MAX));
        self.metrics.jwks_age.set(status.age_ms.map_or(-1.0, |ms| ms as f64 / 1000.0));
        let cache = &self.authorizer.verifier.cache;
        self.metrics.sync_cache(&cache.stats, cache.entries());
    }
}
