//! Logging: JSON lines by default (one per decision at `info`), plain text on request; the level
//! comes from `RUST_LOG` (default `info`). Spans never reach the log: with `[telemetry]` they go
//! to the OTLP exporter alone.

use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::observe::traces::{Exporter, TelemetryError};
use crate::settings::{LogFormat, TelemetrySettings};

/// Installs the log (and, with an OTLP endpoint, the trace exporter, returned for the flush at
/// exit). A second call (tests) keeps the first subscriber.
pub fn init(format: LogFormat, telemetry: &TelemetrySettings) -> Result<Option<Exporter>, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let events_only = filter_fn(|meta| meta.is_event());
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = if format == LogFormat::Text {
        log.with_filter(filter).with_filter(events_only).boxed()
    } else {
        log.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(filter)
            .with_filter(events_only)
            .boxed()
    };
    let exporter = telemetry.enabled().then(|| Exporter::start(telemetry)).transpose()?;
    let spans = exporter.as_ref().map(|e| {
        tracing_opentelemetry::layer()
            .with_tracer(e.tracer())
            .with_filter(filter_fn(|meta| meta.is_span() && meta.target().starts_with("session_authorizer")))
    });
    let _ = tracing_subscriber::registry().with(log).with(spans).try_init();
    Ok(exporter)
}
