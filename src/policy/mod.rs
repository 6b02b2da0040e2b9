//! Route policy: the first `[[routes]]` entry whose methods and path glob match the original
//! request decides whether a session is required and which claim validators run. Every reading
//! of the request (each path a backend may read its target as, each method it may be served as)
//! must find the same route, or no route judges it.

pub mod claims;

use globset::{GlobBuilder, GlobMatcher};
use serde_json::{Map, Value};

use crate::canonical_target::{Target, fold_case, is_folded};
use crate::settings::{ClaimRule, RouteSettings, SessionRequirement, Settings};
use claims::{ClaimError, ClaimEvalError, Reason};

#[derive(Debug, Clone)]
pub struct Route {
    /// Upper-cased methods; `None` matches any.
    methods: Option<Vec<String>>,
    glob: GlobMatcher,
    /// The glob for backends that route without regard to case (`paths.case_insensitive_backends`).
    folded_glob: Option<GlobMatcher>,
    pub pattern: String,
    pub session: SessionRequirement,
    pub check_database: Option<bool>,
    /// The global validators this route keeps, then its own: everything the decision runs.
    pub validators: Vec<ClaimRule>,
    /// Allowed tenants; empty allows every tenant.
    pub tenants: Vec<String>,
}

/// A route whose path glob does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path `{path}`: {message}")]
pub struct RouteError {
    /// Its place in `[[routes]]`; `None` for the SDK's own route.
    pub index: Option<usize>,
    pub path: String,
    pub message: String,
}

impl Route {
    /// Compiles a route (checked while read); `globals` are the validators the recipes register
    /// for every route.
    fn compile(settings: &RouteSettings, globals: &[ClaimRule], case_insensitive: bool) -> Result<Self, String> {
        // `*` stays within one path segment; `**` spans segments.
        let compile = |pattern: &str, case_insensitive: bool| {
            GlobBuilder::new(pattern)
                .literal_separator(true)
                .case_insensitive(case_insensitive)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| e.kind().to_string())
        };
        let glob = compile(&settings.path, false)?;
        let folded_glob = if case_insensitive {
            Some(compile(&fold_case(&settings.path), true)?)
        } else {
            None
        };
        let methods = if settings.methods.iter().any(|m| m == "*") {
            None
        } else {
            Some(settings.methods.iter().map(|m| m.to_ascii_uppercase()).collect())
        };
        let own = &settings.claims;
        let keeps_globals = settings.global_claims && settings.session != SessionRequirement::Public;
        let mut validators: Vec<ClaimRule> = globals
            .iter()
            .filter(|g| keeps_globals && !own.iter().any(|v| v.claim() == g.claim()))
            .cloned()
            .collect();
        validators.extend(own.iter().cloned());
        Ok(Self {
            methods,
            glob,
            folded_glob,
            pattern: settings.path.clone(),
            session: settings.session,
            check_database: settings.check_database,
            validators,
            tenants: settings.tenants.clone(),
        })
    }

    /// The route's claim validators over `payload`, as the SDK's `validateClaims` runs them.
    pub fn claim_errors(&self, payload: &Map<String, Value>, now_ms: u64) -> Result<Vec<ClaimError>, ClaimEvalError> {
        let mut errors = Vec::new();
        for rule in &self.validators {
            errors.extend(claims::validate(rule, payload, now_ms)?);
        }
        Ok(errors)
    }

    /// The route's tenant allow-list against the session's tenant; `None` when it may pass.
    pub fn tenant_error(&self, tenant: &str) -> Option<ClaimError> {
        if self.tenants.is_empty() || self.tenants.iter().any(|t| t == tenant) {
            return None;
        }
        Some(ClaimError {
            id: "tId".into(),
            reason: Some(Reason::TenantNotAllowed {
                tenant: tenant.to_owned(),
                allowed: self.tenants.clone(),
            }),
        })
    }

    fn method_matches(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }
}

/// A request whose readings fall under different routes (kept for the log line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{method} {path}` falls under route `{route}`, but backends may read it as `{other_method} {other_path}`, under route `{other_route}`"
)]
pub struct Ambiguous {
    pub method: String,
    pub path: String,
    pub route: String,
    pub other_method: String,
    pub other_path: String,
    pub other_route: String,
}

#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
    fallback: Route,
    /// Whether paths are also matched folded (`paths.case_insensitive_backends`).
    case_insensitive: bool,
    /// Whether a pattern holds an upper-case or non-ASCII letter; if none does, a lower-case
    /// ASCII path matches the same route folded or not.
    patterns_fold: bool,
}

impl Policy {
    /// The routes in force (the SDK's own first, when they pass untouched), compiled once.
    pub fn compile(settings: &Settings) -> Result<Self, RouteError> {
        let globals = claims::global_validators(&settings.supertokens);
        let case_insensitive = settings.paths.case_insensitive_backends;
        let effective = settings.effective_routes();
        let sdk_routes = effective.len() - settings.routes.len();
        let routes = effective
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Route::compile(r, &globals, case_insensitive).map_err(|message| RouteError {
                    index: i.checked_sub(sdk_routes),
                    path: r.path.clone(),
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let patterns_fold = effective.iter().any(|r| !is_folded(&r.path));
        let fallback = Route::compile(
            &RouteSettings::any_method("/**", SessionRequirement::Optional),
            &globals,
            case_insensitive,
        )
        .map_err(|message| RouteError {
            index: None,
            path: "/**".into(),
            message,
        })?;
        Ok(Self {
            routes,
            fallback,
            case_insensitive,
            patterns_fold,
        })
    }

    /// The route that judges a request: `methods` is the request's method, then any method a
    /// backend may serve it as instead (method-override headers). Every method with every
    /// reading of the target, matched as written and, for case-insensitive backends, folded,
    /// must find the same route.
    pub fn route_for(&self, methods: &[&str], target: &Target<'_>) -> Result<&Route, Box<Ambiguous>> {
        let method = methods.first().copied().unwrap_or("GET");
        let canonical = target.canonical();
        let chosen = self.first_match(method, canonical, false);
        let check = |m: &str, path: &str, folded: bool| {
            let other = self.first_match(m, path, folded);
            if std::ptr::eq(other, chosen) {
                Ok(())
            } else {
                Err(Box::new(Ambiguous {
                    method: method.to_owned(),
                    path: canonical.to_owned(),
                    route: chosen.pattern.clone(),
                    other_method: m.to_owned(),
                    other_path: path.to_owned(),
                    other_route: other.pattern.clone(),
                }))
            }
        };
        for (i, &m) in methods.iter().enumerate() {
            for (j, path) in target.readings().enumerate() {
                if i + j > 0 {
                    check(m, path, false)?;
                }
                if self.case_insensitive && (self.patterns_fold || !is_folded(path)) {
                    check(m, &fold_case(path), true)?;
                }
            }
        }
        Ok(chosen)
    }

    fn first_match(&self, method: &str, path: &str, folded: bool) -> &Route {
        self.routes
            .iter()
            .find(|r| {
                let glob = if folded { r.folded_glob.as_ref() } else { Some(&r.glob) };
                r.method_matches(method) && glob.is_some_and(|g| g.is_match(path))
            })
            .unwrap_or(&self.fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical_target::canonicalise;

    fn settings(routes: &[RouteSettings]) -> Settings {
        let mut s = Settings::default();
        s.supertokens.pass_sdk_routes = false;
        s.routes = routes.to_vec();
        s
    }

    fn policy(routes: &[RouteSettings]) -> Policy {
        Policy::compile(&settings(routes)).expect("policy")
    }

    fn judge<'p>(p: &'p Policy, methods: &[&str], target: &str) -> Result<&'p Route, Box<Ambiguous>> {
        p.route_for(methods, &canonicalise(target).expect("target"))
    }

    fn route_of<'p>(p: &'p Policy, method: &str, target: &str) -> &'p Route {
        judge(p, &[method], target).expect("one route")
    }

    fn route(methods: &[&str], path: &str, session: SessionRequirement) -> RouteSettings {
        RouteSettings {
            methods: methods.iter().map(|m| m.to_string()).collect(),
            ..RouteSettings::any_method(path, session)
        }
    }

    #[test]
    fn first_match_wins_and_globs_respect_segments() {
        let p = policy(&[
            route(&["POST"], "/admin/**", SessionRequirement::Required),
            route(&["*"], "/items/*", SessionRequirement::Required),
        ]);
        assert_eq!(route_of(&p, "post", "/admin/x/y?z=1").session, SessionRequirement::Required);
        assert_eq!(route_of(&p, "GET", "/admin/x").session, SessionRequirement::Optional);
        assert_eq!(route_of(&p, "GET", "/items/1").session, SessionRequirement::Required);
        assert_eq!(route_of(&p, "GET", "/items/1/2").session, SessionRequirement::Optional);
        assert_eq!(route_of(&p, "GET", "").pattern, "/**");
    }

    #[test]
    fn double_star_matches_the_root_too() {
        // `lambda.policy_resource = "stage"` relies on a `/**` route meeting every path.
        let p = policy(&[route(&["*"], "/**", SessionRequirement::Required)]);
        for path in ["/", "", "/a", "/a/b/c?d=1", "//a/../%62;x\\C", "/A%2Fb"] {
            assert_eq!(route_of(&p, "DELETE", path).session, SessionRequirement::Required, "{path}");
        }
    }

    #[test]
    fn rejects_bad_routes() {
        assert!(route(&["GET"], "admin", SessionRequirement::Optional).check().is_err());
        assert!(route(&[], "/a", SessionRequirement::Optional).check().is_err());
        let mut blank = route(&["GET"], "/a", SessionRequirement::Optional);
        blank.tenants = vec![" ".into()];
        assert!(blank.check().is_err());
        let mut public = route(&["GET"], "/a", SessionRequirement::Public);
        public.check_database = Some(true);
        assert!(public.check().is_err());
        let bad_glob = Policy::compile(&settings(&[
            route(&["GET"], "/a", SessionRequirement::Optional),
            route(&["GET"], "/a[", SessionRequirement::Optional),
        ]));
        assert_eq!(bad_glob.err().map(|e| (e.index, e.path)), Some((Some(1), "/a[".to_owned())));
        let mut with_sdk = settings(&[route(&["GET"], "/b[", SessionRequirement::Optional)]);
        with_sdk.supertokens.pass_sdk_routes = true;
        assert_eq!(Policy::compile(&with_sdk).err().map(|e| e.index), Some(Some(0)));
    }

    #[test]
    fn routes_inherit_replace_or_drop_global_validators() {
        let mut own = route(&["*"], "/a", SessionRequirement::Optional);
        own.claims = vec![
            serde_json::from_value(serde_json::json!({"claim": "st-ev", "is": true, "max_age_secs": 60})).expect("spec"),
            serde_json::from_value(serde_json::json!({"claim": "st-role", "includes": "admin"})).expect("spec"),
        ];
        let mut opted_out = route(&["*"], "/c", SessionRequirement::Optional);
        opted_out.global_claims = false;
        let mut s = settings(&[own, route(&["*"], "/b", SessionRequirement::Optional), opted_out]);
        s.supertokens.email_verification = crate::settings::EmailVerificationMode::Required;
        s.supertokens.mfa = true;
        let p = Policy::compile(&s).expect("policy");
        let claims = |path: &str| -> Vec<(String, Option<u64>)> {
            route_of(&p, "GET", path)
                .validators
                .iter()
                .map(|v| match v {
                    ClaimRule::Value(v) => (v.claim.clone(), v.max_age_secs),
                    ClaimRule::MfaCompleted => ("st-mfa".into(), None),
                })
                .collect()
        };
        let named = |v: &[(&str, Option<u64>)]| v.iter().map(|(c, a)| (c.to_string(), *a)).collect::<Vec<_>>();
        assert_eq!(claims("/a"), named(&[("st-mfa", None), ("st-ev", Some(60)), ("st-role", None)]));
        assert_eq!(claims("/b"), named(&[("st-ev", None), ("st-mfa", None)]));
        assert!(claims("/c").is_empty());
        assert_eq!(claims("/elsewhere"), named(&[("st-ev", None), ("st-mfa", None)]));
    }

    #[test]
    fn readings_that_find_another_route_are_ambiguous() {
        let p = policy(&[
            route(&["*"], "/admin/**", SessionRequirement::Required),
            route(&["DELETE"], "/items/*", SessionRequirement::Required),
        ]);
        for target in [
            "//admin/users",
            "/x/../admin/users",
            "/%61dmin/users",
            "/admin%2Fusers",
            "/admin;x/users",
            "/ADMIN/users",
            "/Admin/users",
            "/adm\u{131}n/users",
            "/x/%2e%2e/admin/users",
            "/admin%252Fusers",
        ] {
            let e = judge(&p, &["GET"], target).expect_err(target);
            assert!(e.route == "/admin/**" || e.other_route == "/admin/**", "{target}: {e}");
        }
        // Readings that all fall under one route are fine, however odd.
        assert_eq!(route_of(&p, "GET", "/admin/x%2Fy").pattern, "/admin/**");
        assert_eq!(route_of(&p, "GET", "/a%20b//c/./d").pattern, "/**");
        // A method-override header that would find another route.
        let e = judge(&p, &["POST", "DELETE"], "/items/1").expect_err("override");
        assert_eq!((e.route.as_str(), e.other_route.as_str()), ("/**", "/items/*"));
        assert_eq!(route_of(&p, "DELETE", "/items/1").pattern, "/items/*");
        assert!(judge(&p, &["GET", "PUT"], "/items/1").is_ok());
    }

    #[test]
    fn case_sensitive_backends_can_opt_out_of_folding() {
        let routes = [route(&["*"], "/admin/**", SessionRequirement::Required)];
        let mut s = settings(&routes);
        s.paths.case_insensitive_backends = false;
        let sensitive = Policy::compile(&s).expect("policy");
        assert_eq!(route_of(&sensitive, "GET", "/ADMIN/x").pattern, "/**");
        assert!(judge(&policy(&routes), &["GET"], "/ADMIN/x").is_err());
        // Patterns with capitals are folded too.
        let p = policy(&[route(&["*"], "/Admin/**", SessionRequirement::Required)]);
        assert!(judge(&p, &["GET"], "/admin/x").is_err());
        assert_eq!(route_of(&p, "GET", "/Admin/x").pattern, "/Admin/**");
        let p = policy(&[route(&["*"], "/caf\u{e9}/**", SessionRequirement::Required)]);
        assert!(judge(&p, &["GET"], "/caf\u{c9}/x").is_err());
    }
}
