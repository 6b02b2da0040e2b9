//! Route policy: the first `[[routes]]` entry whose methods and path glob match the original
//! request decides whether a session is required and which claim validators run.

use globset::{GlobBuilder, GlobMatcher};

use crate::claims::Validator;
use crate::config::{RouteSettings, SessionRequirement};

#[derive(Debug, Clone)]
pub struct Route {
    /// Upper-cased methods; `None` matches any.
    methods: Option<Vec<String>>,
    glob: GlobMatcher,
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
    pub fn compile(settings: &RouteSettings, globals: &[Validator]) -> Result<Self, String> {
        if !settings.path.starts_with('/') {
            return Err(format!("path `{}` must start with `/`", settings.path));
        }
        // `*` stays within one path segment; `**` spans segments.
        let glob = GlobBuilder::new(&settings.path)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("path `{}`: {e}", settings.path))?
            .compile_matcher();
        if settings.methods.is_empty() {
            return Err("methods must not be empty (use [\"*\"] for any)".into());
        }
        let methods = if settings.methods.iter().any(|m| m == "*") {
            None
        } else {
            Some(settings.methods.iter().map(|m| m.to_ascii_uppercase()).collect())
        };
        let own = settings.claims.iter().map(Validator::compile).collect::<Result<Vec<_>, _>>()?;
        if settings.tenants.iter().any(|t| t.trim().is_empty()) {
            return Err("tenants must not contain an empty name".into());
        }
        let mut validators: Vec<Validator> = globals
            .iter()
            .filter(|g| settings.global_claims && !own.iter().any(|v| v.claim == g.claim))
            .cloned()
            .collect();
        validators.extend(own);
        Ok(Self {
            methods,
            glob,
            pattern: settings.path.clone(),
            session: settings.session,
            check_database: settings.check_database,
            validators,
            tenants: settings.tenants.clone(),
        })
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self
            .methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m.eq_ignore_ascii_case(method)));
        method_ok && self.glob.is_match(path)
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
    fallback: Route,
}

impl Policy {
    pub fn new(settings: &[RouteSettings], globals: &[Validator]) -> Result<Self, String> {
        let routes = settings.iter().map(|r| Route::compile(r, globals)).collect::<Result<Vec<_>, _>>()?;
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
        )?;
        Ok(Self { routes, fallback })
    }

    /// The route for a request; the query string is not part of the match.
    pub fn route_for(&self, method: &str, path_and_query: &str) -> &Route {
        let path = path_and_query.split(['?', '#']).next().unwrap_or("/");
        let path = if path.is_empty() { "/" } else { path };
        self.routes.iter().find(|r| r.matches(method, path)).unwrap_or(&self.fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let p = Policy::new(
            &[
                route(&["POST"], "/admin/**", SessionRequirement::Required),
                route(&["*"], "/items/*", SessionRequirement::Required),
            ],
            &[],
        )
        .expect("policy");
        assert_eq!(p.route_for("post", "/admin/x/y?z=1").session, SessionRequirement::Required);
        assert_eq!(p.route_for("GET", "/admin/x").session, SessionRequirement::Optional);
        assert_eq!(p.route_for("GET", "/items/1").session, SessionRequirement::Required);
        assert_eq!(p.route_for("GET", "/items/1/2").session, SessionRequirement::Optional);
        assert_eq!(p.route_for("GET", "").pattern, "/**");
    }

    #[test]
    fn double_star_matches_the_root_too() {
        // `lambda.policy_resource = "stage"` relies on a `/**` route meeting every path.
        let p = Policy::new(&[route(&["*"], "/**", SessionRequirement::Required)], &[]).expect("policy");
        for path in ["/", "", "/a", "/a/b/c?d=1"] {
            assert_eq!(p.route_for("DELETE", path).session, SessionRequirement::Required, "{path}");
        }
    }

    #[test]
    fn rejects_bad_routes() {
        assert!(Route::compile(&route(&["GET"], "admin", SessionRequirement::Optional), &[]).is_err());
        assert!(Route::compile(&route(&[], "/a", SessionRequirement::Optional), &[]).is_err());
        assert!(Route::compile(&route(&["GET"], "/a[", SessionRequirement::Optional), &[]).is_err());
        let mut blank = route(&["GET"], "/a", SessionRequirement::Optional);
        blank.tenants = vec![" ".into()];
        assert!(Route::compile(&blank, &[]).is_err());
    }

    #[test]
    fn routes_inherit_replace_or_drop_global_validators() {
        let globals = [Validator::email_verified(), Validator::mfa_completed()];
        let mut own = route(&["*"], "/a", SessionRequirement::Optional);
        own.claims = vec![
            serde_json::from_value(serde_json::json!({"claim": "st-ev", "is": true, "max_age_secs": 60})).expect("spec"),
            serde_json::from_value(serde_json::json!({"claim": "st-role", "includes": "admin"})).expect("spec"),
        ];
        let r = Route::compile(&own, &globals).expect("route");
        let claims: Vec<(&str, Option<u64>)> = r.validators.iter().map(|v| (v.claim.as_str(), v.max_age_secs)).collect();
        assert_eq!(claims, vec![("st-mfa", None), ("st-ev", Some(60)), ("st-role", None)]);
        let plain = Route::compile(&route(&["*"], "/b", SessionRequirement::Optional), &globals).expect("route");
        assert_eq!(plain.validators, globals.to_vec());
        let mut opted_out = route(&["*"], "/c", SessionRequirement::Optional);
        opted_out.global_claims = false;
        assert!(Route::compile(&opted_out, &globals).expect("route").validators.is_empty());
    }
}
