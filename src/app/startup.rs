//! Builds the listener and state, keeps the JWKS warm in the background, and serves until
//! SIGTERM or Ctrl-C; then drains: not ready at once, still serving for
//! `server.shutdown_delay_ms`, then closed with requests in flight given
//! `server.shutdown_timeout_ms` to finish. A second signal exits at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

use crate::app::listener::ConnectionLimits;
use crate::app::reload::{ConfigSource, Loaded};
use crate::app::tls::TlsListeners;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::front_door::router;
use crate::state::{AppState, StateError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::app::tls::TlsError),
}

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    grpc_listener: TcpListener,
    grpc_address: SocketAddr,
    state: AppState,
    /// The file reloads read, and the bytes the running configuration came from.
    reload: Option<(ConfigSource, Vec<u8>)>,
    tls: Option<Arc<TlsListeners>>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: SharedClock) -> Result<Self, StartupError> {
        let bind = |addr: SocketAddr| async move {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartupError::Bind { addr, source })?;
            let bound = listener.local_addr().map_err(|source| StartupError::Bind { addr, source })?;
            Ok::<_, StartupError>((listener, bound))
        };
        let (listener, address) = bind(config.settings.server.http_listen).await?;
        let (grpc_listener, grpc_address) = bind(config.settings.server.grpc_listen).await?;
        let tls = TlsListeners::load(&config.settings.server.tls)?;
        let state = AppState::new(config, clock)?;
        Ok(Self {
            listener,
            address,
            grpc_listener,
            grpc_address,
            state,
            reload: None,
            tls,
        })
    }

    /// Builds from `loaded` and reloads from `source` while serving (SIGHUP, and changes of the
    /// file when `server.config_watch_interval_ms` is not 0).
    pub async fn build_reloading(source: ConfigSource, loaded: Loaded) -> Result<Self, StartupError> {
        let Loaded { config, seen } = loaded;
        let mut app = Self::build(config).await?;
        app.reload = Some((source, seen));
        Ok(app)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn grpc_address(&self) -> SocketAddr {
        self.grpc_address
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP and gRPC until `shutdown` resolves, then drains.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), StartupError> {
        let refresher = tokio::spawn(self.state.clone().keep_jwks_warm());
        let reloader = self.reload.map(|(source, seen)| {
            let interval = Duration::from_millis(self.state.server.config_watch_interval_ms);
            tokio::spawn(crate::app::reload::watch(
                self.state.clone(),
                self.tls.clone(),
                source,
                seen,
                interval,
            ))
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let (reflection_v1, reflection_v1alpha) = crate::front_door::envoy_grpc::reflection();
        let server = &self.state.server;
        let grpc_router = tonic::transport::Server::builder()
            // The same limits as HTTP: one in-flight budget shared by both listeners (shed with
            // RESOURCE_EXHAUSTED, never queued), the request timeout (CANCELLED), the header list.
            .load_shed(true)
            .timeout(Duration::from_millis(server.request_timeout_ms.max(1)))
            .http2_max_header_list_size(u32::try_from(server.max_header_bytes).unwrap_or(u32::MAX))
            .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
                self.state.in_flight.clone(),
            ))
            .add_service(crate::front_door::envoy_grpc::service(self.state.clone()))
            .add_optional_service(reflection_v1)
            .add_optional_service(reflection_v1alpha);
        let limits = ConnectionLimits::from_settings(&self.state.server);
        let grpc = match &self.tls {
            None => tokio::spawn(grpc_router.serve_with_incoming_shutdown(
                // Small answers must leave at once: no Nagle delay on Check responses.
                TcpListenerStream::new(self.grpc_listener).map(|s| {
                    if let Ok(stream) = &s {
                        let _ = stream.set_nodelay(true);
                    }
                    s
                }),
                stopped(stop_rx.clone()),
            )),
            Some(tls) => tokio::spawn(grpc_router.serve_with_incoming_shutdown(
                crate::app::listener::tls_incoming(self.grpc_listener, tls.clone(), limits.header_read_timeout, stop_rx.clone()),
                stopped(stop_rx.clone()),
            )),
        };
        let http = crate::app::listener::serve(
            self.listener,
            router(self.state.clone()),
            limits,
            self.tls.clone(),
            stopped(stop_rx),
        );
        let http = tokio::spawn(http);
        shutdown.await;
        // Not ready from now on, still serving while load balancers catch up.
        self.state.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        // The timings of the configuration live now: a reload may have changed them.
        let (delay_ms, timeout_ms) = {
            let live = self.state.live();
            (live.settings.server.shutdown_delay_ms, live.settings.server.shutdown_timeout_ms)
        };
        let delay = Duration::from_millis(delay_ms);
        let grace = Duration::from_millis(timeout_ms);
        tracing::info!(delay_ms, "shutting down: not ready; listeners close after the delay");
        tokio::time::sleep(delay).await;
        let _ = stop_tx.send(true);
        let finished = tokio::time::timeout(grace, async { (http.await, grpc.await) }).await;
        refresher.abort();
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        let Ok((http_result, grpc_result)) = finished else {
            tracing::warn!(timeout_ms, "requests still in flight at the shutdown timeout; exiting");
            return Ok(());
        };
        match (http_result, grpc_result) {
            (Ok(Ok(())), Ok(Ok(()))) => Ok(()),
            (Ok(Err(e)), _) => Err(StartupError::Serve(e)),
            (_, Ok(Err(e))) => Err(StartupError::Serve(std::io::Error::other(e.to_string()))),
            (Err(e), _) | (_, Err(e)) => Err(StartupError::Serve(std::io::Error::other(e.to_string()))),
        }
    }

    /// Serves until SIGTERM or Ctrl-C, then drains; a second signal during the drain exits at
    /// once (an operator who means it).
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(async {
            shutdown_signal().await;
            tokio::spawn(async {
                shutdown_signal().await;
                tracing::warn!("second shutdown signal: exiting without draining");
                std::process::exit(1);
            });
        })
        .await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}
