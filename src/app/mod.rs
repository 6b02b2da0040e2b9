//! The running service: the listeners (plain or TLS), startup, reload and shutdown.

pub mod listener;
pub mod reload;
pub mod startup;
pub mod tls;
