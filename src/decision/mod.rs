//! The decision core: one `AuthRequest` in, one `Decision` out, for every front door. The steps
//! follow supertokens-node's `getSession` (session optional unless the route requires it).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::SharedClock;
use crate::core_api::{CoreAccessToken, CoreClient, CoreSession, RegenerateOutcome, VerifyOutcome, VerifyRequest};
use crate::credentials::anti_csrf::{self, AntiCsrfMode, CsrfFailure};
use crate::credentials::token::ParsedToken;
use crate::credentials::{self, CredentialError};
use crate::effects::{self, CookieAttributes, NewAccessToken, TokenEffects, TransferMethod};
use crate::observe::metrics::Metrics;
use crate::policy::claims::{ClaimError, Reason, validate as validate_claim};
use crate::policy::{Policy, Route};
use crate::session::refetch::{self, RefetchError, Subject};
use crate::settings::{SessionRequirement, Settings};
use crate::verification::cache::{SessionToken, TokenCache, TokenKey, token_key};
use crate::verification::jwks::JwksCache;
use crate::verification::signature::{VerifyError, verify_signature};

/// Which protocol a request arrived on (a metrics and log label).
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

/// What an adapter extracts from its wire format: only what the decision reads.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    pub front_door: FrontDoor,
    pub method: Cow<'a, str>,
    /// Original path, with the query string if any.
    pub path: Cow<'a, str>,
    pub authorization: Option<Cow<'a, str>>,
    /// All `Cookie` header values of the request, joined with `; `.
    pub cookie: Option<Cow<'a, str>>,
    pub anti_csrf: Option<Cow<'a, str>>,
    pub has_rid: bool,
    /// Values of `X-HTTP-Method-Override` and its kin: a backend with a method-override
    /// middleware serves the request as that method, so its route must be the same.
    pub method_overrides: Vec<Cow<'a, str>>,
    /// The request carries `Access-Control-Request-Method`: with `OPTIONS`, a CORS preflight,
    /// which is never refused for lack of a session.
    pub preflight: bool,
}

impl<'a> AuthRequest<'a> {
    /// Several `Cookie` values as one header, joined with `; ` (borrowed when there is one).
    pub fn join_cookies(mut values: Vec<Cow<'a, str>>) -> Option<Cow<'a, str>> {
        match values.len() {
            0 | 1 => values.pop(),
            _ => Some(Cow::Owned(values.join("; "))),
        }
    }
}

/// The verified session behind an allow.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    ids: Ids,
    pub expiry_ms: u64,
    claims: Claims,
}

/// Where the session's ids come from: a cached token (nothing copied per request) or the core.
#[derive(Debug, Clone)]
enum Ids {
    Token(Arc<SessionToken>),
    Core(Arc<CoreIds>),
}

#[derive(Debug)]
struct CoreIds {
    user_id: String,
    recipe_user_id: String,
    tenant_id: Option<String>,
    session_handle: String,
}

/// Where the claims payload comes from: parsed from the cached token only when something reads it.
#[derive(Debug, Clone)]
enum Claims {
    Token(Arc<SessionToken>),
    Payload(Arc<Map<String, Value>>),
}

impl SessionInfo {
    fn from_token(token: &Arc<SessionToken>) -> Self {
        Self {
            ids: Ids::Token(token.clone()),
            expiry_ms: token.expiry_ms as u64,
            claims: Claims::Token(token.clone()),
        }
    }

    pub fn user_id(&self) -> &str {
        match &self.ids {
            Ids::Token(t) => t.user_id(),
            Ids::Core(c) => &c.user_id,
        }
    }

    pub fn recipe_user_id(&self) -> &str {
        match &self.ids {
            Ids::Token(t) => t.recipe_user_id(),
            Ids::Core(c) => &c.recipe_user_id,
        }
    }

    pub fn tenant_id(&self) -> Option<&str> {
        match &self.ids {
            Ids::Token(t) => t.tenant_id(),
            Ids::Core(c) => c.tenant_id.as_deref(),
        }
    }

    pub fn session_handle(&self) -> &str {
        match &self.ids {
            Ids::Token(t) => t.session_handle(),
            Ids::Core(c) => &c.session_handle,
        }
    }

    /// The access-token payload (v2: `userData`) that validators and claim headers read.
    pub fn claims(&self) -> Arc<Map<String, Value>> {
        match &self.claims {
            Claims::Token(t) => t.claims(),
            Claims::Payload(p) => p.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Decision {
    Allow {
        session: Box<SessionInfo>,
        effects: TokenEffects,
    },
    /// No session, on a route where it is optional.
    Anonymous,
    /// The SDK's TRY_REFRESH_TOKEN.
    TryRefresh {
        reason: String,
    },
    /// The SDK's UNAUTHORISED; `effects` clears the tokens when the core revoked the session.
    Unauthorised {
        reason: String,
        effects: TokenEffects,
    },
    InvalidClaims {
        errors: Vec<ClaimError>,
    },
    /// The core failed or answered nonsense: fail closed (500-class).
    Error {
        reason: String,
    },
    /// The request cannot be judged as the backend would serve it (a target backends read in
    /// different ways, unreadable forwarding headers): 400, never an allow. `message` is for
    /// the client, `reason` for the log.
    BadRequest {
        message: String,
        reason: String,
    },
}

impl Decision {
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Anonymous => "anonymous",
            Decision::TryRefresh { .. } => "try_refresh",
            Decision::Unauthorised { .. } => "unauthorised",
            Decision::InvalidClaims { .. } => "invalid_claims",
            Decision::Error { .. } => "error",
            Decision::BadRequest { .. } => "bad_request",
        }
    }

    fn reason(&self) -> &str {
        match self {
            Decision::TryRefresh { reason }
            | Decision::Unauthorised { reason, .. }
            | Decision::Error { reason }
            | Decision::BadRequest { reason, .. } => reason,
            Decision::InvalidClaims { errors } if errors.iter().any(|e| matches!(e.reason, Some(Reason::TenantNotAllowed { .. }))) => {
                "tenant not allowed on this route"
            }
            Decision::InvalidClaims { .. } => "claim validation failed",
            Decision::Allow { .. } | Decision::Anonymous => "",
        }
    }
}

/// Settings the pipeline reads on every request, resolved once.
#[derive(Debug, Clone)]
pub struct DecisionSettings {
    pub anti_csrf: AntiCsrfMode,
    pub cookies: CookieAttributes,
    pub check_database: bool,
    pub use_dynamic_key: bool,
    pub skew_ms: u64,
    pub jwks_refresh_interval_ms: u64,
}

impl DecisionSettings {
    pub fn from_settings(s: &Settings) -> Self {
        let st = &s.supertokens;
        Self {
            anti_csrf: anti_csrf::resolve_mode(st),
            cookies: CookieAttributes {
                domain: st.cookie_domain.as_ref().map(|d| d.as_str().to_owned()),
                secure: st.cookie_secure(),
                same_site: anti_csrf::same_site(st),
                refresh_path: st.refresh_path(),
            },
            check_database: st.check_database,
            use_dynamic_key: st.use_dynamic_access_token_signing_key,
            skew_ms: st.clock_skew_secs.saturating_mul(1000),
            jwks_refresh_interval_ms: st.jwks_refresh_interval_secs.saturating_mul(1000),
        }
    }
}

/// What the client is told about a target whose readings fall under different routes; the log
/// line names them.
pub const AMBIGUOUS_TARGET: &str = "ambiguous request target: backends may route this path as a different one, so it is not judged";

/// The decision core, shared by every adapter.
pub struct Authorizer {
    pub settings: DecisionSettings,
    pub policy: Policy,
    pub jwks: Arc<JwksCache>,
    pub cache: Arc<TokenCache>,
    pub core: Arc<CoreClient>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    /// The core's answers to `check_database` verifies, reused for `check_database_cache_ms`.
    pub db_checks: Option<moka::future::Cache<TokenKey, Arc<CoreSession>>>,
}

impl Authorizer {
    /// Decides one request and records the metric and the log line for it.
    pub async fn decide(&self, req: &AuthRequest<'_>) -> Decision {
        let started = Instant::now();
        let (decision, route) = match self.route_for(req) {
            // The SDK's own routes: no credential is read, whatever the request carries.
            Ok(route) if route.session == SessionRequirement::Public => (Decision::Anonymous, Some(route)),
            Ok(route) if req.preflight && req.method == "OPTIONS" && req.method_overrides.is_empty() => (Decision::Anonymous, Some(route)),
            Ok(route) => (self.decide_on_route(req, route).await, Some(route)),
            Err(refused) => (refused, None),
        };
        self.record(req.front_door, &req.method, route.map(|r| r.pattern.as_str()), &decision, started);
        decision
    }

    /// A request refused before a decision could start (a front door could not read it), counted
    /// and logged like one.
    pub fn refuse(&self, front_door: FrontDoor, method: &str, message: String, reason: String) -> Decision {
        let decision = Decision::BadRequest { message, reason };
        self.record(front_door, method, None, &decision, Instant::now());
        decision
    }

    /// The route that judges `req`: its target read every way a backend may read it, under one
    /// route, or a 400.
    fn route_for(&self, req: &AuthRequest<'_>) -> Result<&Route, Decision> {
        let target = crate::canonical_target::canonicalise(&req.path).map_err(|e| Decision::BadRequest {
            message: format!("bad request target: {e}"),
            reason: e.to_string(),
        })?;
        let route = if req.method_overrides.is_empty() {
            self.policy.route_for(&[&req.method], &target)
        } else {
            let methods: Vec<&str> = std::iter::once(req.method.as_ref())
                .chain(req.method_overrides.iter().map(|m| m.as_ref()))
                .collect();
            self.policy.route_for(&methods, &target)
        };
        route.map_err(|e| Decision::BadRequest {
            message: AMBIGUOUS_TARGET.into(),
            reason: e.to_string(),
        })
    }

    fn record(&self, front_door: FrontDoor, method: &str, route: Option<&str>, decision: &Decision, started: Instant) {
        let elapsed = started.elapsed();
        self.metrics.observe_decision(front_door.as_str(), decision.outcome(), elapsed);
        let user = match decision {
            Decision::Allow { session, .. } => session.user_id(),
            _ => "",
        };
        tracing::info!(
            target: "decision",
            front_door = front_door.as_str(),
            outcome = decision.outcome(),
            user_id = user,
            method = method,
            route = route.unwrap_or(""),
            reason = decision.reason(),
            latency_us = elapsed.as_micros() as u64,
        );
    }

    async fn decide_on_route(&self, req: &AuthRequest<'_>, route: &Route) -> Decision {
        let now = self.clock.now_ms();
        let mut candidates = match credentials::candidates(req.authorization.as_deref(), req.cookie.as_deref()) {
            Ok(c) => c,
            Err(e) => return Decision::TryRefresh { reason: e.to_string() },
        };
        // Header wins when it holds something that parses (or is a cached, verified token).
        let mut picked = None;
        if let Some(raw) = candidates.header
            && let Some(resolved) = self.resolve(raw, now)
        {
            picked = Some((Cow::Borrowed(raw), resolved, TransferMethod::Header));
        }
        if picked.is_none()
            && let Some(raw) = candidates.cookie.take()
            && let Some(resolved) = self.resolve(&raw, now)
        {
            if candidates.duplicate_cookies {
                return Decision::TryRefresh {
                    reason: CredentialError::DuplicateCookies.to_string(),
                };
            }
            picked = Some((raw, resolved, TransferMethod::Cookie));
        }
        // Cookie transport and non-GET only (HEAD and OPTIONS are checked too, as in the SDK).
        let mut do_csrf = picked.as_ref().is_some_and(|(_, _, t)| *t == TransferMethod::Cookie) && !req.method.eq_ignore_ascii_case("get");
        if do_csrf && self.settings.anti_csrf == AntiCsrfMode::ViaCustomHeader {
            if !req.has_rid {
                return Decision::TryRefresh {
                    reason: CsrfFailure::MissingRid.to_string(),
                };
            }
            do_csrf = false;
        }
        let Some((raw, resolved, transfer)) = picked else {
            return match route.session {
                SessionRequirement::Optional | SessionRequirement::Public => Decision::Anonymous,
                SessionRequirement::Required => Decision::Unauthorised {
                    reason: "Session does not exist. Are you sending the session tokens in the request with the appropriate token transfer method?".into(),
                    effects: TokenEffects::default(),
                },
            };
        };
        let key = resolved.key;
        // A cached token needs no await; the signature path is boxed so that its state does not
        // weigh on every request's future.
        let checked = match resolved.token {
            Candidate::Cached(t) => self.check_times(key, t, now),
            Candidate::Parsed(p) => Box::pin(self.verify_parsed(key, p, now)).await,
        };
        let (token, verified) = match checked {
            Ok(t) => (t, true),
            Err((e, Some(t))) if t.version < 3 && self.v2_may_ask_core(&t, now) => {
                tracing::debug!(error = %e, "legacy token failed local verification; asking the core");
                (t, false)
            }
            Err((e, _)) => {
                return Decision::TryRefresh {
                    reason: format!("Failed to verify access token: {e}"),
                };
            }
        };
        if token.version >= 3 && token.dynamic_key != self.settings.use_dynamic_key {
            return Decision::TryRefresh {
                reason: "The access token doesn't match the useDynamicAccessTokenSigningKey setting".into(),
            };
        }
        if do_csrf
            && self.settings.anti_csrf == AntiCsrfMode::ViaToken
            && verified
            && let Err(f) = anti_csrf::check_via_token(token.anti_csrf_token(), req.anti_csrf.as_deref())
        {
            return Decision::TryRefresh { reason: f.to_string() };
        }
        let check_database = route.check_database.unwrap_or(self.settings.check_database);
        let mut new_token = None;
        let mut session = if verified && !check_database && !token.has_parent_refresh_token {
            SessionInfo::from_token(&token)
        } else {
            let presented = Presented {
                raw: &raw,
                key: &key,
                token: &token,
                verified,
            };
            match Box::pin(self.ask_core(&presented, req, do_csrf, check_database)).await {
                Ok((session, minted)) => {
                    new_token = minted;
                    session
                }
                Err(d) => return Box::pin(self.refused(&key, d)).await,
            }
        };
        if !route.tenants.is_empty() {
            let tenant = session.tenant_id().unwrap_or("public");
            if !route.tenants.iter().any(|t| t == tenant) {
                return Decision::InvalidClaims {
                    errors: vec![ClaimError {
                        id: "tId".into(),
                        reason: Some(Reason::TenantNotAllowed {
                            tenant: tenant.to_owned(),
                            allowed: route.tenants.clone(),
                        }),
                    }],
                };
            }
        }
        if !route.validators.is_empty() {
            let mut claims = session.claims();
            let subject_tenant = claims.get("tId").and_then(Value::as_str).unwrap_or("public").to_owned();
            let subject = Subject {
                user_id: session.user_id(),
                recipe_user_id: session.recipe_user_id(),
                tenant_id: &subject_tenant,
            };
            match Box::pin(refetch::refetch(&self.core, route.validators.iter(), &subject, &claims, now)).await {
                Ok(None) => {}
                Ok(Some(updated)) => {
                    let current = new_token.as_ref().map_or(&*raw, |t| t.token.as_str());
                    match Box::pin(self.regenerate(current, &session, &updated)).await {
                        Ok(Regenerated { minted, payload }) => {
                            if minted.is_some() {
                                new_token = minted;
                            }
                            session.claims = Claims::Payload(payload);
                        }
                        Err(d) => return Box::pin(self.refused(&key, d)).await,
                    }
                    // The SDK validates the payload it refetched, not the regenerated token's.
                    claims = Arc::new(updated);
                }
                Err(RefetchError::MfaMissing) => {
                    return Decision::Unauthorised {
                        reason: RefetchError::MfaMissing.to_string(),
                        effects: effects::clear_token_effects(&self.settings.cookies),
                    };
                }
                Err(e) => return Decision::Error { reason: e.to_string() },
            }
            let mut errors = Vec::new();
            for v in &route.validators {
                match validate_claim(v, &claims, now) {
                    Ok(None) => {}
                    Ok(Some(err)) => errors.push(err),
                    Err(e) => return Decision::Error { reason: e.to_string() },
                }
            }
            if !errors.is_empty() {
                // As in the SDK, a token minted by the core is not sent with a 403.
                return Decision::InvalidClaims { errors };
            }
        }
        let effects = match &new_token {
            Some(nt) => effects::new_token_effects(nt, transfer, req.anti_csrf.as_deref(), &self.settings.cookies, now),
            None => TokenEffects::default(),
        };
        if let Some(nt) = new_token {
            session.expiry_ms = nt.expiry_ms;
        }
        Decision::Allow {
            session: Box::new(session),
            effects,
        }
    }

    /// A refusal from a core call; when the core says the session is gone, no cached fact about
    /// the token may outlive that.
    async fn refused(&self, key: &TokenKey, d: Decision) -> Decision {
        if matches!(d, Decision::Unauthorised { .. }) {
            self.cache.invalidate(key);
            if let Some(db) = &self.db_checks {
                db.invalidate(key).await;
            }
        }
        d
    }

    /// `mergeIntoAccessTokenPayload` after a refetch: the core regenerates the token with the new
    /// payload (same `exp`); UNAUTHORISED means the session is gone.
    async fn regenerate(&self, current_token: &str, session: &SessionInfo, updated: &Map<String, Value>) -> Result<Regenerated, Decision> {
        let user_data = refetch::user_data_for_regenerate(updated);
        match self.core.regenerate(current_token, &user_data).await {
            Ok(RegenerateOutcome::Unauthorised) => Err(Decision::Unauthorised {
                reason: "Session does not exist anymore".into(),
                effects: effects::clear_token_effects(&self.settings.cookies),
            }),
            Ok(RegenerateOutcome::Ok {
                session: core_session,
                access_token: Some(at),
            }) => {
                let minted = new_access_token(session.user_id(), at, &core_session).ok_or_else(|| Decision::Error {
                    reason: "the core's regenerated access token does not parse".into(),
                })?;
                let payload = Arc::new(minted.payload.clone());
                Ok(Regenerated {
                    minted: Some(minted),
                    payload,
                })
            }
            Ok(RegenerateOutcome::Ok {
                session: core_session,
                access_token: None,
            }) => {
                // The token expired meanwhile: nothing to send; the payload as the core now has it.
                let mut payload = (*session.claims()).clone();
                payload.extend(core_session.user_data_in_jwt.unwrap_or_default());
                Ok(Regenerated {
                    minted: None,
                    payload: Arc::new(payload),
                })
            }
            Err(e) => Err(Decision::Error { reason: e.to_string() }),
        }
    }

    /// A candidate token: a cached verified one, else one that parses; `None` counts as absent.
    fn resolve(&self, raw: &str, now: u64) -> Option<Resolved> {
        let key = token_key(raw);
        if let Some(t) = self.cache.get(&key, now) {
            return Some(Resolved {
                key,
                token: Candidate::Cached(t),
            });
        }
        ParsedToken::parse(raw).ok().map(|p| Resolved {
            key,
            token: Candidate::Parsed(Box::new(p)),
        })
    }

    /// Signature, then times. On failure, the token's facts when it did parse.
    async fn verify_parsed(
        &self,
        key: TokenKey,
        p: Box<ParsedToken>,
        now: u64,
    ) -> Result<Arc<SessionToken>, (VerifyError, Option<Arc<SessionToken>>)> {
        if p.version >= 3
            && let Some(e) = self.cache.rejected(&key)
        {
            return Err((e, None));
        }
        match self.cache.verify_once(key, &p, verify_signature(&p, &self.jwks)).await {
            Ok(t) => self.check_times(key, t, now),
            Err(e) => Err((e, Some(Arc::new(SessionToken::from_parsed(&p))))),
        }
    }

    /// `exp`/`nbf` on every request, cached or not.
    fn check_times(
        &self,
        key: TokenKey,
        token: Arc<SessionToken>,
        now: u64,
    ) -> Result<Arc<SessionToken>, (VerifyError, Option<Arc<SessionToken>>)> {
        match token.check_times(now, self.settings.skew_ms) {
            Ok(()) => Ok(token),
            Err(e) => {
                // Expiry is final: later requests with this token skip straight to the answer.
                if e == VerifyError::Expired && token.version >= 3 {
                    self.cache.reject(key, e.clone());
                }
                Err((e, Some(token)))
            }
        }
    }

    /// The v2 rule: a legacy token that fails locally goes to the core while it is unexpired and
    /// younger than the JWKS refresh interval (it may be signed by a key we have not fetched).
    fn v2_may_ask_core(&self, token: &SessionToken, now: u64) -> bool {
        let (expiry, created) = (token.expiry_ms, token.created_ms);
        expiry >= now as f64 && created > now as f64 - self.settings.jwks_refresh_interval_ms as f64
    }

    async fn ask_core(
        &self,
        presented: &Presented<'_>,
        req: &AuthRequest<'_>,
        do_csrf: bool,
        check_database: bool,
    ) -> Result<(SessionInfo, Option<NewAccessToken>), Decision> {
        let Presented { raw, key, token, verified } = *presented;
        let body = VerifyRequest {
            access_token: raw,
            anti_csrf_token: req.anti_csrf.as_deref(),
            do_anti_csrf_check: do_csrf,
            enable_anti_csrf: self.settings.anti_csrf == AntiCsrfMode::ViaToken,
            check_database,
        };
        // A cached `check_database` answer stands in for the core while it is fresh (verified
        // tokens only: their signature and anti-CSRF were checked here, not by the core).
        let reusable = check_database && verified && !token.has_parent_refresh_token;
        if reusable
            && let Some(db) = &self.db_checks
            && let Some(known) = db.get(key).await
        {
            return Ok((self.session_from_core(&known, None, token, verified), None));
        }
        match self.core.verify_session(&body).await {
            Ok(VerifyOutcome::Ok { session, access_token }) => {
                let minted = access_token.and_then(|at| new_access_token(&session.user_id, at, &session));
                if reusable
                    && minted.is_none()
                    && let Some(db) = &self.db_checks
                {
                    db.insert(*key, Arc::new(session.clone())).await;
                }
                Ok((self.session_from_core(&session, minted.as_ref(), token, verified), minted))
            }
            Ok(VerifyOutcome::Unauthorised { message }) => Err(Decision::Unauthorised {
                reason: message,
                effects: effects::clear_token_effects(&self.settings.cookies),
            }),
            Ok(VerifyOutcome::TryRefresh { message }) => Err(Decision::TryRefresh { reason: message }),
            Err(e) => Err(Decision::Error { reason: e.to_string() }),
        }
    }

    /// The session as the SDK builds it after a core verify.
    fn session_from_core(
        &self,
        session: &CoreSession,
        minted: Option<&NewAccessToken>,
        token: &Arc<SessionToken>,
        verified: bool,
    ) -> SessionInfo {
        let claims = match (minted, token.version >= 3) {
            (Some(m), true) => Claims::Payload(Arc::new(m.payload.clone())),
            (None, true) => Claims::Token(token.clone()),
            (_, false) => Claims::Payload(Arc::new(session.user_data_in_jwt.clone().unwrap_or_default())),
        };
        let tenant_id = match (&session.tenant_id, verified) {
            (Some(t), _) => t.clone(),
            (None, true) => token.tenant_id().unwrap_or("public").to_owned(),
            (None, false) => "public".to_owned(),
        };
        SessionInfo {
            ids: Ids::Core(Arc::new(CoreIds {
                recipe_user_id: session.recipe_user_id.clone().unwrap_or_else(|| session.user_id.clone()),
                user_id: session.user_id.clone(),
                tenant_id: Some(tenant_id),
                session_handle: session.handle.clone(),
            })),
            expiry_ms: token.expiry_ms as u64,
            claims,
        }
    }
}

/// A token the core minted, with the payload the SDK reads from it (v2: `userDataInJWT`).
fn new_access_token(user_id: &str, at: CoreAccessToken, session: &CoreSession) -> Option<NewAccessToken> {
    let parsed = ParsedToken::parse(&at.token).ok()?;
    let payload = if parsed.version >= 3 {
        (*parsed.payload).clone()
    } else {
        session.user_data_in_jwt.clone().unwrap_or_default()
    };
    Some(NewAccessToken {
        user_id: user_id.to_owned(),
        expiry_ms: at.expiry,
        payload,
        token: at.token,
    })
}

/// What a regenerate leaves: the token to send (if any) and the payload the session now has.
struct Regenerated {
    minted: Option<NewAccessToken>,
    payload: Arc<Map<String, Value>>,
}

/// The token a request carries, after local verification (`verified` is false only for a legacy
/// token the core must judge).
#[derive(Clone, Copy)]
struct Presented<'t> {
    raw: &'t str,
    key: &'t TokenKey,
    token: &'t Arc<SessionToken>,
    verified: bool,
}

/// A token candidate after the cache lookup.
struct Resolved {
    key: TokenKey,
    token: Candidate,
}

enum Candidate {
    Cached(Arc<SessionToken>),
    Parsed(Box<ParsedToken>),
}
