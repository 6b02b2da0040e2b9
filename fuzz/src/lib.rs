//! What the fuzz targets share: a fixed clock, the key set the seed tokens were signed with
//! (`seeds/jwks.json`, written by `examples/make_seeds.rs`), the service state built offline
//! around it, and the text format of the `decision` target's inputs.

use std::sync::{Arc, OnceLock};

use session_authorizer::config::Config;
use session_authorizer::state::AppState;
use session_authorizer::clock::ManualClock;
use session_authorizer::settings::Settings;
use session_authorizer::verification::jwks::{JwksError, JwksSource, VerificationKey, parse_jwks};

/// The fuzzing clock (2026-01-01T00:00:00Z): seed tokens are minted a minute before it.
pub const FUZZ_NOW_MS: u64 = 1_767_225_600_000;

/// The only users the seed tokens name: an allow for anyone else would be a forgery.
pub const SEED_USERS: [&str; 2] = ["fuzz-user", "fuzz-admin"];

/// The public keys of the seed tokens (the private halves were thrown away).
pub const SEED_JWKS: &[u8] = include_bytes!("../seeds/jwks.json");

/// Routes that exercise every part of the policy: required sessions, claim validators.
pub const ROUTES: &str = r#"
[[routes]]
path = "/private/**"
session = "required"

[[routes]]
methods = ["GET", "POST"]
path = "/admin/**"
session = "required"
claims = [{ claim = "st-role", includes = "admin" }, { claim = "st-perm", includes_any = ["read", "write"] }]

[[routes]]
path = "/verified/*"
claims = [{ claim = "st-ev", is = true }, { claim = "plan", is = "pro", max_age_secs = 300 }]
"#;

/// Service settings a fuzz input can pick with the `x-fuzz-profile` pseudo-header.
pub const PROFILES: [(&str, &str); 4] = [
    ("auto", ""),
    ("via-token", "[supertokens]\nanti_csrf = \"VIA_TOKEN\"\n"),
    ("via-header", "[supertokens]\nanti_csrf = \"VIA_CUSTOM_HEADER\"\n"),
    (
        "static-keys",
        "[supertokens]\nuse_dynamic_access_token_signing_key = false\n[headers]\ntenant_id = \"x-tenant-id\"\nclaims = [{ claim = \"st-role\", header = \"x-roles\" }]\n",
    ),
];

/// The seed key set, always at hand: no fetch, no network.
struct SeedKeys(Vec<VerificationKey>);

impl JwksSource for SeedKeys {
    fn fetch(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<VerificationKey>, JwksError>> + Send + '_>> {
        let keys = self.0.clone();
        Box::pin(async move { Ok(keys) })
    }
}

pub struct Fixture {
    pub runtime: tokio::runtime::Runtime,
    pub states: Vec<(&'static str, AppState)>,
}

impl Fixture {
    /// The state for a profile name (the first, `auto`, when unknown).
    pub fn state(&self, profile: Option<&str>) -> &AppState {
        let found = profile.and_then(|p| self.states.iter().find(|(name, _)| *name == p.trim()));
        match found.or(self.states.first()) {
            Some((_, s)) => s,
            None => unreachable!("fixture has no state"),
        }
    }
}

/// Built once per process. The core is an address nothing listens on: the only calls the SDK
/// would make to it (legacy tokens that fail locally) get "connection refused" at once.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let keys = parse_jwks(SEED_JWKS).expect("seeds/jwks.json");
        assert!(!keys.is_empty(), "seeds/jwks.json holds no usable key");
        let states = PROFILES
            .iter()
            .map(|(name, extra)| {
                let mut settings = Settings::from_toml_str(&format!("{extra}{ROUTES}")).expect("settings");
                settings.supertokens.connection_uri = "http://127.0.0.1:9".parse().expect("core URI");
                settings.supertokens.core_timeout_ms = 200;
                settings.cache.max_entries = 4096;
                let clock = Arc::new(ManualClock::new(FUZZ_NOW_MS));
                let state = runtime.block_on(async {
                    AppState::with_jwks_source(Config::compile(settings).expect("config"), clock, SeedKeys(keys.clone())).expect("state")
                });
                (*name, state)
            })
            .collect();
        let fixture = Fixture { runtime, states };
        // The seeds and the key set travel together: a seed session must be allowed, or the
        // decision target would only ever see refusals.
        let seed = RawRequest::parse(SEED_REQUEST);
        let request = session_authorizer::request::AuthRequest {
            front_door: session_authorizer::request::FrontDoor::EnvoyGrpc,
            method: seed.method.into(),
            path: seed.path.into(),
            authorization: None,
            cookie: seed.header("cookie").map(Into::into),
            anti_csrf: None,
            has_rid: false,
            method_overrides: Vec::new(),
            preflight: false,
            request_id: None,
            trace: None,
        };
        let decision = fixture.runtime.block_on(fixture.state(None).live().authorizer.decide(&request));
        assert!(
            matches!(decision, session_authorizer::decision::Decision::Allow { .. }),
            "the seed session is not allowed ({decision:?}): regenerate the seeds with the make-seeds example"
        );
        fixture
    })
}

/// A seed request holding a valid session (checked when the fixture is built).
const SEED_REQUEST: &str = include_str!("../corpus/decision/get-cookie");

/// The `decision` target's input: an HTTP-like request head in text.
///
/// ```text
/// POST /admin/users?x=1
/// cookie: sAccessToken=eyJ...
/// anti-csrf: ...
/// x-fuzz-profile: via-token
/// ```
#[derive(Debug, Default)]
pub struct RawRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
}

impl<'a> RawRequest<'a> {
    pub fn parse(text: &'a str) -> Self {
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let first = lines.next().unwrap_or_default();
        let (method, path) = first.split_once(' ').unwrap_or((first, "/"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim(), v.strip_prefix(' ').unwrap_or(v)))
            .collect();
        Self { method, path, headers }
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// Every value of a header, in order.
    pub fn all(&self, name: &str) -> Vec<&'a str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .collect()
    }
}
