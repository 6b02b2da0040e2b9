//! The sessions only the core can judge: a token from a refresh not yet seen by the core, a
//! route with `check_database`, a legacy token that failed locally; and the regenerate that
//! follows a claim refetch. A core that says the session is gone also clears what we cached.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::core_api::{CoreAccessToken, CoreClient, CoreSession, RegenerateOutcome, VerifyOutcome, VerifyRequest};
use crate::credentials::token::ParsedToken;
use crate::policy::claims::ClaimRule;
use crate::session::refetch::{self, RefetchError, Subject};
use crate::session::{NewAccessToken, Refusal, SessionInfo};
use crate::verification::Presented;
use crate::verification::cache::{TokenCache, TokenKey};

/// The core's answers to `check_database` verifies, reused for `check_database_cache_ms`.
type DbChecks = moka::future::Cache<TokenKey, Arc<CoreSession>>;

pub struct CoreSessions {
    core: Arc<CoreClient>,
    /// Verified tokens; a session the core revoked leaves it.
    cache: Arc<TokenCache>,
    db_checks: Option<DbChecks>,
    /// `antiCsrf` is `VIA_TOKEN`: the core checks the token's anti-CSRF value.
    enable_anti_csrf: bool,
    /// `check_database` for routes that do not set it.
    pub check_database: bool,
}

/// What a core verify leaves: the session and the token the core minted, if it did.
pub struct Established {
    pub session: SessionInfo,
    pub minted: Option<NewAccessToken>,
}

impl CoreSessions {
    pub fn new(
        core: Arc<CoreClient>,
        cache: Arc<TokenCache>,
        enable_anti_csrf: bool,
        check_database: bool,
        db_cache: (u64, Duration),
    ) -> Self {
        let (max_entries, ttl) = db_cache;
        let db_checks = (!ttl.is_zero()).then(|| moka::future::Cache::builder().max_capacity(max_entries).time_to_live(ttl).build());
        Self {
            core,
            cache,
            db_checks,
            enable_anti_csrf,
            check_database,
        }
    }

    /// The core's client, shared with a reload that keeps it.
    pub fn core(&self) -> &Arc<CoreClient> {
        &self.core
    }

    /// Whether the token alone proves the session, as the SDK decides before calling the core.
    pub fn token_suffices(presented: &Presented<'_>, check_database: bool) -> bool {
        presented.verified && !check_database && !presented.token.has_parent_refresh_token
    }

    /// `/recipe/session/verify`, or its cached answer for a `check_database` route.
    pub async fn verify_with_core(
        &self,
        presented: &Presented<'_>,
        anti_csrf: Option<&str>,
        do_csrf: bool,
        check_database: bool,
    ) -> Result<Established, Refusal> {
        let Presented { raw, key, token, verified } = *presented;
        // A cached `check_database` answer stands in for the core while it is fresh (verified
        // tokens only: their signature and anti-CSRF were checked here, not by the core).
        let reusable = check_database && verified && !token.has_parent_refresh_token;
        if reusable
            && let Some(db) = &self.db_checks
            && let Some(known) = db.get(key).await
        {
            return Ok(Established {
                session: SessionInfo::from_core(&known, None, token, verified),
                minted: None,
            });
        }
        let body = VerifyRequest {
            access_token: raw,
            anti_csrf_token: anti_csrf,
            do_anti_csrf_check: do_csrf,
            enable_anti_csrf: self.enable_anti_csrf,
            check_database,
        };
        match self.core.verify_session(&body).await {
            Ok(VerifyOutcome::Ok { session, access_token }) => {
                let minted = access_token.and_then(|at| new_access_token(&session.user_id, at, &session));
                if reusable
                    && minted.is_none()
                    && let Some(db) = &self.db_checks
                {
                    db.insert(*key, Arc::new(session.clone())).await;
                }
                Ok(Established {
                    session: SessionInfo::from_core(&session, minted.as_ref(), token, verified),
                    minted,
                })
            }
            Ok(VerifyOutcome::Unauthorised { message }) => Err(self.gone(key, message).await),
            Ok(VerifyOutcome::TryRefresh { message }) => Err(Refusal::TryRefresh(message)),
            Err(e) => Err(Refusal::Error(e.to_string())),
        }
    }

    /// `mergeIntoAccessTokenPayload` after a refetch: the core regenerates the token with the
    /// `updated` payload (same `exp`), which becomes the session's; the token it mints replaces
    /// `minted`.
    pub async fn regenerate(
        &self,
        presented: &Presented<'_>,
        session: &mut SessionInfo,
        minted: &mut Option<NewAccessToken>,
        updated: &Map<String, Value>,
    ) -> Result<(), Refusal> {
        let current = minted.as_ref().map_or(presented.raw, |t| t.token.as_str());
        let user_data = refetch::user_data_for_regenerate(updated);
        match self.core.regenerate(current, &user_data).await {
            Ok(RegenerateOutcome::Unauthorised) => Err(self.gone(presented.key, "Session does not exist anymore".into()).await),
            Ok(RegenerateOutcome::Ok {
                session: core_session,
                access_token: Some(at),
            }) => {
                let new = new_access_token(session.user_id(), at, &core_session)
                    .ok_or_else(|| Refusal::Error("the core's regenerated access token does not parse".into()))?;
                session.set_claims(Arc::new(new.payload.clone()));
                *minted = Some(new);
                Ok(())
            }
            Ok(RegenerateOutcome::Ok {
                session: core_session,
                access_token: None,
            }) => {
                // The token expired meanwhile: nothing to send; the payload as the core now has it.
                let mut payload = (*session.claims()).clone();
                payload.extend(core_session.user_data_in_jwt.unwrap_or_default());
                session.set_claims(Arc::new(payload));
                Ok(())
            }
            Err(e) => Err(Refusal::Error(e.to_string())),
        }
    }

    /// The core says the session is gone: no cached fact about the token may outlive that.
    async fn gone(&self, key: &TokenKey, message: String) -> Refusal {
        self.cache.invalidate(key);
        if let Some(db) = &self.db_checks {
            db.invalidate(key).await;
        }
        Refusal::Unauthorised(message)
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

impl CoreSessions {
    /// `validateClaims`'s first half: refetches the claims that are due and, when the payload
    /// changed, regenerates the token with it. Returns the payload to validate (the refetched
    /// one, as in the SDK, not the regenerated token's).
    pub async fn refresh_claims(
        &self,
        presented: &Presented<'_>,
        session: &mut SessionInfo,
        minted: &mut Option<NewAccessToken>,
        rules: &[ClaimRule],
        now_ms: u64,
    ) -> Result<Arc<Map<String, Value>>, Refusal> {
        let claims = session.claims();
        let fetched = {
            let subject = Subject::of(session, &claims);
            Box::pin(refetch::refetch(&self.core, rules.iter(), &subject, &claims, now_ms)).await
        };
        match fetched {
            Ok(None) => Ok(claims),
            Ok(Some(updated)) => {
                Box::pin(self.regenerate(presented, session, minted, &updated)).await?;
                Ok(Arc::new(updated))
            }
            Err(e @ RefetchError::MfaMissing) => Err(Refusal::Unauthorised(e.to_string())),
            Err(e) => Err(Refusal::Error(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::credentials::carried_tokens;
    use crate::dev::{Issuer, MintOptions};
    use crate::settings::SuperTokensSettings;
    use crate::verification::{Lookup, Verifier, test_keys};

    const NOW: u64 = 1_767_225_600_000;

    struct Fixture {
        issuer: Arc<Issuer>,
        verifier: Verifier,
        sessions: CoreSessions,
    }

    /// The dev issuer's core on a loopback port, on the same manual clock as the verifier.
    async fn fixture() -> Fixture {
        let clock = ManualClock::new(NOW);
        let issuer = Issuer::with_clock(Arc::new(clock.clone())).expect("issuer");
        let addr = issuer.serve(([127, 0, 0, 1], 0).into()).await.expect("serve");
        let st = SuperTokensSettings {
            connection_uri: format!("http://{addr}").parse().expect("uri"),
            ..Default::default()
        };
        let verifier = test_keys::verifier(&issuer, &clock, &st);
        let core = CoreClient::new(st.connection_uri.hosts().to_vec(), st.api_key.clone(), Duration::from_secs(5)).expect("core");
        let sessions = CoreSessions::new(Arc::new(core), verifier.cache.clone(), false, false, (10, Duration::ZERO));
        Fixture {
            issuer,
            verifier,
            sessions,
        }
    }

    /// Verifies `token` locally (so the cache holds it), then asks the core.
    async fn ask(f: &Fixture, token: &str, check_database: bool) -> Result<Established, Refusal> {
        let header = format!("Bearer {token}");
        let carried = carried_tokens(Some(&header), None).expect("carried");
        let picked = f.verifier.pick(carried, NOW).expect("pick").expect("a token");
        let Lookup::Parsed(parsed) = picked.lookup else {
            panic!("not cached yet")
        };
        let token = f.verifier.check_parsed(picked.key, parsed, NOW).await.ok().expect("verified");
        let presented = Presented {
            raw: &picked.raw,
            key: &picked.key,
            token: &token,
            verified: true,
        };
        assert_eq!(
            CoreSessions::token_suffices(&presented, check_database),
            !check_database && !token.has_parent_refresh_token
        );
        f.sessions.verify_with_core(&presented, None, false, check_database).await
    }

    #[tokio::test]
    async fn the_first_use_after_a_refresh_gets_a_new_token_from_the_core() {
        let f = fixture().await;
        let token = f
            .issuer
            .mint(&MintOptions {
                parent_refresh_token_hash1: Some("parent".into()),
                ..Default::default()
            })
            .expect("mint");
        let Established { session, minted } = ask(&f, &token, false).await.expect("established");
        assert_eq!(session.user_id(), "user-1");
        let minted = minted.expect("the core minted a token");
        assert_eq!(minted.payload.get("parentRefreshTokenHash1"), Some(&serde_json::Value::Null));
        assert_eq!(session.claims().get("sub"), minted.payload.get("sub"));
    }

    #[tokio::test]
    async fn a_session_the_core_revoked_leaves_the_cache() {
        let f = fixture().await;
        let token = f.issuer.mint(&MintOptions::default()).expect("mint");
        assert!(ask(&f, &token, true).await.is_ok());
        assert_eq!(f.verifier.cache.entries(), 1);
        f.issuer.revoke("session-1");
        f.verifier.cache.invalidate(&crate::verification::cache::token_key(&token));
        let refused = ask(&f, &token, true).await;
        assert!(matches!(&refused, Err(Refusal::Unauthorised(_))), "{:?}", refused.err());
        assert_eq!(f.verifier.cache.entries(), 0, "the revoked session's token is no longer cached");
    }
}
