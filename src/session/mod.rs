//! The session behind a verified token: what the core says of it and its claims' current values.

pub mod refetch;
