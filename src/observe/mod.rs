//! What the service tells its operators: Prometheus metrics and the log lines.

pub mod logging;
pub mod metrics;
