//! Route policy: the first `[[routes]]` entry whose methods and path glob match the original
//! request decides whether a session is required and which claim validators run. Every reading
//! of the request (each path a backend may read its target as, each method it may be served as)
//! must find the same route, or no route judges it.

pub mod claims;

use globset::{GlobBuilder, GlobMatcher};

use crate::policy::claims::Validator;
use crate::request::target::{Target, fold_case, is_folded};
use crate::settings::{PathSettings, RouteSettings, SessionRequirement};

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
    pub validators: Vec<Validator>,
    /// Allowed tenants; empty allows every tenant.
    pub tenants: Vec<String>,
}

impl Route {
    /// Compiles a route; `globals` are the validators the recipes register for every route.
    pub fn compile(settings: &RouteSettings, globals: &[Validator], paths: &PathSettings) -> Result<Self, String> {
        if !settings.path.starts_with('/') {
            return Err(format!("path `{}` must start with `/`", settings.path));
        }
        // `*` stays within one path segment; `**` spans segments.
        let compile = |pattern: &str, case_insensitive: bool| {
            GlobBuilder::new(pattern)
                .literal_separator(true)
                .case_insensitive(case_insensitive)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("path `{}`: {e}", settings.path))
        };
        let glob = compile(&settings.path, false)?;
        let folded_glob = if paths.case_insensitive_backends {
            Some(compile(&fold_case(&settings.path), true)?)
        } else {
            None
        };
        if settings.methods.is_empty() {
            return Err("methods must not be empty (use [\"*\"] for any)".into());
        }
        let methods = if settings.methods.iter().any(|m| m == "*") {
            None
        } else {
            Some(settings.methods.iter().map(|m| m.to_ascii_uppercase()).collect())
        };
        let own = settings.claims.iter().map(Validator::compile).collect::<Result<Vec<_>, _>>()?;
        if settings.session == SessionRequirement::Public
            && (!own.is_empty() || !settings.tenants.is_empty() || settings.check_database.is_some())
        {
            return Err("a public route reads no session, so it takes no claims, tenants or check_database".into());
        }
        if settings.tenants.iter().any(|t| t.trim().is_empty()) {
            return Err("tenants must not contain an empty name".into());
        }
        let keeps_globals = settings.global_claims && settings.session != SessionRequirement::Public;
        let mut validators: Vec<Validator> = globals
            .iter()
            .filter(|g| keeps_globals && !own.iter().any(|v| v.claim == g.claim))
            .cloned()
            .collect();
        validators.extend(own);
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
    pub fn new(settings: &[RouteSettings], globals: &[Validator], paths: &PathSettings) -> Result<Self, String> {
        let routes = settings
            .iter()
            .map(|r| Route::compile(r, globals, paths))
            .collect::<Result<Vec<_>, _>>()?;
        let patterns_fold = settings.iter().any(|r| !is_folded(&r.path));
        let fallback = Route::compile(
            &RouteSettings {
                methods: vec!["*".into()],
                path: "/**".into(),
                session: SessionRequirement::Optional,
                check_database: None,
                claims: Vec::new(),
                global_claims: true,
                tenants: Vec::new(),
            },
            globals,
            paths,
        )?;
        Ok(Self {
            routes,
            fallback,
            case_insensitive: paths.case_insensitive_backends,
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
    use crate::request::target::canonicalise;

    fn paths() -> PathSettings {
        PathSettings::default()
    }

    fn policy(routes: &[RouteSettings]) -> Policy {
        Policy::new(routes, &[], &paths()).expect("policy")
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
            path: path.into(),
            session,
            check_database: None,
            claims: Vec::new(),
            global_claims: true,
            tenants: Vec::new(),
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
        let compile = |r: &RouteSettings| Route::compile(r, &[], &paths());
        assert!(compile(&route(&["GET"], "admin", SessionRequirement::Optional)).is_err());
        assert!(compile(&route(&[], "/a", SessionRequirement::Optional)).is_err());
        assert!(compile(&route(&["GET"], "/a[", SessionRequirement::Optional)).is_err());
        let mut blank = route(&["GET"], "/a", SessionRequirement::Optional);
        blank.tenants = vec![" ".into()];
        assert!(compile(&blank).is_err());
    }

    #[test]
    fn routes_inherit_replace_or_drop_global_validators() {
        let globals = [Validator::email_verified(), Validator::mfa_completed()];
        let mut own = route(&["*"], "/a", SessionRequirement::Optional);
        own.claims = vec![
            serde_json::from_value(serde_json::json!({"claim": "st-ev", "is": true, "max_age_secs": 60})).expect("spec"),
            serde_json::from_value(serde_json::json!({"claim": "st-role", "includes": "admin"})).expect("spec"),
        ];
        let r = Route::compile(&own, &globals, &paths()).expect("route");
        let claims: Vec<(&str, Option<u64>)> = r.validators.iter().map(|v| (v.claim.as_str(), v.max_age_secs)).collect();
        assert_eq!(claims, vec![("st-mfa", None), ("st-ev", Some(60)), ("st-role", None)]);
        let plain = Route::compile(&route(&["*"], "/b", SessionRequirement::Optional), &globals, &paths()).expect("route");
        assert_eq!(plain.validators, globals.to_vec());
        let mut opted_out = route(&["*"], "/c", SessionRequirement::Optional);
        opted_out.global_claims = false;
        assert!(Route::compile(&opted_out, &globals, &paths()).expect("route").validators.is_empty());
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
        let sensitive = Policy::new(
            &routes,
            &[],
            &PathSettings {
                case_insensitive_backends: false,
            },
        )
        .expect("policy");
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
