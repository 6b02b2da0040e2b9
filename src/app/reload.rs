//! Reloads the configuration file while serving: on SIGHUP, and when the content of the file, or
//! of the TLS certificate files, changes (polled, so that an editor's rename, a `kubectl cp` or
//! a Kubernetes ConfigMap or Secret update, which swaps a symlink to a new directory, are all
//! seen the same way). A file that does not load is refused, counted and logged with the key at
//! fault; the running configuration stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::app::tls::TlsListeners;
use crate::config::Config;
use crate::settings::{ConfigError, Settings};
use crate::state::AppState;

/// A change is applied only once the content has stayed the same this long: an editor that
/// truncates and rewrites the file in place is not caught half-way.
const SETTLE: Duration = Duration::from_millis(100);

type Adjust = Arc<dyn Fn(&mut Settings) + Send + Sync>;

/// Where the configuration comes from, and what the command changes in it after reading
/// (`dev` puts its own issuer in place of the core).
#[derive(Clone)]
pub struct ConfigSource {
    path: PathBuf,
    adjust: Option<Adjust>,
}

/// The configuration loaded, with the bytes it was read from.
pub struct Loaded {
    pub config: Config,
    pub(crate) seen: Vec<u8>,
}

impl ConfigSource {
    pub fn file(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            adjust: None,
        }
    }

    pub fn adjusted(mut self, adjust: impl Fn(&mut Settings) + Send + Sync + 'static) -> Self {
        self.adjust = Some(Arc::new(adjust));
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Loaded, ConfigError> {
        let seen = std::fs::read(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing(self.path.display().to_string()),
            _ => ConfigError::Load(format!("{}: {e}", self.path.display())),
        })?;
        let text = std::str::from_utf8(&seen).map_err(|e| ConfigError::Load(format!("{}: not UTF-8: {e}", self.path.display())))?;
        let mut config = Config::from_file_text(text, &self.path)?;
        if let Some(adjust) = &self.adjust {
            // Only settings the route policy is not compiled from are adjusted.
            adjust(&mut config.settings);
        }
        Ok(Loaded { config, seen })
    }
}

/// What set a reload off, for the log line.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Signal,
    FileChanged,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::FileChanged => "file changed",
        }
    }
}

/// The content of each watched file (`None`: unreadable), the configuration file first.
type Snapshot = Vec<Option<Vec<u8>>>;

/// Reloads on SIGHUP and, when `interval` is not zero, when a watched file's content differs
/// from what the running configuration was read from (`applied`: the configuration file's
/// bytes). Runs until aborted.
pub async fn watch(state: AppState, tls: Option<Arc<TlsListeners>>, source: ConfigSource, applied: Vec<u8>, interval: Duration) {
    let mut files = vec![source.path().to_path_buf()];
    let server_tls = &state.server.tls;
    files.extend(
        [&server_tls.cert_file, &server_tls.key_file, &server_tls.client_ca_file]
            .into_iter()
            .flatten()
            .cloned(),
    );
    let mut seen = snapshot(&files);
    if let Some(config) = seen.first_mut() {
        *config = Some(applied);
    }
    let mut hangups = hangups();
    loop {
        let trigger = tokio::select! {
            () = next_hangup(&mut hangups) => Trigger::Signal,
            () = changed(&files, &seen, interval) => Trigger::FileChanged,
        };
        // Taken before the files are read: a change made while reloading differs from it, and
        // is applied at the next look. A refused content is not tried again until it changes.
        seen = snapshot(&files);
        reload(&state, tls.as_deref(), &source, trigger);
    }
}

fn snapshot(files: &[PathBuf]) -> Snapshot {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

/// Reads, checks and applies the file and, with TLS, the certificate files again (a renewed
/// certificate keeps its path). Nothing is applied unless all load.
fn reload(state: &AppState, tls: Option<&TlsListeners>, source: &ConfigSource, trigger: Trigger) {
    let refused = |e: &dyn std::fmt::Display| {
        state.metrics.config_reload(false);
        tracing::error!(trigger = trigger.as_str(), error = %e, "configuration not reloaded: the running one stays");
    };
    let loaded = match source.load() {
        Ok(loaded) => loaded,
        Err(e) => return refused(&e),
    };
    let certificates = match tls.map(TlsListeners::prepare).transpose() {
        Ok(prepared) => prepared,
        Err(e) => return refused(&e),
    };
    match state.swap(loaded.config) {
        Ok(swapped) => {
            if let (Some(tls), Some(prepared)) = (tls, certificates) {
                tls.install(prepared);
            }
            state.metrics.config_reload(true);
            tracing::info!(
                trigger = trigger.as_str(),
                caches = swapped.caches.as_str(),
                "configuration reloaded"
            );
            if !swapped.needs_restart.is_empty() {
                tracing::warn!(
                    needs_restart = %swapped.needs_restart.join(", "),
                    "these settings changed but take effect only at the next start; their running values stay"
                );
            }
        }
        Err(e) => refused(&e),
    }
}

/// Resolves once a file's content differs from `seen` and has settled.
async fn changed(files: &[PathBuf], seen: &Snapshot, interval: Duration) {
    if interval.is_zero() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(interval).await;
        let now = snapshot(files);
        if now == *seen {
            continue;
        }
        tokio::time::sleep(SETTLE).await;
        if snapshot(files) == now {
            return;
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: reloads follow the file only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

#[cfg(unix)]
async fn next_hangup(hangups: &mut Hangups) {
    match hangups {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) {
    std::future::pending().await
}
