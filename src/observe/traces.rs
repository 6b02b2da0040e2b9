//! OpenTelemetry traces over OTLP/gRPC (`[telemetry] otlp_endpoint`): one span per decision,
//! a child of the caller's span when the request carried W3C or B3 trace context, with child
//! spans for the JWKS fetches and the core calls made while deciding. With no endpoint no layer
//! is installed and every span callsite is disabled: a request pays one cached-interest check.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::settings::TelemetrySettings;
use crate::trace_context::TraceContext;

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the OTLP exporter for `telemetry.otlp_endpoint`: {0}")]
pub struct TelemetryError(String);

/// The exporting pipeline, flushed when the process stops.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    pub fn start(settings: &TelemetrySettings) -> Result<Self, TelemetryError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.otlp_endpoint.clone())
            .build()
            .map_err(|e| TelemetryError(e.to_string()))?;
        // Exports from the tokio runtime: the tonic client needs it.
        let batches = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
            exporter,
            opentelemetry_sdk::runtime::Tokio,
        )
        .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batches)
            // The caller's sampling decision holds; a trace we start is sampled.
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_resource(
                Resource::builder()
                    .with_attribute(KeyValue::new("service.name", settings.service_name.clone()))
                    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
            .build();
        Ok(Self { provider })
    }

    pub fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("session-authorizer")
    }

    /// Sends the spans still buffered (blocking: call off the runtime's worker threads).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "spans not all exported at shutdown");
        }
    }
}

/// Makes `span` a child of the caller's span.
pub fn follow(span: &tracing::Span, caller: &TraceContext<'_>) {
    let trace_id = TraceId::from_hex(caller.trace_id);
    let span_id = SpanId::from_hex(caller.span_id);
    let (Ok(trace_id), Ok(span_id)) = (trace_id, span_id) else {
        return;
    };
    let flags = if caller.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    let _ = span.set_parent(Context::new().with_remote_span_context(remote));
}

/// The trace and span ids `span` is exported under (`None` when it is not: no exporter, or a
/// trace its caller did not sample).
pub fn ids_of(span: &tracing::Span) -> Option<(String, String)> {
    let context = span.context();
    let exported = context.span().span_context().clone();
    (exported.is_valid() && exported.is_sampled()).then(|| (exported.trace_id().to_string(), exported.span_id().to_string()))
}
