//! Connections: accepting them, bounding how many are served at once, and closing those that
//! hold a descriptor without using it (the review's slow-header clients exhausted the
//! open-file limit, and then nobody was served).
//!
//! Three deadlines close a connection (`[server]` in docs/configuration.md):
//! - the TLS handshake must end within `tls_handshake_timeout`;
//! - a request's head (request line and headers) must arrive within `header_read_timeout`,
//!   counted from the connection's start for its first request and from the first byte of the
//!   head for later ones;
//! - a connection on which no byte moves for `idle_timeout` is closed: between requests (a
//!   kept-alive connection) as well as while a request or its body is being read.
//!
//! hyper's own header timeout also runs while a kept-alive connection waits for its next
//! request, which would make it the idle timeout as well; it is off, and one watchdog per
//! connection keeps the deadlines, fed by the bytes the connection reads and writes (a
//! timestamp and a few relaxed atomics per read or write: nothing on the hot path waits).
//!
//! At most `max_connections` connections per listener are served at once. Beyond that, new
//! connections wait in the kernel's listen queue until one ends, rather than being accepted
//! and closed at once: a legitimate client is served as soon as a slot frees (the timeouts
//! guarantee that slots free), the server never runs out of descriptors, and when the queue
//! itself is full the kernel drops the connection attempt, which the client retries.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::config::ConnectionLimits;

/// How long accepting pauses after it failed (out of descriptors, most likely): long enough
/// not to spin, short enough not to be noticed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` resolves, over TLS when `tls` is given, then
/// lets the connections finish the requests they are serving.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection(stream, peer, router.clone(), tls.clone(), limits, stopping.clone(), slot));
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection holds its slot until it ends: all slots back means all have ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    stopping: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let stream = Watched { inner: stream, activity: activity.clone() };
    let Some(acceptor) = tls else {
        return http1(stream, peer, router, limits, activity, stopping).await;
    };
    match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => http1(stream, peer, router, limits, activity, stopping).await,
        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Serves HTTP/1.1 on one connection until it ends, a deadline passes, or the server stops
/// (then the request in progress is finished first).
async fn http1<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    activity: Arc<Activity>,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let serving = requests.request_started();
        let response = tower::ServiceExt::oneshot(router.clone(), request);
        async move {
            let response = response.await;
            drop(serving);
            response
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().header_read_timeout(None).serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            expired = activity.expired(limits) => {
                tracing::debug!(%peer, timeout = expired, "connection closed: timed out");
                return;
            }
            _ = stopping.wait_for(|stop| *stop), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// When bytes last moved on a connection, and whether a request head is being read.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last byte read or written (or request finished).
    last_io: AtomicU64,
    /// Milliseconds from `start` to the first byte of the head being read, or [`NO_HEAD`].
    head_since: AtomicU64,
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicUsize,
}

const NO_HEAD: u64 = u64::MAX;

impl Activity {
    /// A new connection: its first head is awaited from now on.
    fn new() -> Self {
        Self { start: Instant::now(), last_io: AtomicU64::new(0), head_since: AtomicU64::new(0), in_flight: AtomicUsize::new(0) }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(NO_HEAD - 1)
    }

    fn on_read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.head_since.load(Ordering::Relaxed) == NO_HEAD {
            self.head_since.store(now, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// A head was read whole and handed to the router.
    fn request_started(self: &Arc<Self>) -> Serving {
        self.head_since.store(NO_HEAD, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Serving(self.clone())
    }

    /// The deadline in force, and which timeout it is.
    fn deadline(&self, limits: ConnectionLimits) -> (Instant, &'static str) {
        let head = self.head_since.load(Ordering::Relaxed);
        if head != NO_HEAD && self.in_flight.load(Ordering::Relaxed) == 0 {
            (self.start + Duration::from_millis(head) + limits.header_read_timeout, "header_read_timeout")
        } else {
            (self.start + Duration::from_millis(self.last_io.load(Ordering::Relaxed)) + limits.idle_timeout, "idle_timeout")
        }
    }

    /// Resolves when the deadline in force has passed, naming the timeout.
    async fn expired(&self, limits: ConnectionLimits) -> &'static str {
        loop {
            let (deadline, which) = self.deadline(limits);
            if Instant::now() >= deadline {
                return which;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A request being served; the idle time counts from its end.
struct Serving(Arc<Activity>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.on_write();
    }
}

/// A stream that tells its [`Activity`] when bytes move.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.on_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        polled
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
