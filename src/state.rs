//! `AppState`: everything a request handler needs. The settings and the authorizer built from
//! them are one `Live` value, swapped whole by a reload: a request holds the `Live` it started
//! with to its end, so no request is decided by half of one configuration and half of another.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::assertion::Assertions;
use crate::authorizer::Authorizer;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::core_api::CoreClient;
use crate::observe::metrics::Metrics;
use crate::session::CoreSessions;
use crate::settings::{AntiCsrfMode, ServerSettings, Settings, SuperTokensSettings};
use crate::verification::Verifier;
use crate::verification::cache::TokenCache;
use crate::verification::jwks::{JwksCache, JwksPolicy, JwksSource};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot build the core client: {0}")]
    Core(#[from] crate::core_api::CoreError),
    #[error("cannot create metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Assertion(#[from] crate::assertion::keys::KeyError),
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

/// One configuration as it decides: its settings and the authorizer compiled from them.
pub struct Live {
    pub settings: Settings,
    pub authorizer: Authorizer,
}

pub struct Shared {
    live: ArcSwap<Live>,
    /// The `[server]` settings the listeners were built with; a reload cannot change them (only
    /// the shutdown timings, which are read from `Live` when the signal comes).
    pub server: ServerSettings,
    pub metrics: Arc<Metrics>,
    pub clock: SharedClock,
    /// Requests in flight on both listeners (`server.max_concurrency` permits).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Request body bytes held at once (`server.max_buffered_body_bytes` permits).
    pub body_budget: Arc<tokio::sync::Semaphore>,
    /// Set at the first shutdown signal: `/readyz` fails from then on.
    pub draining: std::sync::atomic::AtomicBool,
    /// Wakes the JWKS upkeep when a reload brought a key cache with nothing in it.
    jwks_changed: tokio::sync::Notify,
    /// One reload at a time (SIGHUP and the file watch may fire together).
    reloading: std::sync::Mutex<()>,
}

/// The core-facing parts a reload may keep: the client, the keys and the verified tokens.
struct CoreParts {
    core: Arc<CoreClient>,
    jwks: Arc<JwksCache>,
    cache: Arc<TokenCache>,
}

/// What a reload kept, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheFate {
    /// Same core, same verification settings: keys and verified tokens kept.
    Kept,
    /// Same core, other verification or cache settings: keys kept, verified tokens dropped.
    KeysKept,
    /// Another core: both emptied.
    Cleared,
}

impl CacheFate {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheFate::Kept => "kept",
            CacheFate::KeysKept => "keys kept, verified sessions dropped",
            CacheFate::Cleared => "cleared (the core changed)",
        }
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swapped {
    pub caches: CacheFate,
    /// Settings that differ from the running ones but only take effect at the next start.
    pub needs_restart: Vec<&'static str>,
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
        let metrics = Arc::new(Metrics::new()?);
        let st = &config.settings.supertokens;
        let core = core_client(st, &metrics)?;
        let jwks = Arc::new(JwksCache::new(source(&core), clock.clone(), jwks_policy(st)));
        let parts = CoreParts {
            core: Arc::new(core),
            jwks,
            cache: Arc::new(token_cache(&config.settings, &clock)),
        };
        let server = config.settings.server.clone();
        let live = live(config, &parts, &clock, &metrics, None)?;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(
            server.max_concurrency.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        let body_budget = Arc::new(tokio::sync::Semaphore::new(
            server.max_buffered_body_bytes.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        metrics.config_loaded(wall_seconds());
        Ok(Self(Arc::new(Shared {
            live: ArcSwap::from_pointee(live),
            server,
            metrics,
            clock,
            in_flight,
            body_budget,
            draining: std::sync::atomic::AtomicBool::new(false),
            jwks_changed: tokio::sync::Notify::new(),
            reloading: std::sync::Mutex::new(()),
        })))
    }

    /// The configuration deciding now; hold it for the whole request.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Puts `config` in place of the running configuration. Requests already started finish on
    /// the old one. The key and token caches stay when the core and the verification settings
    /// do; `[server]` settings other than the shutdown timings keep their running values.
    pub fn swap(&self, config: Config) -> Result<Swapped, StateError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Config { mut settings, policy } = config;
        let mut needs_restart = restart_only_changes(&self.server, &settings.server);
        settings.server = ServerSettings {
            shutdown_delay_ms: settings.server.shutdown_delay_ms,
            shutdown_timeout_ms: settings.server.shutdown_timeout_ms,
            ..self.server.clone()
        };
        let old = self.live();
        // The exporter is installed with the log, once.
        if settings.telemetry != old.settings.telemetry {
            needs_restart.push("telemetry");
            settings.telemetry = old.settings.telemetry.clone();
        }
        let (parts, caches) = self.core_parts_for(&old, &settings)?;
        let empty_keys = parts.jwks.status().age_ms.is_none();
        let live = live(Config { settings, policy }, &parts, &self.clock, &self.metrics, Some(&old))?;
        self.live.store(Arc::new(live));
        self.metrics.config_loaded(wall_seconds());
        self.metrics.set_restart_required(!needs_restart.is_empty());
        if empty_keys {
            self.jwks_changed.notify_one();
        }
        Ok(Swapped { caches, needs_restart })
    }

    fn core_parts_for(&self, old: &Live, new: &Settings) -> Result<(CoreParts, CacheFate), StateError> {
        let (was, now) = (&old.settings.supertokens, &new.supertokens);
        let verifier = &old.authorizer.verifier;
        if was.connection_uri != now.connection_uri {
            let core = core_client(now, &self.metrics)?;
            let jwks = Arc::new(JwksCache::new(core.clone(), self.clock.clone(), jwks_policy(now)));
            let parts = CoreParts {
                core: Arc::new(core),
                jwks,
                cache: Arc::new(token_cache(new, &self.clock)),
            };
            return Ok((parts, CacheFate::Cleared));
        }
        let same_client = was.api_key == now.api_key && was.core_timeout_ms == now.core_timeout_ms;
        let core = if same_client {
            old.authorizer.sessions.core().clone()
        } else {
            Arc::new(core_client(now, &self.metrics)?)
        };
        let jwks = if same_client && jwks_policy(was) == jwks_policy(now) {
            verifier.jwks.clone()
        } else {
            // The same core's keys: carried over rather than fetched again.
            let fresh = JwksCache::new(CoreClient::clone(&core), self.clock.clone(), jwks_policy(now));
            fresh.adopt_keys(&verifier.jwks);
            Arc::new(fresh)
        };
        let same_tokens =
            was.use_dynamic_access_token_signing_key == now.use_dynamic_access_token_signing_key && old.settings.cache == new.cache;
        let (cache, fate) = if same_tokens {
            (verifier.cache.clone(), CacheFate::Kept)
        } else {
            (Arc::new(token_cache(new, &self.clock)), CacheFate::KeysKept)
        };
        Ok((CoreParts { core, jwks, cache }, fate))
    }

    pub async fn update_gauges(&self) {
        let live = self.live();
        let status = live.authorizer.verifier.jwks.status();
        self.metrics.jwks_keys.set(i64::try_from(status.keys).unwrap_or(i64::MAX));
        self.metrics.jwks_age.set(status.age_ms.map_or(-1.0, |ms| ms as f64 / 1000.0));
        let cache = &live.authorizer.verifier.cache;
        self.metrics.sync_cache(cache.id, &cache.stats.totals(), cache.entries());
    }

    /// Loads the keys at start (retrying quickly until the core answers) and refreshes them shortly
    /// before they expire, so requests rarely wait on a fetch. Follows reloads: the cache it
    /// keeps warm is always the live one.
    pub async fn keep_jwks_warm(self) {
        let mut retry = Duration::from_millis(200);
        loop {
            let live = self.live();
            let jwks = live.authorizer.verifier.jwks.clone();
            let max_age = Duration::from_secs(live.settings.supertokens.jwks_refresh_interval_secs);
            drop(live);
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
                        tokio::select! {
                            () = tokio::time::sleep(retry) => {}
                            () = self.jwks_changed.notified() => {}
                        }
                        retry = (retry * 2).min(Duration::from_secs(10));
                        continue;
                    }
                }
            }
            self.update_gauges().await;
            let age = Duration::from_millis(jwks.status().age_ms.unwrap_or(0));
            let wait = max_age.saturating_sub(max_age / 10).saturating_sub(age).max(Duration::from_secs(1));
            tokio::select! {
                () = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
                () = self.jwks_changed.notified() => {}
            }
        }
    }
}

/// The `[server]` keys whose new value differs from the running one: the listeners, the
/// limits and the log format are built once, at start.
fn restart_only_changes(running: &ServerSettings, new: &ServerSettings) -> Vec<&'static str> {
    let checks = [
        ("server.http_listen", running.http_listen == new.http_listen),
        ("server.grpc_listen", running.grpc_listen == new.grpc_listen),
        ("server.max_body_bytes", running.max_body_bytes == new.max_body_bytes),
        (
            "server.max_buffered_body_bytes",
            running.max_buffered_body_bytes == new.max_buffered_body_bytes,
        ),
        ("server.request_timeout_ms", running.request_timeout_ms == new.request_timeout_ms),
        ("server.max_concurrency", running.max_concurrency == new.max_concurrency),
        (
            "server.header_read_timeout_ms",
            running.header_read_timeout_ms == new.header_read_timeout_ms,
        ),
        ("server.max_header_bytes", running.max_header_bytes == new.max_header_bytes),
        ("server.log_format", running.log_format == new.log_format),
        (
            "server.config_watch_interval_ms",
            running.config_watch_interval_ms == new.config_watch_interval_ms,
        ),
        // The certificate files are read again at every reload; which files, and TLS on or off,
        // are the listeners'.
        ("server.tls", running.tls == new.tls),
    ];
    checks.into_iter().filter(|(_, same)| !same).map(|(key, _)| key).collect()
}

fn wall_seconds() -> f64 {
    use crate::clock::Clock;
    crate::clock::SystemClock.now_ms() as f64 / 1000.0
}

fn core_client(st: &SuperTokensSettings, metrics: &Arc<Metrics>) -> Result<CoreClient, StateError> {
    Ok(CoreClient::new(
        st.connection_uri.hosts().to_vec(),
        st.api_key.clone(),
        Duration::from_millis(st.core_timeout_ms),
    )?
    .with_metrics(metrics.clone()))
}

fn jwks_policy(st: &SuperTokensSettings) -> JwksPolicy {
    JwksPolicy {
        max_age_ms: st.jwks_refresh_interval_secs.saturating_mul(1000),
        cooldown_ms: st.jwks_cooldown_ms,
        max_stale_ms: st.jwks_max_stale_secs.saturating_mul(1000),
    }
}

fn token_cache(settings: &Settings, clock: &SharedClock) -> TokenCache {
    TokenCache::new(settings.cache.max_entries, settings.cache.max_ttl_secs, clock.clone())
}

/// The configuration as it decides; `previous` hands over the assertion key (and the keys it
/// replaced, still published).
fn live(
    config: Config,
    parts: &CoreParts,
    clock: &SharedClock,
    metrics: &Arc<Metrics>,
    previous: Option<&Live>,
) -> Result<Live, StateError> {
    let Config { settings, policy } = config;
    let st = &settings.supertokens;
    let sessions = CoreSessions::new(
        parts.core.clone(),
        parts.cache.clone(),
        st.anti_csrf_mode() == AntiCsrfMode::ViaToken,
        st.check_database,
        (settings.cache.max_entries, Duration::from_millis(st.check_database_cache_ms)),
    );
    let verifier = Verifier::new(parts.jwks.clone(), parts.cache.clone(), st);
    let assertions = Assertions::build(
        &settings.assertion,
        previous.and_then(|p| p.authorizer.assertions.as_ref()),
        clock.clone(),
        settings.cache.max_entries,
    )?
    .map(|a| a.with_metrics(metrics.clone()));
    let authorizer = Authorizer::new(&settings, policy, verifier, sessions, clock.clone(), metrics.clone()).with_assertions(assertions);
    Ok(Live { settings, authorizer })
}
