//! The names a decision is counted and logged under: which front door it came through and how
//! it ended. One list each, shared by the metrics, the logs and the gRPC status messages.

use serde::Serialize;

/// Which protocol a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontDoor {
    LambdaRequest,
    LambdaToken,
    LambdaHttpApi,
    AppSync,
    EnvoyHttp,
    EnvoyGrpc,
    ForwardAuth,
}

impl FrontDoor {
    /// Every front door, in declaration order (`as usize` indexes it).
    pub const ALL: [FrontDoor; 7] = [
        FrontDoor::LambdaRequest,
        FrontDoor::LambdaToken,
        FrontDoor::LambdaHttpApi,
        FrontDoor::AppSync,
        FrontDoor::EnvoyHttp,
        FrontDoor::EnvoyGrpc,
        FrontDoor::ForwardAuth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FrontDoor::LambdaRequest => "lambda_request",
            FrontDoor::LambdaToken => "lambda_token",
            FrontDoor::LambdaHttpApi => "lambda_http_api",
            FrontDoor::AppSync => "appsync",
            FrontDoor::EnvoyHttp => "envoy_http",
            FrontDoor::EnvoyGrpc => "envoy_grpc",
            FrontDoor::ForwardAuth => "forward_auth",
        }
    }
}

/// How a decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Anonymous,
    TryRefresh,
    Unauthorised,
    InvalidClaims,
    Error,
    BadRequest,
}

impl Outcome {
    /// Every outcome, in declaration order (`as usize` indexes it).
    pub const ALL: [Outcome; 7] = [
        Outcome::Allow,
        Outcome::Anonymous,
        Outcome::TryRefresh,
        Outcome::Unauthorised,
        Outcome::InvalidClaims,
        Outcome::Error,
        Outcome::BadRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Anonymous => "anonymous",
            Outcome::TryRefresh => "try_refresh",
            Outcome::Unauthorised => "unauthorised",
            Outcome::InvalidClaims => "invalid_claims",
            Outcome::Error => "error",
            Outcome::BadRequest => "bad_request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_in_declaration_order() {
        for (i, d) in FrontDoor::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i, "{}", d.as_str());
        }
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "{}", o.as_str());
        }
    }
}
