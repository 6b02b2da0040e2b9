//! What the service tells its operators: Prometheus metrics, the log lines and, when asked,
//! OpenTelemetry traces.

pub mod logging;
pub mod metrics;
pub mod traces;
