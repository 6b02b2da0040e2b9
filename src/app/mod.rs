//! The running service: the listeners, startup and shutdown.

pub mod listener;
pub mod reload;
pub mod startup;
pub mod tls;
