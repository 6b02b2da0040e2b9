//! The integration suites, one test binary: each module is a suite (its `//!` says what it
//! proves), `support` holds what they share (the stub core, the service on a free port, the real
//! proxies, event builders). One binary links the crate and its dependencies once instead of once
//! per suite.
//!
//! Run one suite with its module name as the filter: `cargo test --test it real_app`.

mod support;

mod assertion;
mod attacks;
mod bad_input;
mod cache_safety;
mod conformance;
mod core_backed;
mod dev_gateway;
mod dev_mode;
mod docs;
mod drain;
mod faults;
mod front_doors;
mod gateways;
mod jwks_cache;
mod lambda_contract;
mod lambda_forwarder;
mod lambda_runtime;
mod layout;
mod observability;
mod packaging;
mod real_app;
mod reload;
mod route_confusion;
mod tls;
mod tracing;
