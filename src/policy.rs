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
    pub validators: Vec<Validator>,
}

impl Route {
    pub fn compile(settings: &RouteSettings) -> Result<Self, String> {
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
        let validators = settings.claims.iter().map(Validator::compile).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            methods,
            glob,
            pattern: settings.path.clone(),
            session: settings.session,
            check_database: settings.check_database,
            validators,
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
    pub fn new(settings: &[RouteSettings]) -> Result<Self, String> {
        let routes = settings.iter().map(Route::compile).collect::<Result<Vec<_>, _>>()?;
        let fallback = Route::compile(&RouteSettings {
            methods: vec!["*".into()],
            path: "/**".into(),
            session: SessionRequirement::Optional,
            check_database: None,
            claims: Vec::new(),
        })?;
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
        }
    }

    #[test]
    fn first_match_wins_and_globs_respect_segments() {
        let p = Policy::new(&[
            route(&["POST"], "/admin/**", SessionRequirement::Required),
            route(&["*"], "/items/*", SessionRequirement::Required),
        ])
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
        let p = Policy::new(&[route(&["*"], "/**", SessionRequirement::Required)]).expect("policy");
        for path in ["/", "", "/a", "/a/b/c?d=1"] {
            assert_eq!(p.route_for("DELETE", path).session, SessionRequirement::Required, "{path}");
        }
    }

    #[test]
    fn rejects_bad_routes() {
        assert!(Route::compile(&route(&["GET"], "admin", SessionRequirement::Optional)).is_err());
        assert!(Route::compile(&route(&[], "/a", SessionRequirement::Optional)).is_err());
        assert!(Route::compile(&route(&["GET"], "/a[", SessionRequirement::Optional)).is_err());
    }
}
