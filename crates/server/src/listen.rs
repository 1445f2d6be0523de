//! Accepting connections with limits (service.md, "Connections"): each
//! connection must send a whole request head within the header timeout of
//! opening or of its previous answer (which also closes idle kept-alive
//! connections), heads are at most [`MAX_HEAD_BYTES`], and at most
//! `max_connections` are open: at the cap, a new connection closes the
//! least recently active one at once, one with no request in progress (idle,
//! or still sending its head) first; a request cut that way was never
//! answered, so its client retries and nothing acknowledged is lost. So
//! idle, half-open or slow connections, however many, cannot keep a webhook
//! or `/healthz` from being answered, nor take more sockets than the cap.
//! Bodies have their own deadline ([`crate::http`]).

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The longest request head (request line and headers) read; a longer one
/// is answered 431 by the HTTP library.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How connections are limited.
#[derive(Copy, Clone, Debug)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// How long a connection with a request in progress at shutdown may
    /// take to finish its answer before it is dropped: a client that reads
    /// nothing cannot hold the shutdown forever.
    pub grace: Duration,
}

impl ConnectionLimits {
    /// The limits `[server]` sets.
    pub fn of(service: &crate::ServiceConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: service.header_timeout,
            max_connections: service.max_connections,
            grace: service.body_timeout,
        }
    }
}

/// What the accept loop knows of one open connection.
struct Entry {
    activity: Arc<Activity>,
    close: oneshot::Sender<()>,
}

/// When a connection last started or finished a request (milliseconds
/// since the loop started), and whether one is in progress.
#[derive(Default)]
struct Activity {
    last: AtomicU64,
    busy: AtomicU32,
}

/// The open connections by number (the order they were accepted in).
#[derive(Default)]
struct Open {
    by_id: BTreeMap<u64, Entry>,
}

impl Open {
    /// Closes the connection that least needs to stay (its task drops it):
    /// the idle one active longest ago, else the busy one active longest
    /// ago.
    fn shed_one(&mut self) {
        let victim = self
            .by_id
            .iter()
            .min_by_key(|(id, e)| {
                let busy = e.activity.busy.load(Ordering::Relaxed) > 0;
                (busy, e.activity.last.load(Ordering::Relaxed), **id)
            })
            .map(|(id, _)| *id);
        if let Some(entry) = victim.and_then(|id| self.by_id.remove(&id)) {
            let _ = entry.close.send(());
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then closes
/// every connection and waits for them ([`connection`] says how long).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let started = std::time::Instant::now();
    let now = move || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let open = Arc::new(Mutex::new(Open::default()));
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let mut next_id = 0u64;
    let mut last_warning = None;
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e, &open, &mut last_warning).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let activity = Arc::new(Activity::default());
        activity.last.store(now(), Ordering::Relaxed);
        let (close, closed) = oneshot::channel();
        {
            let mut open = open.lock().unwrap_or_else(PoisonError::into_inner);
            while open.by_id.len() >= limits.max_connections.max(1) {
                open.shed_one();
            }
            open.by_id.insert(
                id,
                Entry {
                    activity: Arc::clone(&activity),
                    close,
                },
            );
        }
        let tower = TowerToHyperService::new(router.clone());
        let counted = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request| {
            let activity = &counted;
            activity.busy.fetch_add(1, Ordering::Relaxed);
            activity.last.store(now(), Ordering::Relaxed);
            let answer = tower.call(request);
            let activity = Arc::clone(activity);
            async move {
                let response = answer.await;
                activity.last.store(now(), Ordering::Relaxed);
                activity.busy.fetch_sub(1, Ordering::Relaxed);
                response
            }
        });
        tasks.spawn(connection(
            stream,
            service,
            limits,
            closed,
            closing.subscribe(),
            Slot {
                open: Arc::clone(&open),
                id,
                activity: Arc::clone(&activity),
            },
        ));
    }
    // New connections are refused from now on, not left in the queue.
    drop(listener);
    let _ = closing.send(true);
    while tasks.join_next().await.is_some() {}
}

/// After a failed accept. Out of file descriptors (the cap is above the
/// limit, which start-up warned of): frees one. Or a connection reset
/// before it was taken. Waits a little rather than spin, and says so once a
/// second at most.
async fn accept_failed(
    e: &std::io::Error,
    open: &Mutex<Open>,
    last_warning: &mut Option<std::time::Instant>,
) {
    if matches!(e.raw_os_error(), Some(23 | 24)) {
        open.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .shed_one();
    }
    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
        tracing::warn!(error = %e, "accept failed");
        *last_warning = Some(std::time::Instant::now());
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// A connection's place among the open ones.
struct Slot {
    open: Arc<Mutex<Open>>,
    id: u64,
    activity: Arc<Activity>,
}

/// Serves one connection until it ends, or until it is asked to close:
/// `closed` (at the cap) drops it at once; `closing` (shutdown) lets a
/// request in progress answer within `limits.grace`. The slot leaves the
/// open ones when it is dropped.
async fn connection<S>(
    stream: tokio::net::TcpStream,
    service: S,
    limits: ConnectionLimits,
    closed: oneshot::Receiver<()>,
    mut closing: tokio::sync::watch::Receiver<bool>,
    slot: Slot,
) where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEAD_BYTES);
    let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let shutdown = tokio::select! {
        _ = connection.as_mut() => false,
        _ = closed => false,
        _ = closing.wait_for(|c| *c) => true,
    };
    if shutdown {
        // A request in progress gets the grace; an idle connection closes
        // at once, one still sending its head or its last answer within
        // a second.
        let busy = slot.activity.busy.load(Ordering::Relaxed) > 0;
        connection.as_mut().graceful_shutdown();
        let wait = if busy { limits.grace } else { SHUTDOWN_IDLE };
        let _ = tokio::time::timeout(wait, connection).await;
    }
}

/// How long a connection with no request in progress may take to close at
/// shutdown (an answer still being written, a head half sent).
const SHUTDOWN_IDLE: Duration = Duration::from_secs(1);

impl Drop for Slot {
    /// Leaves the open ones however the connection ends, a panic included.
    fn drop(&mut self) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .remove(&self.id);
    }
}

/// Raises this process's limit of open files to the most it may have, so
/// that `max_connections` fits below it; says so when it still does not.
pub fn raise_open_files(max_connections: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    // None is unlimited; the current limit is never above the maximum.
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let current = getrlimit(Resource::Nofile).current;
    // The event log, the listener and the runtime take some descriptors too.
    let needed = max_connections as u64 + 64;
    if current.is_some_and(|c| c < needed) {
        tracing::warn!(
            open_files = current,
            max_connections,
            "the limit of open files is below server.max_connections + 64: connections past it wait in the kernel's queue"
        );
    }
}
