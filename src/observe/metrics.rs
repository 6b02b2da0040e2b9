//! Prometheus metrics: one registry per process (per `AppState`, so tests do not share counters).

use std::time::Duration;

use crate::labels::{FrontDoor, Outcome};
use prometheus::{Encoder, Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

pub struct Metrics {
    decision_handles: Vec<prometheus::IntCounter>,
    duration_handles: Vec<prometheus::Histogram>,
    registry: Registry,
    decisions: IntCounterVec,
    core_requests: IntCounterVec,
    core_duration: HistogramVec,
    pub jwks_fetches: IntCounterVec,
    pub jwks_keys: IntGauge,
    pub jwks_age: Gauge,
    cache: IntCounterVec,
    cache_entries: IntGauge,
    assertions: IntCounterVec,
    /// The cache last synced and its totals then.
    cache_seen: std::sync::Mutex<(u64, [u64; 5])>,
    config_reloads: IntCounterVec,
    config_last_success: Gauge,
    config_restart_required: IntGauge,
}

const NS: &str = "session_authorizer";

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new("decisions_total", "Decisions made, by front door and outcome").namespace(NS),
            &["front_door", "outcome"],
        )?;
        let decision_duration = HistogramVec::new(
            HistogramOpts::new("decision_duration_seconds", "Time to decide one request, by front door")
                .namespace(NS)
                .buckets(vec![
                    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0,
                ]),
            &["front_door"],
        )?;
        let core_requests = IntCounterVec::new(
            Opts::new("core_requests_total", "Calls to the SuperTokens core, by endpoint and result").namespace(NS),
            &["endpoint", "result"],
        )?;
        let core_duration = HistogramVec::new(
            HistogramOpts::new(
                "core_request_duration_seconds",
                "Time of one call to the SuperTokens core, by endpoint",
            )
            .namespace(NS)
            .buckets(vec![
                0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["endpoint"],
        )?;
        let jwks_fetches = IntCounterVec::new(
            Opts::new("jwks_fetch_total", "JWKS fetches from the core, by result").namespace(NS),
            &["result"],
        )?;
        let jwks_keys = IntGauge::with_opts(Opts::new("jwks_keys", "Signing keys currently held").namespace(NS))?;
        let jwks_age = Gauge::with_opts(Opts::new("jwks_age_seconds", "Age of the JWKS held").namespace(NS))?;
        let cache = IntCounterVec::new(
            Opts::new(
                "session_cache_events_total",
                "Verified-session cache: hit, miss, eviction, rejected (negative-cache hit), verification",
            )
            .namespace(NS),
            &["event"],
        )?;
        let cache_entries = IntGauge::with_opts(Opts::new("session_cache_entries", "Verified sessions held").namespace(NS))?;
        let config_reloads = IntCounterVec::new(
            Opts::new("config_reload_total", "Configuration reloads (SIGHUP or a changed file), by result").namespace(NS),
            &["result"],
        )?;
        let config_last_success = Gauge::with_opts(
            Opts::new(
                "config_last_reload_success_timestamp_seconds",
                "When the running configuration was loaded (Unix time): at start, then at each good reload",
            )
            .namespace(NS),
        )?;
        let config_restart_required = IntGauge::with_opts(
            Opts::new(
                "config_restart_required",
                "1 when the loaded file changes settings that only a restart applies (listeners, limits, log format)",
            )
            .namespace(NS),
        )?;
        for result in ["ok", "error"] {
            config_reloads.with_label_values(&[result]);
        }
        let assertions = IntCounterVec::new(
            Opts::new(
                "assertions_total",
                "Identity assertions put on allowed requests ([assertion]), by result: signed, reused, error",
            )
            .namespace(NS),
            &["result"],
        )?;
        for result in ["signed", "reused", "error"] {
            assertions.with_label_values(&[result]);
        }
        registry.register(Box::new(assertions.clone()))?;
        registry.register(Box::new(config_reloads.clone()))?;
        registry.register(Box::new(config_last_success.clone()))?;
        registry.register(Box::new(config_restart_required.clone()))?;
        registry.register(Box::new(cache.clone()))?;
        registry.register(Box::new(cache_entries.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(decision_duration.clone()))?;
        registry.register(Box::new(core_requests.clone()))?;
        registry.register(Box::new(core_duration.clone()))?;
        registry.register(Box::new(jwks_fetches.clone()))?;
        registry.register(Box::new(jwks_keys.clone()))?;
        registry.register(Box::new(jwks_age.clone()))?;
        let decision_handles = FrontDoor::ALL
            .iter()
            .flat_map(|d| Outcome::ALL.iter().map(|o| decisions.with_label_values(&[d.as_str(), o.as_str()])))
            .collect();
        let duration_handles = FrontDoor::ALL
            .iter()
            .map(|d| decision_duration.with_label_values(&[d.as_str()]))
            .collect();
        Ok(Self {
            decision_handles,
            duration_handles,
            registry,
            decisions,
            core_requests,
            core_duration,
            jwks_fetches,
            jwks_keys,
            jwks_age,
            cache,
            cache_entries,
            assertions,
            cache_seen: std::sync::Mutex::new((0, [0; 5])),
            config_reloads,
            config_last_success,
            config_restart_required,
        })
    }

    /// A configuration went live (at start or by a reload) at `unix_seconds`.
    pub fn config_loaded(&self, unix_seconds: f64) {
        self.config_last_success.set(unix_seconds);
    }

    /// An identity assertion: `signed` now, `reused` (signed before for the same token, route
    /// and method) or `error` (the request failed closed).
    pub fn assertion(&self, result: &'static str) {
        self.assertions.with_label_values(&[result]).inc();
    }

    pub fn config_reload(&self, ok: bool) {
        self.config_reloads.with_label_values(&[if ok { "ok" } else { "error" }]).inc();
    }

    pub fn set_restart_required(&self, required: bool) {
        self.config_restart_required.set(i64::from(required));
    }

    pub fn observe_decision(&self, front_door: FrontDoor, outcome: Outcome, elapsed: Duration) {
        // Resolved handles: no label hashing or lock on the request path.
        let (d, o) = (front_door as usize, outcome as usize);
        if let (Some(c), Some(h)) = (self.decision_handles.get(d * Outcome::ALL.len() + o), self.duration_handles.get(d)) {
            c.inc();
            h.observe(elapsed.as_secs_f64());
        }
    }

    pub fn observe_core(&self, endpoint: &str, result: &str, elapsed: Duration) {
        self.core_requests.with_label_values(&[endpoint, result]).inc();
        self.core_duration.with_label_values(&[endpoint]).observe(elapsed.as_secs_f64());
    }

    /// Adds what the verified-session cache `cache_id` counted since the last call, from its own
    /// `(event, total)` counters. A reload may replace the cache: the new one's totals start at
    /// zero, and all of them are added (the Prometheus counters only move forward).
    pub fn sync_cache(&self, cache_id: u64, events: &[(&str, u64)], entries: u64) {
        let mut seen = self.cache_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.0 != cache_id {
            *seen = (cache_id, Default::default());
        }
        for (i, (event, value)) in events.iter().enumerate() {
            if let Some(last) = seen.1.get_mut(i) {
                self.cache.with_label_values(&[event]).inc_by(value.saturating_sub(*last));
                *last = *value;
            }
        }
        self.cache_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    pub fn decisions(&self, front_door: FrontDoor, outcome: Outcome) -> u64 {
        self.decisions.with_label_values(&[front_door.as_str(), outcome.as_str()]).get()
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new().encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(m: &Metrics) -> u64 {
        m.cache.with_label_values(&["hit"]).get()
    }

    #[test]
    fn cache_counters_keep_counting_across_a_replaced_cache() {
        let m = Metrics::new().expect("metrics");
        let totals = |hit| [("hit", hit), ("miss", 0), ("eviction", 0), ("rejected", 0), ("verification", 0)];
        m.sync_cache(1, &totals(10), 5);
        m.sync_cache(1, &totals(15), 5);
        assert_eq!(hits(&m), 15);
        // A reload's new cache counts from zero, and already counted 7 when first synced.
        m.sync_cache(2, &totals(7), 1);
        assert_eq!(hits(&m), 22);
        m.sync_cache(2, &totals(9), 1);
        assert_eq!(hits(&m), 24);
    }
}
