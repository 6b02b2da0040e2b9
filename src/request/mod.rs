//! What a front door hands the decision: the request, read from its wire format.

pub mod target;
