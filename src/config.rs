//! The configuration as the process runs it: the settings, typed while read, and the route policy
//! compiled from them, once, for `serve`, `lambda`, `dev` and `check-config` alike.

use std::path::Path;

use crate::policy::{Policy, RouteError};
use crate::settings::{ConfigError, Settings};

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// Compiled from `routes`, `paths` and the global claim settings: change those only before
    /// `compile`.
    pub policy: Policy,
}

impl Config {
    /// Reads `path` (which must exist unless `allow_missing`) under the environment overrides.
    pub fn load(path: &Path, allow_missing: bool) -> Result<Self, ConfigError> {
        Self::compile(Settings::load(path, allow_missing)?).map_err(|e| e.located(Some(path)))
    }

    /// Reads the text of the file at `path` (already read, so that a reload knows exactly what
    /// it applied) under the environment overrides.
    pub fn from_file_text(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let settings = Settings::from_toml_str(text).map_err(|e| e.located(Some(path)))?;
        Self::compile(settings).map_err(|e| e.located(Some(path)))
    }

    /// Reads TOML text under the environment overrides (tests and `dev`).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::compile(Settings::from_toml_str(text)?).map_err(|e| e.located(None))
    }

    /// Compiles the route policy of `settings`.
    pub fn compile(settings: Settings) -> Result<Self, ConfigError> {
        let policy = Policy::compile(&settings).map_err(route_error)?;
        Ok(Self { settings, policy })
    }
}

fn route_error(e: RouteError) -> ConfigError {
    match e.index {
        Some(i) => ConfigError::invalid(format!("routes[{i}].path"), e.to_string()),
        // The SDK's own route is made of `api_base_path`.
        None => ConfigError::invalid("supertokens.api_base_path", e.to_string()),
    }
}
