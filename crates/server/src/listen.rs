//! Accepting connections: at most `max_connections` open at once, a deadline for every request
//! head and for connections that move no bytes, TLS handshakes under the same deadline, and a
//! graceful shutdown. Slow or silent clients cost a socket for seconds, never for ever.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::AppState;

/// How long a connection may wait for what.
#[derive(Clone, Copy)]
struct Deadlines {
    /// A request head (and, before the first request, the TLS handshake) must arrive in this.
    head: Duration,
    /// A connection with no request running that moves no byte for this long is closed.
    idle: Duration,
}

/// Streams a picture route may open at once on one HTTP/2 connection.
const MAX_H2_STREAMS: u32 = 64;

/// Graceful shutdown waits this long for open requests.
const DRAIN: Duration = Duration::from_secs(30);

/// Serve `state` on `listener` until `shutdown` completes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let c = state.config.clone();
    let tls = if c.tls() {
        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&c.tls_cert, &c.tls_key)
            .await?
            .get_inner();
        Some(tokio_rustls::TlsAcceptor::from(config))
    } else {
        None
    };
    let deadlines = Deadlines {
        head: Duration::from_secs(c.header_read_timeout_secs.max(1)),
        idle: Duration::from_secs(c.idle_timeout_secs.max(1)),
    };
    let max = c
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS as u32 as usize) as u32;
    let app = crate::router(state);
    let slots = Arc::new(Semaphore::new(max as usize));
    let mut http = Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(deadlines.head);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS);
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first: beyond the cap, new connections wait in the kernel's backlog.
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            peer,
            http: http.clone(),
            app: app.clone(),
            deadlines,
            stop: stopped.clone(),
            _permit: permit,
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let activity = Arc::new(Activity::new());
            let tcp = Tracked {
                inner: tcp,
                activity: activity.clone(),
            };
            match tls {
                None => conn.drive(tcp, activity).await,
                Some(acceptor) => {
                    // A handshake that fails or is too slow just closes the socket.
                    let handshake = tokio::time::timeout(deadlines.head, acceptor.accept(tcp));
                    if let Ok(Ok(stream)) = handshake.await {
                        conn.drive(stream, activity).await;
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back means every connection has ended.
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(max)).await;
    Ok(())
}

/// One accepted connection and what serving it needs.
struct Conn {
    peer: SocketAddr,
    http: Builder<TokioExecutor>,
    app: Router,
    deadlines: Deadlines,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    async fn drive<I>(mut self, io: I, activity: Arc<Activity>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let app = self.app.clone();
        let a = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let running = Running::start(a.clone());
            let app = app.clone();
            async move {
                let r = app.oneshot(req).await;
                drop(running);
                r
            }
        });
        let conn = self
            .http
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let mut draining = false;
        loop {
            // Before the first request the head deadline applies, afterwards the idle one.
            let quiet = if activity.requests.load(Ordering::Relaxed) == 0 {
                self.deadlines.head
            } else {
                self.deadlines.idle
            };
            let wake = activity.last() + quiet;
            tokio::select! {
                _ = conn.as_mut() => return,
                changed = self.stop.changed(), if !draining => {
                    let _ = changed;
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                () = tokio::time::sleep_until(wake) => {
                    let running = activity.running.load(Ordering::Acquire) > 0;
                    if !running && activity.last() + quiet <= Instant::now() {
                        return; // dropping the connection closes the socket
                    }
                }
            }
        }
    }
}

/// When a connection last moved a byte, and its requests.
struct Activity {
    started: Instant,
    /// Milliseconds after `started` of the last read or write that moved bytes.
    last_ms: AtomicU64,
    /// Requests being handled now (a long decode moves no bytes but is not idle).
    running: AtomicUsize,
    /// Requests begun on this connection.
    requests: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A request being handled; its end counts as activity.
struct Running(Arc<Activity>);

impl Running {
    fn start(a: Arc<Activity>) -> Running {
        a.running.fetch_add(1, Ordering::AcqRel);
        a.requests.fetch_add(1, Ordering::Relaxed);
        a.touch();
        Running(a)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.touch();
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that records when it last moved bytes.
struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
