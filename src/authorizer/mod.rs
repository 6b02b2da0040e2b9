//! The authorizer: one `AuthRequest` in, one `Decision` out, for every front door. Its steps are
//! supertokens-node's `getSession` (session optional unless the route requires it), each done by
//! the stage named after it:
//!
//! canonical target -> route -> credentials -> verification -> session -> policy -> effects

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing::Instrument;

use crate::assertion::{Assertions, Subject};
use crate::canonical_target;
use crate::clock::SharedClock;
use crate::credentials;
use crate::credentials::anti_csrf;
use crate::decision::Decision;
use crate::effects::{self, CookieAttributes, TokenEffects};
use crate::labels::FrontDoor;
use crate::observe::metrics::Metrics;
use crate::observe::traces;
use crate::policy::{Policy, Route};
use crate::request::{AuthRequest, TraceContext, TransferMethod};
use crate::session::{CoreSessions, Established, Refusal, SessionInfo};
use crate::settings::{AntiCsrfMode, SessionRequirement, Settings};
use crate::verification::{Lookup, Presented, Verifier};

/// What the client is told about a target whose readings fall under different routes; the log
/// line names them.
pub const AMBIGUOUS_TARGET: &str = "ambiguous request target: backends may route this path as a different one, so it is not judged";

/// What a decision is logged with, besides its outcome.
struct Seen<'a> {
    front_door: FrontDoor,
    method: &'a str,
    request_id: Option<&'a str>,
    trace: Option<TraceContext<'a>>,
}

/// What the SDK answers a required route without a session.
const NO_SESSION: &str =
    "Session does not exist. Are you sending the session tokens in the request with the appropriate token transfer method?";

pub struct Authorizer {
    pub policy: Policy,
    /// The identity assertion signer, with `[assertion]` on.
    pub assertions: Option<Assertions>,
    pub verifier: Verifier,
    pub sessions: CoreSessions,
    anti_csrf: AntiCsrfMode,
    cookies: CookieAttributes,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    /// Ids for requests that came without one: a per-process random prefix and a counter.
    id_prefix: String,
    next_id: AtomicU64,
}

/// The request id a decision is logged under: the one the proxy sent, or one made up here
/// (written only when the line is, so a request without one costs no allocation).
enum RequestId<'a> {
    Given(&'a str),
    Made(&'a str, u64),
}

impl fmt::Display for RequestId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Given(id) => f.write_str(id),
            RequestId::Made(prefix, n) => write!(f, "{prefix}-{n:x}"),
        }
    }
}

/// A random prefix, so that made-up ids of different processes do not collide.
fn id_prefix() -> String {
    let mut bytes = [0u8; 6];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // No randomness: the start time still tells processes apart.
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            .to_be_bytes()[2..]
            .try_into()
            .unwrap_or_default();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Authorizer {
    pub fn new(
        settings: &Settings,
        policy: Policy,
        verifier: Verifier,
        sessions: CoreSessions,
        clock: SharedClock,
        metrics: Arc<Metrics>,
    ) -> Self {
        let st = &settings.supertokens;
        Self {
            policy,
            assertions: None,
            verifier,
            sessions,
            anti_csrf: st.anti_csrf_mode(),
            cookies: CookieAttributes::from_settings(st),
            clock,
            metrics,
            id_prefix: id_prefix(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Signs an identity assertion for every allow with a session.
    pub fn with_assertions(mut self, assertions: Option<Assertions>) -> Self {
        self.assertions = assertions;
        self
    }

    /// Decides one request and records the metric and the log line for it; with `[telemetry]`
    /// the decision is a span, the caller's child.
    pub async fn decide(&self, req: &AuthRequest<'_>) -> Decision {
        let span = tracing::info_span!(
            "decision",
            otel.name = "authorize",
            otel.kind = "server",
            front_door = req.front_door.as_str(),
            http.request.method = &*req.method,
            outcome = tracing::field::Empty,
            route = tracing::field::Empty,
            cache_hit = tracing::field::Empty,
        );
        if span.is_disabled() {
            return self.decide_in(req, &span).await;
        }
        if let Some(caller) = &req.trace {
            traces::follow(&span, caller);
        }
        self.decide_in(req, &span).instrument(span.clone()).await
    }

    async fn decide_in(&self, req: &AuthRequest<'_>, span: &tracing::Span) -> Decision {
        let started = Instant::now();
        let (decision, route) = match self.route_for(req) {
            // The SDK's own routes: no credential is read, whatever the request carries.
            Ok(route) if route.session == SessionRequirement::Public => (Decision::Anonymous, Some(route)),
            Ok(route) if req.is_preflight() => (Decision::Anonymous, Some(route)),
            Ok(route) => (self.decide_on_route(req, route, span).await, Some(route)),
            Err(refused) => (refused, None),
        };
        let seen = Seen {
            front_door: req.front_door,
            method: &req.method,
            request_id: req.request_id.as_deref(),
            trace: req.trace,
        };
        self.record(&seen, route.map(|r| r.pattern.as_str()), &decision, started, span);
        decision
    }

    /// A request refused before a decision could start (a front door could not read it), counted
    /// and logged like one.
    pub fn refuse(&self, front_door: FrontDoor, method: &str, message: String, reason: String) -> Decision {
        let decision = Decision::BadRequest { message, reason };
        let seen = Seen {
            front_door,
            method,
            request_id: None,
            trace: None,
        };
        self.record(&seen, None, &decision, Instant::now(), &tracing::Span::none());
        decision
    }

    /// The route that judges `req`: its target read every way a backend may read it, under one
    /// route, or a 400.
    fn route_for(&self, req: &AuthRequest<'_>) -> Result<&Route, Decision> {
        let target = canonical_target::canonicalise(&req.path).map_err(|e| Decision::BadRequest {
            message: format!("bad request target: {e}"),
            reason: e.to_string(),
        })?;
        let route = if req.method_overrides.is_empty() {
            self.policy.route_for(&[&req.method], &target)
        } else {
            self.policy.route_for(&req.methods().collect::<Vec<_>>(), &target)
        };
        route.map_err(|e| Decision::BadRequest {
            message: AMBIGUOUS_TARGET.into(),
            reason: e.to_string(),
        })
    }

    fn record(&self, seen: &Seen<'_>, route: Option<&str>, decision: &Decision, started: Instant, span: &tracing::Span) {
        let elapsed = started.elapsed();
        self.metrics.observe_decision(seen.front_door, decision.outcome(), elapsed);
        let request_id = match seen.request_id {
            Some(id) => RequestId::Given(id),
            None => RequestId::Made(&self.id_prefix, self.next_id.fetch_add(1, Ordering::Relaxed)),
        };
        // Exported: the line names the decision's own span, and the caller's as its parent.
        let exported = (!span.is_disabled()).then(|| traces::ids_of(span)).flatten();
        let (trace_id, span_id, parent_span_id) = match &exported {
            Some((trace_id, span_id)) => {
                span.record("outcome", decision.outcome().as_str());
                span.record("route", route.unwrap_or(""));
                (trace_id.as_str(), span_id.as_str(), seen.trace.map(|t| t.span_id))
            }
            None => (seen.trace.map_or("", |t| t.trace_id), seen.trace.map_or("", |t| t.span_id), None),
        };
        tracing::info!(
            target: "decision",
            front_door = seen.front_door.as_str(),
            outcome = decision.outcome().as_str(),
            user_id = decision.user_id(),
            method = seen.method,
            route = route.unwrap_or(""),
            reason = decision.reason(),
            latency_us = elapsed.as_micros() as u64,
            request_id = %request_id,
            trace_id,
            span_id,
            parent_span_id,
        );
    }

    async fn decide_on_route(&self, req: &AuthRequest<'_>, route: &Route, span: &tracing::Span) -> Decision {
        let now = self.clock.now_ms();
        // Credentials: the token the SDK would read.
        let picked = credentials::carried_tokens(req.authorization.as_deref(), req.cookie.as_deref())
            .and_then(|carried| self.verifier.pick(carried, now));
        let picked = match picked {
            Ok(Some(p)) => p,
            Ok(None) if route.session == SessionRequirement::Required => {
                return Decision::Unauthorised {
                    reason: NO_SESSION.into(),
                    effects: TokenEffects::default(),
                };
            }
            Ok(None) => return Decision::Anonymous,
            Err(e) => return Decision::TryRefresh { reason: e.to_string() },
        };
        let do_csrf = match anti_csrf::check_due(self.anti_csrf, picked.transfer == TransferMethod::Cookie, &req.method, req.has_rid) {
            Ok(due) => due,
            Err(f) => return Decision::TryRefresh { reason: f.to_string() },
        };
        // Verification: a cached token needs no await; the signature path is boxed so that its
        // state does not weigh on every request's future.
        span.record("cache_hit", matches!(picked.lookup, Lookup::Cached(_)));
        let checked = match picked.lookup {
            Lookup::Cached(t) => self.verifier.check_times(picked.key, t, now),
            Lookup::Parsed(p) => Box::pin(self.verifier.check_parsed(picked.key, p, now)).await,
        };
        let (token, verified) = match self.verifier.accept(checked, now) {
            Ok(accepted) => accepted,
            Err(rejected) => {
                return Decision::TryRefresh {
                    reason: rejected.to_string(),
                };
            }
        };
        if do_csrf
            && self.anti_csrf == AntiCsrfMode::ViaToken
            && verified
            && let Err(f) = anti_csrf::check_via_token(token.anti_csrf_token(), req.anti_csrf.as_deref())
        {
            return Decision::TryRefresh { reason: f.to_string() };
        }
        // Session: from the token alone, or from the core when the SDK would ask it.
        let presented = Presented {
            raw: &picked.raw,
            key: &picked.key,
            token: &token,
            verified,
        };
        let check_database = route.check_database.unwrap_or(self.sessions.check_database);
        let Established { mut session, mut minted } = if CoreSessions::token_suffices(&presented, check_database) {
            Established {
                session: SessionInfo::from_token(&token),
                minted: None,
            }
        } else {
            match Box::pin(
                self.sessions
                    .verify_with_core(&presented, req.anti_csrf.as_deref(), do_csrf, check_database),
            )
            .await
            {
                Ok(established) => established,
                Err(refusal) => return self.refused(refusal),
            }
        };
        // Policy: the route's tenants, then its claims (refetched first when due).
        if let Some(error) = route.tenant_error(session.tenant_or_default()) {
            return Decision::InvalidClaims { errors: vec![error] };
        }
        if !route.validators.is_empty() {
            let claims = match Box::pin(
                self.sessions
                    .refresh_claims(&presented, &mut session, &mut minted, &route.validators, now),
            )
            .await
            {
                Ok(claims) => claims,
                Err(refusal) => return self.refused(refusal),
            };
            match route.claim_errors(&claims, now) {
                Ok(errors) if errors.is_empty() => {}
                // As in the SDK, a token minted by the core is not sent with a 403.
                Ok(errors) => return Decision::InvalidClaims { errors },
                Err(e) => return Decision::Error { reason: e.to_string() },
            }
        }
        // The identity assertion for the backend, bound to this route and method.
        let assertion = match &self.assertions {
            None => None,
            Some(assertions) => {
                let subject = Subject {
                    session: &session,
                    token: minted.is_none().then_some(&picked.key),
                    route: &route.pattern,
                    route_id: std::ptr::from_ref(route) as usize,
                    method: &req.method,
                };
                match assertions.for_request(&subject) {
                    Ok(jwt) => Some(jwt),
                    Err(e) => {
                        return Decision::Error {
                            reason: format!("cannot sign the identity assertion: {e}"),
                        };
                    }
                }
            }
        };
        // Effects: the token the core minted goes back the way the old one came.
        let effects = match &minted {
            Some(nt) => effects::new_token_effects(nt, picked.transfer, req.anti_csrf.as_deref(), &self.cookies, now),
            None => TokenEffects::default(),
        };
        if let Some(nt) = minted {
            session.expiry_ms = nt.expiry_ms;
        }
        Decision::Allow {
            session: Box::new(session),
            effects,
            assertion,
        }
    }

    fn refused(&self, refusal: Refusal) -> Decision {
        match refusal {
            Refusal::TryRefresh(reason) => Decision::TryRefresh { reason },
            Refusal::Unauthorised(reason) => Decision::Unauthorised {
                reason,
                effects: effects::clear_token_effects(&self.cookies),
            },
            Refusal::Error(reason) => Decision::Error { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::core_api::CoreClient;
    use crate::dev::{Issuer, MintOptions};
    use crate::labels::Outcome;
    use crate::policy::claims::Reason;
    use crate::verification::test_keys;

    const NOW: u64 = 1_767_225_600_000;

    const ROUTES: &str = r#"
        [supertokens]
        connection_uri = "http://127.0.0.1:9"
        core_timeout_ms = 500
        {supertokens}
        [[routes]]
        path = "/private/**"
        session = "required"
        [[routes]]
        path = "/acme/**"
        tenants = ["acme"]
        [[routes]]
        path = "/verified/**"
        claims = [{ claim = "st-ev", is = true }]
    "#;

    struct Fixture {
        issuer: Arc<Issuer>,
        authorizer: Authorizer,
        metrics: Arc<Metrics>,
    }

    /// The authorizer over the dev issuer's keys and a manual clock, with more `[supertokens]`
    /// settings; the core it would call is not listening.
    fn fixture(supertokens: &str) -> Fixture {
        let settings = Settings::from_toml_str(&ROUTES.replace("{supertokens}", supertokens)).expect("settings");
        let st = &settings.supertokens;
        let clock = ManualClock::new(NOW);
        let issuer = Issuer::with_clock(Arc::new(clock.clone())).expect("issuer");
        let verifier = test_keys::verifier(&issuer, &clock, st);
        let core = CoreClient::new(
            st.connection_uri.hosts().to_vec(),
            st.api_key.clone(),
            std::time::Duration::from_millis(500),
        )
        .expect("core");
        let via_token = st.anti_csrf_mode() == AntiCsrfMode::ViaToken;
        let sessions = CoreSessions::new(
            Arc::new(core),
            verifier.cache.clone(),
            via_token,
            st.check_database,
            (10, std::time::Duration::ZERO),
        );
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let policy = Policy::compile(&settings).expect("policy");
        let authorizer = Authorizer::new(&settings, policy, verifier, sessions, Arc::new(clock), metrics.clone());
        Fixture {
            issuer,
            authorizer,
            metrics,
        }
    }

    fn request<'a>(method: &'a str, path: &'a str) -> AuthRequest<'a> {
        AuthRequest {
            front_door: FrontDoor::EnvoyHttp,
            method: Cow::Borrowed(method),
            path: Cow::Borrowed(path),
            authorization: None,
            cookie: None,
            anti_csrf: None,
            has_rid: false,
            method_overrides: Vec::new(),
            preflight: false,
            request_id: None,
            trace: None,
        }
    }

    fn bearer(f: &Fixture, o: &MintOptions) -> Cow<'static, str> {
        Cow::Owned(format!("Bearer {}", f.issuer.mint(o).expect("mint")))
    }

    #[tokio::test]
    async fn without_a_token_the_route_decides() {
        let f = fixture("");
        let d = f.authorizer.decide(&request("GET", "/private/x")).await;
        assert!(matches!(&d, Decision::Unauthorised { reason, .. } if reason == NO_SESSION), "{d:?}");
        assert!(matches!(f.authorizer.decide(&request("GET", "/open")).await, Decision::Anonymous));
        let mut preflight = request("OPTIONS", "/private/x");
        preflight.preflight = true;
        assert!(matches!(f.authorizer.decide(&preflight).await, Decision::Anonymous));
        // A method override makes it a request the backend serves as another method.
        preflight.method_overrides.push(Cow::Borrowed("DELETE"));
        assert!(matches!(f.authorizer.decide(&preflight).await, Decision::Unauthorised { .. }));
        assert_eq!(f.metrics.decisions(FrontDoor::EnvoyHttp, Outcome::Unauthorised), 2);
    }

    #[tokio::test]
    async fn a_valid_token_is_allowed_as_its_user() {
        let f = fixture("");
        let mut req = request("GET", "/private/x");
        req.authorization = Some(bearer(&f, &MintOptions::default()));
        let d = f.authorizer.decide(&req).await;
        let Decision::Allow { session, effects, .. } = d else {
            panic!("{d:?}")
        };
        assert_eq!((session.user_id(), session.tenant_id()), ("user-1", Some("public")));
        assert!(effects.is_empty());
        assert_eq!(f.metrics.decisions(FrontDoor::EnvoyHttp, Outcome::Allow), 1);
    }

    #[tokio::test]
    async fn the_policy_stage_checks_tenants_then_claims() {
        let f = fixture("");
        let mut req = request("GET", "/acme/x");
        req.authorization = Some(bearer(&f, &MintOptions::default()));
        let d = f.authorizer.decide(&req).await;
        let Decision::InvalidClaims { errors } = d else { panic!("{d:?}") };
        assert!(matches!(&errors[0].reason, Some(Reason::TenantNotAllowed { tenant, .. }) if tenant == "public"));

        let claims = |v: bool| json!({"st-ev": {"v": v, "t": NOW}}).as_object().cloned().expect("map");
        let mut req = request("GET", "/verified/x");
        req.authorization = Some(bearer(
            &f,
            &MintOptions {
                claims: claims(false),
                ..Default::default()
            },
        ));
        let d = f.authorizer.decide(&req).await;
        assert!(matches!(&d, Decision::InvalidClaims { errors } if errors[0].id == "st-ev"), "{d:?}");
        req.authorization = Some(bearer(
            &f,
            &MintOptions {
                claims: claims(true),
                ..Default::default()
            },
        ));
        assert!(matches!(f.authorizer.decide(&req).await, Decision::Allow { .. }));
    }

    #[tokio::test]
    async fn a_session_only_the_core_can_judge_fails_closed_when_it_is_down() {
        let f = fixture("");
        let mut req = request("GET", "/private/x");
        let o = MintOptions {
            parent_refresh_token_hash1: Some("parent".into()),
            ..Default::default()
        };
        req.authorization = Some(bearer(&f, &o));
        assert!(matches!(f.authorizer.decide(&req).await, Decision::Error { .. }));
    }

    #[tokio::test]
    async fn anti_csrf_via_custom_header_needs_rid_on_cookie_writes() {
        let via_header = fixture("anti_csrf = \"VIA_CUSTOM_HEADER\"");
        let token = via_header.issuer.mint(&MintOptions::default()).expect("mint");
        let mut req = request("POST", "/private/x");
        req.cookie = Some(Cow::Owned(format!("sAccessToken={token}")));
        let d = via_header.authorizer.decide(&req).await;
        assert!(matches!(&d, Decision::TryRefresh { reason } if reason.contains("rid")), "{d:?}");
        req.has_rid = true;
        assert!(matches!(via_header.authorizer.decide(&req).await, Decision::Allow { .. }));
    }

    #[tokio::test]
    async fn a_target_backends_read_two_ways_is_refused() {
        let f = fixture("");
        let d = f.authorizer.decide(&request("GET", "/open/..%2fprivate/x")).await;
        assert!(
            matches!(&d, Decision::BadRequest { message, .. } if message == AMBIGUOUS_TARGET),
            "{d:?}"
        );
        assert_eq!(f.metrics.decisions(FrontDoor::EnvoyHttp, Outcome::BadRequest), 1);
    }
}
