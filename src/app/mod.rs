//! The running service: the state built once from the configuration, the listeners, startup and
//! shutdown.

pub mod config;
pub mod listener;
pub mod startup;
pub mod state;
