//! Whether an access token is genuine and current: the core's keys, the signature and time
//! checks, and the cache of tokens already verified. The cached path is synchronous; only a
//! token not yet seen has its signature checked (and may wait for keys).

pub mod cache;
pub mod facts;
pub mod jwks;
pub mod signature;

use std::borrow::Cow;
use std::sync::Arc;

use crate::credentials::token::ParsedToken;
use crate::credentials::{CarriedTokens, CredentialError};
use crate::request::TransferMethod;
use crate::settings::SuperTokensSettings;
use cache::{SessionToken, TokenCache, TokenKey, token_key};
use jwks::JwksCache;
use signature::{VerifyError, verify_signature};

pub struct Verifier {
    pub jwks: Arc<JwksCache>,
    pub cache: Arc<TokenCache>,
    skew_ms: u64,
    /// A legacy token younger than this may be signed by a key we have not fetched yet.
    jwks_refresh_interval_ms: u64,
    use_dynamic_key: bool,
}

/// A token after the cache lookup.
pub enum Lookup {
    /// Verified before: only its times are checked.
    Cached(Arc<SessionToken>),
    /// Not seen yet: its signature is checked.
    Parsed(Box<ParsedToken>),
}

/// The token the SDK reads from a request.
pub struct Picked<'r> {
    pub raw: Cow<'r, str>,
    pub key: TokenKey,
    pub lookup: Lookup,
    pub transfer: TransferMethod,
}

/// The token a request carries, after local verification.
#[derive(Clone, Copy)]
pub struct Presented<'t> {
    pub raw: &'t str,
    pub key: &'t TokenKey,
    pub token: &'t Arc<SessionToken>,
    /// False only for a legacy token that failed here, which the core must judge.
    pub verified: bool,
}

/// A local check that failed, with the token's facts when it did parse.
pub struct Failed {
    pub error: VerifyError,
    pub token: Option<Arc<SessionToken>>,
}

pub type Checked = Result<Arc<SessionToken>, Failed>;

/// Why a token is refused (the SDK answers TRY_REFRESH_TOKEN with these messages).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejected {
    #[error("Failed to verify access token: {0}")]
    Invalid(VerifyError),
    #[error("The access token doesn't match the useDynamicAccessTokenSigningKey setting")]
    DynamicKeyMismatch,
}

impl Verifier {
    pub fn new(jwks: Arc<JwksCache>, cache: Arc<TokenCache>, st: &SuperTokensSettings) -> Self {
        Self {
            jwks,
            cache,
            skew_ms: st.clock_skew_secs.saturating_mul(1000),
            jwks_refresh_interval_ms: st.jwks_refresh_interval_secs.saturating_mul(1000),
            use_dynamic_key: st.use_dynamic_access_token_signing_key,
        }
    }

    /// The token the SDK reads: the header's when it is cached or parses, else the cookie's
    /// (refused when the cookie is duplicated); `None` when neither counts.
    pub fn pick<'r>(&self, carried: CarriedTokens<'r>, now_ms: u64) -> Result<Option<Picked<'r>>, CredentialError> {
        if let Some(raw) = carried.header
            && let Some((key, lookup)) = self.look_up(raw, now_ms)
        {
            return Ok(Some(Picked {
                raw: Cow::Borrowed(raw),
                key,
                lookup,
                transfer: TransferMethod::Header,
            }));
        }
        let Some(raw) = carried.cookie else { return Ok(None) };
        let Some((key, lookup)) = self.look_up(&raw, now_ms) else {
            return Ok(None);
        };
        if carried.duplicate_cookies {
            return Err(CredentialError::DuplicateCookies);
        }
        Ok(Some(Picked {
            raw,
            key,
            lookup,
            transfer: TransferMethod::Cookie,
        }))
    }

    /// A cached verified token, else one that parses; `None` counts as absent.
    fn look_up(&self, raw: &str, now_ms: u64) -> Option<(TokenKey, Lookup)> {
        let key = token_key(raw);
        if let Some(t) = self.cache.get(&key, now_ms) {
            return Some((key, Lookup::Cached(t)));
        }
        ParsedToken::parse(raw).ok().map(|p| (key, Lookup::Parsed(Box::new(p))))
    }

    /// Signature (once per token, shared by concurrent requests), then times.
    pub async fn check_parsed(&self, key: TokenKey, p: Box<ParsedToken>, now_ms: u64) -> Checked {
        if p.version >= 3
            && let Some(error) = self.cache.rejected(&key)
        {
            return Err(Failed { error, token: None });
        }
        match self.cache.verify_once(key, &p, verify_signature(&p, &self.jwks)).await {
            Ok(t) => self.check_times(key, t, now_ms),
            Err(error) => Err(Failed {
                error,
                token: Some(Arc::new(SessionToken::from_parsed(&p))),
            }),
        }
    }

    /// `exp`/`nbf` on every request, cached or not.
    pub fn check_times(&self, key: TokenKey, token: Arc<SessionToken>, now_ms: u64) -> Checked {
        match token.check_times(now_ms, self.skew_ms) {
            Ok(()) => Ok(token),
            Err(error) => {
                // Expiry is final: later requests with this token skip straight to the answer.
                if error == VerifyError::Expired && token.version >= 3 {
                    self.cache.reject(key, error.clone());
                }
                Err(Failed { error, token: Some(token) })
            }
        }
    }

    /// The verdict on a checked token: the token and whether it verified here. A legacy token
    /// that failed goes to the core while it is unexpired and younger than the JWKS refresh
    /// interval (its key may not be fetched yet); a v3+ token must match the key setting.
    pub fn accept(&self, checked: Checked, now_ms: u64) -> Result<(Arc<SessionToken>, bool), Rejected> {
        let (token, verified) = match checked {
            Ok(t) => (t, true),
            Err(Failed { error, token: Some(t) }) if t.version < 3 && self.v2_may_ask_core(&t, now_ms) => {
                tracing::debug!(%error, "legacy token failed local verification; asking the core");
                (t, false)
            }
            Err(Failed { error, .. }) => return Err(Rejected::Invalid(error)),
        };
        if token.version >= 3 && token.dynamic_key != self.use_dynamic_key {
            return Err(Rejected::DynamicKeyMismatch);
        }
        Ok((token, verified))
    }

    fn v2_may_ask_core(&self, token: &SessionToken, now_ms: u64) -> bool {
        token.expiry_ms >= now_ms as f64 && token.created_ms > now_ms as f64 - self.jwks_refresh_interval_ms as f64
    }
}

/// A verifier over the dev issuer's keys, for the unit tests of this stage and the authorizer.
#[cfg(test)]
pub(crate) mod test_keys {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use super::jwks::{JwksCache, JwksError, JwksPolicy, JwksSource, VerificationKey, parse_jwks};
    use super::{TokenCache, Verifier};
    use crate::clock::ManualClock;
    use crate::dev::Issuer;
    use crate::settings::SuperTokensSettings;

    /// The issuer's keys, always at hand.
    struct FixedKeys(Vec<VerificationKey>);

    impl JwksSource for FixedKeys {
        fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<VerificationKey>, JwksError>> + Send + '_>> {
            let keys = self.0.clone();
            Box::pin(async move { Ok(keys) })
        }
    }

    pub fn verifier(issuer: &Issuer, clock: &ManualClock, st: &SuperTokensSettings) -> Verifier {
        let keys = parse_jwks(issuer.jwks().to_string().as_bytes()).expect("jwks");
        let policy = JwksPolicy {
            max_age_ms: 60_000,
            cooldown_ms: 0,
            max_stale_ms: 60_000,
        };
        let jwks = Arc::new(JwksCache::new(FixedKeys(keys), Arc::new(clock.clone()), policy));
        let cache = Arc::new(TokenCache::new(100, 3600, Arc::new(clock.clone())));
        Verifier::new(jwks, cache, st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::credentials::carried_tokens;
    use crate::dev::{Issuer, KeyChoice, MintOptions};

    const NOW: u64 = 1_767_225_600_000;

    fn setup(st: SuperTokensSettings) -> (Arc<Issuer>, Verifier, ManualClock) {
        let clock = ManualClock::new(NOW);
        let issuer = Issuer::with_clock(Arc::new(clock.clone())).expect("issuer");
        let verifier = test_keys::verifier(&issuer, &clock, &st);
        (issuer, verifier, clock)
    }

    /// The whole local verification of the token a request carries.
    async fn verify(
        v: &Verifier,
        authorization: Option<&str>,
        cookie: Option<&str>,
        now: u64,
    ) -> Result<Option<(TransferMethod, bool, bool)>, String> {
        let carried = carried_tokens(authorization, cookie).map_err(|e| e.to_string())?;
        let Some(p) = v.pick(carried, now).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let cached = matches!(p.lookup, Lookup::Cached(_));
        let checked = match p.lookup {
            Lookup::Cached(t) => v.check_times(p.key, t, now),
            Lookup::Parsed(t) => v.check_parsed(p.key, t, now).await,
        };
        let (_, verified) = v.accept(checked, now).map_err(|e| e.to_string())?;
        Ok(Some((p.transfer, verified, cached)))
    }

    #[tokio::test]
    async fn a_token_is_verified_once_then_served_from_the_cache_until_it_expires() {
        let (issuer, v, clock) = setup(SuperTokensSettings::default());
        let token = issuer
            .mint(&MintOptions {
                ttl_secs: 60,
                ..Default::default()
            })
            .expect("mint");
        let bearer = format!("Bearer {token}");
        assert_eq!(
            verify(&v, Some(&bearer), None, NOW).await,
            Ok(Some((TransferMethod::Header, true, false)))
        );
        assert_eq!(
            verify(&v, Some(&bearer), None, NOW).await,
            Ok(Some((TransferMethod::Header, true, true)))
        );
        clock.advance(61_000);
        let expired = verify(&v, Some(&bearer), None, clock.now_ms()).await;
        assert_eq!(expired, Err("Failed to verify access token: token expired".into()));
    }

    #[tokio::test]
    async fn forged_and_mismatched_tokens_are_rejected() {
        let (issuer, v, _) = setup(SuperTokensSettings::default());
        let rogue = issuer
            .mint(&MintOptions {
                key: KeyChoice::Rogue,
                ..Default::default()
            })
            .expect("mint");
        let got = verify(&v, Some(&format!("Bearer {rogue}")), None, NOW).await;
        assert_eq!(got, Err("Failed to verify access token: signature does not verify".into()));
        // A static-key token where the setting says dynamic keys.
        let statik = issuer
            .mint(&MintOptions {
                key: KeyChoice::Static,
                ..Default::default()
            })
            .expect("mint");
        let got = verify(&v, Some(&format!("Bearer {statik}")), None, NOW).await;
        assert_eq!(got, Err(Rejected::DynamicKeyMismatch.to_string()));
    }

    #[tokio::test]
    async fn the_header_wins_when_it_counts_and_a_duplicated_cookie_only_when_chosen() {
        let (issuer, v, _) = setup(SuperTokensSettings::default());
        let token = issuer.mint(&MintOptions::default()).expect("mint");
        let both = format!("sAccessToken={token}; sAccessToken={token}");
        let bearer = format!("Bearer {token}");
        assert_eq!(
            verify(&v, Some(&bearer), Some(&both), NOW).await,
            Ok(Some((TransferMethod::Header, true, false)))
        );
        // A header that does not parse counts as absent: the (duplicated) cookie is chosen.
        let got = verify(&v, Some("Bearer not-a-token"), Some(&both), NOW).await;
        assert_eq!(got, Err(CredentialError::DuplicateCookies.to_string()));
        let one = format!("sAccessToken={token}");
        assert_eq!(
            verify(&v, Some("Bearer x"), Some(&one), NOW).await,
            Ok(Some((TransferMethod::Cookie, true, true)))
        );
        assert_eq!(verify(&v, Some("Bearer x"), Some("sAccessToken=y"), NOW).await, Ok(None));
    }

    #[tokio::test]
    async fn a_legacy_token_that_fails_locally_goes_to_the_core_while_young() {
        let st = SuperTokensSettings::default();
        let interval_ms = st.jwks_refresh_interval_secs * 1000;
        let (_, v, clock) = setup(st);
        let legacy = crate::credentials::token::test_tokens::legacy_v2(&serde_json::json!({
            "userId": "u", "sessionHandle": "h", "refreshTokenHash1": "r", "userData": {},
            "timeCreated": NOW - 1000, "expiryTime": NOW + 2 * interval_ms,
        }));
        let bearer = format!("Bearer {legacy}");
        assert_eq!(
            verify(&v, Some(&bearer), None, NOW).await,
            Ok(Some((TransferMethod::Header, false, false)))
        );
        clock.advance(interval_ms + 1);
        let got = verify(&v, Some(&bearer), None, clock.now_ms()).await;
        assert_eq!(got, Err("Failed to verify access token: signature does not verify".into()));
    }
}
