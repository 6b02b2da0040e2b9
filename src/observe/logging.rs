//! Logging: JSON lines by default (one per decision at `info`), plain text on request; the level
//! comes from `RUST_LOG` (default `info`). Spans never reach the log: with `[telemetry]` they go
//! to the OTLP exporter alone, and without it every span callsite is disabled for good (a static
//! interest, so a request's span costs one cached check and the decision line is filtered exactly
//! as it would be with no tracing at all).

use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{self, Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::observe::traces::{Exporter, TelemetryError};
use crate::settings::{LogFormat, TelemetrySettings};

/// Passes events and never a span: a global layer without tracing, the log's own filter with it.
struct EventsOnly;

impl EventsOnly {
    fn interest(meta: &Metadata<'_>) -> Interest {
        if meta.is_span() { Interest::never() } else { Interest::always() }
    }
}

impl<S: Subscriber> Layer<S> for EventsOnly {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        Self::interest(meta)
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        !meta.is_span()
    }
}

impl<S> layer::Filter<S> for EventsOnly {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        !meta.is_span()
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        Self::interest(meta)
    }
}

/// The spans this crate makes, for the exporter: never an event (the decision line is a log
/// line, not a span event), never another crate's span.
struct OwnSpans;

impl OwnSpans {
    fn wants(meta: &Metadata<'_>) -> bool {
        meta.is_span() && meta.target().starts_with("session_authorizer")
    }
}

impl<S> layer::Filter<S> for OwnSpans {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        Self::wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wants(meta) { Interest::always() } else { Interest::never() }
    }
}

/// Installs the log (and, with an OTLP endpoint, the trace exporter, returned for the flush at
/// exit). A second call (tests) keeps the first subscriber.
pub fn init(format: LogFormat, telemetry: &TelemetrySettings) -> Result<Option<Exporter>, TelemetryError> {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let Some(exporter) = telemetry.enabled().then(|| Exporter::start(telemetry)).transpose()? else {
        let log = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr);
        let _ = if format == LogFormat::Text {
            log.finish().with(EventsOnly).try_init()
        } else {
            log.json()
                .flatten_event(true)
                .with_current_span(false)
                .finish()
                .with(EventsOnly)
                .try_init()
        };
        return Ok(None);
    };
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = if format == LogFormat::Text {
        log.with_filter(filter()).with_filter(EventsOnly).boxed()
    } else {
        log.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(filter())
            .with_filter(EventsOnly)
            .boxed()
    };
    let spans = tracing_opentelemetry::layer().with_tracer(exporter.tracer()).with_filter(OwnSpans);
    let _ = tracing_subscriber::registry().with(log).with(spans).try_init();
    Ok(Some(exporter))
}
