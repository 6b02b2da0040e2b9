//! The HTTP listener: the axum router served by hyper with the limits an edge service needs and
//! `axum::serve` leaves unset. A connection must show its first byte, and each HTTP/1 request
//! head must arrive whole, within `server.header_read_timeout_ms` (slow-loris clients and idle
//! keep-alive connections are closed); a request head over `server.max_header_bytes` gets 431.
//! With `[server.tls]`, the TLS handshake must also finish within that time, and the protocol
//! is the one ALPN agreed on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use crate::app::tls::TlsListeners;

/// What every HTTP connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
}

impl ConnectionLimits {
    pub fn from_settings(s: &crate::settings::ServerSettings) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms.max(1)),
            max_header_bytes: s.max_header_bytes.max(crate::settings::MIN_HEADER_BYTES),
        }
    }
}

/// How long, once the listener closes, a connection that has not sent its first request yet is
/// given to send it: the client sent it before the close, it is in flight.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// The HTTP/2 connection preface (prior knowledge, h2c).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets connections finish their
/// requests in flight, including the connections the kernel had completed but not yet handed
/// over (their clients sent their requests before the close).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<TlsListeners>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Every connection task holds a receiver of `open`: all dropped means all connections ended.
    let (open_tx, open_rx) = watch::channel(());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let spawn = |tcp: TcpStream| {
        let _ = tcp.set_nodelay(true);
        let (router, stop, open, tls) = (router.clone(), stop_rx.clone(), open_rx.clone(), tls.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + limits.header_read_timeout;
            match tls {
                None => {
                    if let Some(protocol) = sniff(&tcp, deadline).await {
                        serve_connection(tcp, protocol, router, limits, stop).await;
                    }
                }
                Some(tls) => {
                    if let Some(stream) = handshake(&tls.http(), tcp, deadline).await {
                        let protocol = match stream.get_ref().1.alpn_protocol() {
                            Some(b"h2") => Protocol::Http2,
                            _ => Protocol::Http1,
                        };
                        serve_connection(stream, protocol, router, limits, stop).await;
                    }
                }
            }
            drop(open);
        });
    };
    while let Some(tcp) = accept_until(&listener, &mut shutdown).await {
        spawn(tcp);
    }
    let _ = stop_tx.send(true);
    // A zero timeout polls `accept` once: only what is already waiting.
    while let Ok(Ok((tcp, _))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        spawn(tcp);
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// The next connection, or `None` once `stop` has resolved.
async fn accept_until(listener: &TcpListener, stop: &mut (impl Future<Output = ()> + Unpin)) -> Option<TcpStream> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => return Some(tcp),
                Err(e) => accept_error(e).await,
            },
            () = &mut *stop => return None,
        }
    }
}

/// Per-connection errors (a client that went away) are routine; anything else (out of file
/// descriptors) is logged and the loop pauses instead of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The server side of a TLS handshake, within `deadline`; `None` when it failed (a client
/// without an accepted certificate, among others) or took too long.
pub async fn handshake(acceptor: &tokio_rustls::TlsAcceptor, tcp: TcpStream, deadline: Instant) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake refused");
            None
        }
        Err(_) => None,
    }
}

/// The gRPC listener's connections over TLS, each handshake on its own task so that a slow
/// client holds up no other; ends when `stop` turns true.
pub fn tls_incoming(
    listener: TcpListener,
    tls: Arc<TlsListeners>,
    handshake_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut stopped = Box::pin(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        while let Some(tcp) = accept_until(&listener, &mut stopped).await {
            let _ = tcp.set_nodelay(true);
            let (tx, acceptor) = (tx.clone(), tls.grpc());
            tokio::spawn(async move {
                if let Some(stream) = handshake(&acceptor, tcp, Instant::now() + handshake_timeout).await {
                    let _ = tx.send(Ok(stream)).await;
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

async fn serve_connection<I>(io: I, protocol: Protocol, router: Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    // The protocol is known: hyper's own version detection (which has no deadline) is skipped.
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
    };
    // Whether a request has arrived: a graceful shutdown closes an idle connection at once,
    // which must not be one whose first request is still on its way.
    let served = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = served.clone();
    let service = tower::ServiceExt::map_request(router, move |req: http::Request<hyper::body::Incoming>| {
        seen.store(true, std::sync::atomic::Ordering::Relaxed);
        req
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut draining: Option<Instant> = None;
    let mut shut = false;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.wait_for(|s| *s), if draining.is_none() => {
                draining = Some(if changed.is_ok() { Instant::now() + FIRST_REQUEST_GRACE } else { Instant::now() });
            }
            _ = tick.tick(), if draining.is_some() && !shut => {
                let first_due = draining.is_some_and(|d| Instant::now() >= d);
                if served.load(std::sync::atomic::Ordering::Relaxed) || first_due {
                    shut = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Waits, up to `deadline`, until the client's first bytes tell HTTP/1 from the HTTP/2 preface.
/// `None` when the client sent nothing in time or closed the connection.
async fn sniff(tcp: &TcpStream, deadline: Instant) -> Option<Protocol> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = tokio::time::timeout_at(deadline, tcp.peek(&mut buf)).await.ok()?.ok()?;
        let seen = buf.get(..n)?;
        if seen.is_empty() {
            return None;
        }
        if !H2_PREFACE.starts_with(seen) {
            return Some(Protocol::Http1);
        }
        if seen.len() == H2_PREFACE.len() {
            return Some(Protocol::Http2);
        }
        // Part of the preface so far: peek again shortly (peek would return at once).
        tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(5)))
            .await
            .ok()?;
    }
}
