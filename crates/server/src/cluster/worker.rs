//! `wabill serve --role worker`: owns the partitions rendezvous hashing
//! gives it among the workers alive. Each owned partition is a service
//! state on its own PostgreSQL schema (its owner lock: one writer), fed by
//! the partition's durable consumer; a batch of messages is acknowledged
//! only once the writer has committed it. A control thread beats, adopts
//! and releases partitions; the HTTP side answers the reads of owned
//! partitions and redirects the others.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use wabill_engine::partition::Partitions;
use wabill_engine::{EngineConfig, RateBook};
use wabill_store::postgres::cluster::Cluster;

use super::routing::{Owners, no_owner, partition_of, redirect};
use crate::http::{self, ApiError, ErrorCode};
use crate::state::{EXIT_STORE_UNREACHABLE, OpenError, State};
use crate::store::{Location, StoreError};
use crate::{ServiceConfig, listen};

/// How often a worker beats and looks at its partitions.
const TICK: Duration = Duration::from_millis(500);

/// What the HTTP side of a worker reads.
struct Shared {
    parts: Arc<Partitions>,
    customers: wabill_engine::customers::Customers,
    owners: Owners,
    /// The routers of the partitions this worker owns.
    routers: RwLock<BTreeMap<u32, Router>>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Where this worker answers (its advertised URL).
    me: String,
    /// Its configuration: the API keys a redirect needs.
    service: ServiceConfig,
    /// The heartbeat thread's last beat and the workers alive then.
    alive: std::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>,
    /// Partitions this worker should own but could not open (not for
    /// another's lock): readiness names them.
    stuck: std::sync::Mutex<BTreeSet<u32>>,
}

/// A partition this worker owns.
struct Owned {
    state: Arc<State>,
    writer: std::thread::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
    consumer: tokio::task::JoinHandle<()>,
    publisher: tokio::task::JoinHandle<()>,
}

/// Runs a worker until SIGINT or SIGTERM; then its partitions are
/// released (their last batches committed and acknowledged).
pub fn serve_worker(
    service: ServiceConfig,
    engine: EngineConfig,
    book: RateBook,
) -> anyhow::Result<()> {
    let metrics = crate::observe();
    let Location::Postgres(url) = service.store.clone() else {
        anyhow::bail!("a worker needs a PostgreSQL store (--store postgres://…)");
    };
    let runtime = crate::runtime()?;
    let (js, stream, listener, local) = runtime.block_on(async {
        let (client, stream) = super::connect(&service.cluster).await?;
        let listener = tokio::net::TcpListener::bind(&service.listen)
            .await
            .with_context(|| format!("cannot listen on {}", service.listen))?;
        let local = listener.local_addr().context("listening address")?;
        anyhow::Ok((jetstream::new(client), stream, listener, local))
    })?;
    let (advertise, name) = identity(&service, local)?;
    let shared = Arc::new(Shared {
        parts: Arc::new(super::partitions(&engine, &service.cluster)),
        customers: engine.customers.clone(),
        owners: Owners::default(),
        routers: RwLock::default(),
        metrics,
        alive: std::sync::Mutex::default(),
        stuck: std::sync::Mutex::default(),
        me: advertise.clone(),
        service: service.clone(),
    });
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let control = Control {
        name: name.clone(),
        cluster_url: url,
        engine,
        book: Arc::new(book),
        key: wabill_engine::HashKey::drawn_from(&std::hash::RandomState::new()),
        stream,
        js,
        runtime: runtime.handle().clone(),
        shared: Arc::clone(&shared),
        stopping: Arc::clone(&stopping),
    };
    let mut cluster = Cluster::connect(&control.cluster_url)?;
    let heart = Cluster::connect(&control.cluster_url)?;
    let beating = (Arc::clone(&shared), Arc::clone(&stopping));
    let heartbeat = std::thread::Builder::new()
        .name("wabill-heartbeat".into())
        .spawn(move || beat(heart, &name, &advertise, &beating.0, &beating.1))
        .context("cannot start the heartbeat thread")?;
    let controller = std::thread::Builder::new()
        .name("wabill-control".into())
        .spawn(move || {
            crate::state::stop_on_panic("the worker's control thread", || {
                control.run(&mut cluster);
            });
        })
        .context("cannot start the control thread")?;
    let limits = listen::ConnectionLimits::of(&service);
    listen::raise_open_files(limits.max_connections);
    runtime.block_on(async {
        println!("wabill listening on http://{local}");
        tracing::info!(%local, role = "worker", "listening");
        let router = router(Arc::clone(&shared));
        listen::serve(listener, router, limits, crate::shutdown_signal()).await;
    });
    stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = controller.join();
    let _ = heartbeat.join();
    tracing::info!("stopped");
    Ok(())
}

/// Where this worker answers reads, and its name among the workers.
fn identity(
    service: &ServiceConfig,
    local: std::net::SocketAddr,
) -> anyhow::Result<(String, String)> {
    if service.cluster.advertise.is_none() && local.ip().is_unspecified() {
        anyhow::bail!(
            "a worker listening on {local} needs [cluster] advertise (or WABILL_ADVERTISE): the URL other processes send its reads to"
        );
    }
    let advertise = service
        .cluster
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    // Unique per process, even for two with one address and process id
    // (containers).
    let name = {
        use std::hash::BuildHasher;
        let salt = std::hash::RandomState::new().hash_one(std::time::SystemTime::now());
        format!("{advertise}#{}-{:08x}", std::process::id(), salt as u32)
    };
    Ok((advertise, name))
}

/// A worker's HTTP: its own health and metrics, and its partitions' reads.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/livez", axum::routing::get(|| async { "ok" }))
        .route("/metrics", axum::routing::get(metrics_text))
        .route("/readyz", axum::routing::get(ready))
        .route("/healthz", axum::routing::get(ready))
        .fallback(dispatch)
        .with_state(shared)
}

async fn metrics_text(AxState(shared): AxState<Arc<Shared>>) -> Response {
    shared
        .metrics
        .as_ref()
        .map_or_else(String::new, |m| m.render())
        .into_response()
}

/// Ready while the control thread beats: the cluster's PostgreSQL takes
/// its writes (each partition's writer stops the process when its own
/// connection is gone).
async fn ready(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let beat = shared
        .alive
        .lock()
        .ok()
        .and_then(|b| b.as_ref().map(|b| b.0));
    if beat.is_none_or(|at| at.elapsed() >= TICK * 6) {
        return ApiError::new(
            ErrorCode::StoreUnwritable,
            "the worker has not written its heartbeat to PostgreSQL in the last 3 s",
        )
        .into_response();
    }
    let stuck = shared.stuck.lock().map(|s| s.clone()).unwrap_or_default();
    if !stuck.is_empty() {
        return ApiError::new(
            ErrorCode::StoreUnwritable,
            format!("partitions {stuck:?} cannot be opened (the worker's log says why)"),
        )
        .into_response();
    }
    "ok".into_response()
}

/// A read of an owned partition is answered by its service; another
/// partition's is redirected to its owner.
async fn dispatch(AxState(shared): AxState<Arc<Shared>>, mut request: Request) -> Response {
    let found = partition_of(
        &shared.parts,
        &shared.customers,
        request.method(),
        request.uri(),
    );
    let Some((part, inner)) = found else {
        return ApiError::new(
            ErrorCode::NotFound,
            "a worker answers reads of a WABA or of a partition (/p/<N>/…); webhooks and writes go to receivers",
        )
        .into_response();
    };
    let router = shared
        .routers
        .read()
        .ok()
        .and_then(|r| r.get(&part).cloned());
    let Some(router) = router else {
        if let Err(e) = http::auth::key_of(&shared.service, request.headers()) {
            return e.into_response();
        }
        // The tables may still name this worker for a partition it has
        // just released: no redirect to itself.
        let mine = shared
            .owners
            .read()
            .is_ok_and(|o| o.get(&part) == Some(&shared.me));
        return if mine {
            no_owner(part)
        } else {
            redirect(&shared.owners, part, request.uri())
        };
    };
    match inner.parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return no_owner(part),
    }
    match router.oneshot(request).await {
        Ok(answer) => answer,
        Err(never) => match never {},
    }
}

/// The control thread's part.
struct Control {
    name: String,
    cluster_url: String,
    engine: EngineConfig,
    book: Arc<RateBook>,
    key: wabill_engine::HashKey,
    stream: jetstream::stream::Stream,
    js: jetstream::Context,
    runtime: tokio::runtime::Handle,
    shared: Arc<Shared>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Control {
    fn run(&self, cluster: &mut Cluster) {
        let mut owned: BTreeMap<u32, Owned> = BTreeMap::new();
        // Partitions that failed to open, and when: tried again after
        // [`RETRY_FAILED`].
        let mut failed: BTreeMap<u32, std::time::Instant> = BTreeMap::new();
        let mut round: u64 = 0;
        loop {
            let stopping = self.stopping.load(std::sync::atomic::Ordering::SeqCst);
            let alive = match self.alive() {
                _ if stopping => Vec::new(),
                Some(alive) => alive,
                // No fresh heartbeat: keep what is owned, take nothing.
                None => {
                    std::thread::sleep(TICK);
                    continue;
                }
            };
            let wanted: BTreeSet<u32> = (0..self.shared.parts.count())
                .filter(|p| super::rendezvous(&alive, *p) == Some(self.name.as_str()))
                .collect();
            let leaving: Vec<u32> = owned
                .keys()
                .filter(|p| !wanted.contains(p))
                .copied()
                .collect();
            for part in leaving {
                if let Some(partition) = owned.remove(&part) {
                    self.release(part, partition);
                    checked(cluster.disowns(part, &self.name));
                }
            }
            if stopping {
                return;
            }
            failed.retain(|p, _| wanted.contains(p));
            if let Ok(mut stuck) = self.shared.stuck.lock() {
                *stuck = failed.keys().copied().collect();
            }
            // One partition opened a tick (a replay takes a while, and the
            // partitions owned are served meanwhile); one still held by
            // another does not keep the next from being tried.
            let due = |p: &u32| failed.get(p).is_none_or(|at| at.elapsed() >= RETRY_FAILED);
            let candidates: Vec<u32> = wanted
                .iter()
                .copied()
                .filter(|p| !owned.contains_key(p) && due(p))
                .collect();
            for part in candidates {
                match self.adopt(cluster, part) {
                    Adopted::Owned(partition) => {
                        owned.insert(part, partition);
                        failed.remove(&part);
                        break;
                    }
                    Adopted::Busy => {}
                    Adopted::Failed => {
                        failed.insert(part, std::time::Instant::now());
                        break;
                    }
                }
            }
            round += 1;
            self.refresh(cluster, &owned, round);
            std::thread::sleep(TICK);
        }
    }

    /// The workers alive, from a heartbeat under 3 s old.
    fn alive(&self) -> Option<Vec<String>> {
        let alive = self.shared.alive.lock().ok()?;
        let (at, names) = alive.as_ref()?;
        (at.elapsed() < TICK * 6).then(|| names.clone())
    }

    /// What the cluster's tables say for reads: each partition's owner,
    /// and the latest month billed anywhere (customers' invoices).
    fn refresh(&self, cluster: &mut Cluster, owned: &BTreeMap<u32, Owned>, round: u64) {
        if let Some(owners) = checked(cluster.owners())
            && let Ok(mut o) = self.shared.owners.write()
        {
            *o = owners.into_iter().collect();
        }
        // Every 5 s: the owner rows again (one write that failed does not
        // leave a partition unnamed), and the latest month.
        if !round.is_multiple_of(10) {
            return;
        }
        for part in owned.keys() {
            checked(cluster.owns(*part, &self.name, &self.shared.me));
        }
        let latest = checked(cluster.latest_month())
            .flatten()
            .and_then(|m| wabill_engine::time::Month::parse(&m));
        for partition in owned.values() {
            if let Ok(mut horizon) = partition.state.cluster_horizon.lock() {
                *horizon = latest;
            }
        }
    }

    /// Opens partition `part`'s store (its log replayed) and starts
    /// consuming it.
    fn adopt(&self, cluster: &mut Cluster, part: u32) -> Adopted {
        let started = std::time::Instant::now();
        let Some(location) = checked(cluster.partition(part)) else {
            return Adopted::Failed;
        };
        let parts = &self.shared.parts;
        let foreign = |waba: &str| {
            let elsewhere = parts.of(waba);
            (elsewhere != part).then(|| {
                format!(
                    "partition {part}'s log holds events of WABA {waba:?}, which this configuration bills in partition {elsewhere}: [cluster] partitions or the billing units (portfolios, moved numbers, customers) changed after events flowed, which a cluster cannot follow (service.md, Cluster)"
                )
            })
        };
        let opened = State::open_checked(
            &location,
            self.engine.clone(),
            Arc::clone(&self.book),
            self.key,
            &foreign,
        );
        let (state, writer) = match opened {
            Ok(opened) => opened,
            Err(OpenError::Store(StoreError::Busy { .. })) => return Adopted::Busy,
            Err(OpenError::Store(e @ StoreError::Unreachable { .. })) => lost(&e),
            Err(e) => {
                tracing::error!(partition = part, error = %chain(&e), "cannot adopt the partition; trying again in 30 s");
                return Adopted::Failed;
            }
        };
        tracing::info!(
            partition = part,
            events = state.read().ledger().accepted(),
            millis = started.elapsed().as_millis() as u64,
            "partition adopted: its log replayed"
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let feed = super::consume::Feed {
            state: Arc::clone(&state),
            stream: self.stream.clone(),
            js: self.js.clone(),
            cluster: self.shared.service.cluster.clone(),
            parts: Arc::clone(&self.shared.parts),
            part,
        };
        let consumer = self.runtime.spawn(super::consume::consume(feed, stopped));
        let publisher = self.runtime.spawn(crate::publish_every(
            Arc::clone(&state),
            Arc::default(),
            self.shared.service.publish_every,
        ));
        let app = http::App::new(
            Arc::clone(&state),
            self.shared.service.clone(),
            self.shared.metrics.clone(),
        );
        if let Ok(mut routers) = self.shared.routers.write() {
            routers.insert(part, http::router(Arc::new(app)));
        }
        checked(cluster.owns(part, &self.name, &self.shared.me));
        checked(cluster.refresh_views(self.shared.parts.count()));
        Adopted::Owned(Owned {
            state,
            writer,
            stop,
            consumer,
            publisher,
        })
    }

    /// Stops consuming `part` once its batch in hand is committed and
    /// acknowledged, then closes its store (freeing its owner lock).
    fn release(&self, part: u32, owned: Owned) {
        if let Ok(mut routers) = self.shared.routers.write() {
            routers.remove(&part);
        }
        let _ = owned.stop.send(true);
        let _ = self.runtime.block_on(owned.consumer);
        owned.publisher.abort();
        owned.state.close();
        let _ = owned.writer.join();
        tracing::info!(partition = part, "partition released");
    }
}

/// What adopting a partition came to.
enum Adopted {
    Owned(Owned),
    /// Another session still holds its store: tried again next tick.
    Busy,
    /// It could not be opened (logged): tried again after [`RETRY_FAILED`].
    Failed,
}

/// How long a partition that failed to open waits before another try.
const RETRY_FAILED: Duration = Duration::from_secs(30);

/// The heartbeat thread: every tick, this worker's row and the workers
/// alive; on stop, the row removed so that the others take over at once.
fn beat(
    mut cluster: Cluster,
    name: &str,
    url: &str,
    shared: &Shared,
    stopping: &std::sync::atomic::AtomicBool,
) {
    while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
        if let Some(alive) = checked(cluster.heartbeat(name, url))
            && let Ok(mut a) = shared.alive.lock()
        {
            *a = Some((std::time::Instant::now(), alive));
        }
        std::thread::sleep(TICK);
    }
    checked(cluster.leave(name));
}

/// The cluster's tables cannot be reached: as the service does when its
/// store is gone, the worker ends (75), and its partitions move on.
fn lost(e: &StoreError) -> ! {
    tracing::error!(error = %chain(e), "stopping: the cluster's PostgreSQL cannot be reached");
    std::process::exit(EXIT_STORE_UNREACHABLE)
}

/// A write to the cluster's tables: its value, or None after logging
/// why (tried again next tick); PostgreSQL gone ends the worker.
fn checked<T>(result: Result<T, StoreError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e @ StoreError::Unreachable { .. }) => lost(&e),
        Err(e) => {
            tracing::error!(error = %chain(&e), "the cluster's tables refused a statement");
            None
        }
    }
}

/// An error and its causes (a PostgreSQL error's own text is its cause's).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The owners of the partitions, from the cluster's tables every second
/// (a receiver's reads are redirected by them).
pub fn watch_owners(store: &Location) -> anyhow::Result<Owners> {
    let Location::Postgres(url) = store.clone() else {
        anyhow::bail!("a receiver needs the cluster's PostgreSQL store (--store postgres://…)");
    };
    let owners = Owners::default();
    let mut cluster = Cluster::connect(&url)?;
    let watched = Arc::clone(&owners);
    std::thread::Builder::new()
        .name("wabill-owners".into())
        .spawn(move || {
            loop {
                match cluster.owners() {
                    Ok(found) => {
                        if let Ok(mut o) = watched.write() {
                            *o = found.into_iter().collect();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the partitions' owners");
                        if let Ok(again) = Cluster::connect(&url) {
                            cluster = again;
                        }
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .context("cannot start the owners' thread")?;
    Ok(owners)
}
