//! `AppState`: everything a request handler needs, built once from the configuration.

use std::sync::Arc;
use std::time::Duration;

use crate::authorizer::Authorizer;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::core_api::CoreClient;
use crate::observe::metrics::Metrics;
use crate::session::CoreSessions;
use crate::settings::{AntiCsrfMode, Settings};
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
    /// Requests in flight on both listeners (`server.max_concurrency` permits).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Request body bytes held at once (`server.max_buffered_body_bytes` permits).
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Set at the first shutdown signal: `/readyz` fails from then on.
    pub draining: std::sync::atomic::AtomicBool,
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
            st.anti_csrf_mode() == AntiCsrfMode::ViaToken,
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
            in_flight,
            body_budget,
            draining: std::sync::atomic::AtomicBool::new(false),
        })))
    }

    pub async fn update_gauges(&self) {
        let status = self.authorizer.verifier.jwks.status();
        self.metrics.jwks_keys.set(i64::try_from(status.keys).unwrap_or(i64::MAX));
        self.metrics.jwks_age.set(status.age_ms.map_or(-1.0, |ms| ms as f64 / 1000.0));
        let cache = &self.authorizer.verifier.cache;
        self.metrics.sync_cache(&cache.stats.totals(), cache.entries());
    }

    /// Loads the keys at start (retrying quickly until the core answers) and refreshes them shortly
    /// before they expire, so requests rarely wait on a fetch.
    pub async fn keep_jwks_warm(self) {
        let jwks = self.authorizer.verifier.jwks.clone();
        let max_age = Duration::from_secs(self.settings.supertokens.jwks_refresh_interval_secs);
        let mut retry = Duration::from_millis(200);
        loop {
            let status = jwks.status();
            let due = match status.age_ms {
                None => true,
                Some(age) => Duration::from_millis(age) + max_age / 10 >= max_age,
            };
            if due {
                match jwks.reload_now().await {
                    Ok(()) => retry = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %e, retry_ms = retry.as_millis() as u64, "JWKS not loaded");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(Duration::from_secs(10));
                        continue;
                    }
                }
            }
            self.update_gauges().await;
            let age = Duration::from_millis(jwks.status().age_ms.unwrap_or(0));
            let wait = max_age.saturating_sub(max_age / 10).saturating_sub(age).max(Duration::from_secs(1));
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
        }
    }
}
