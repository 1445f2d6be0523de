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
use async_nats::jetstream::{self, consumer::pull};
use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tower::ServiceExt;
use wabill_engine::carriers::Provider;
use wabill_engine::partition::Partitions;
use wabill_engine::{EngineConfig, RateBook};
use wabill_ingest::{Quarantined, Route};
use wabill_store::postgres::cluster::Cluster;

use super::routing::{Owners, no_owner, partition_of, redirect};
use super::{ClusterConfig, HELD, KIND, SOURCE};
use crate::http::{self, ApiError, ErrorCode};
use crate::state::{EXIT_STORE_UNREACHABLE, OpenError, State, Write};
use crate::store::{Held, Location, StoreError};
use crate::{ServiceConfig, listen};

/// How often a worker beats and looks at its partitions.
const TICK: Duration = Duration::from_millis(500);
/// Messages per batch read from a partition's consumer.
const BATCH: usize = 2_000;
/// A message not acknowledged this long after delivery is delivered again.
const ACK_WAIT: Duration = Duration::from_secs(15);

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
    /// When the control thread last beat in the cluster's tables.
    beat: std::sync::Mutex<Option<std::time::Instant>>,
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
    let (stream, listener, local) = runtime.block_on(async {
        let (_client, stream) = super::connect(&service.cluster).await?;
        let listener = tokio::net::TcpListener::bind(&service.listen)
            .await
            .with_context(|| format!("cannot listen on {}", service.listen))?;
        let local = listener.local_addr().context("listening address")?;
        anyhow::Ok((stream, listener, local))
    })?;
    let advertise = service
        .cluster
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let shared = Arc::new(Shared {
        parts: Arc::new(super::partitions(&engine, &service.cluster)),
        customers: engine.customers.clone(),
        owners: Owners::default(),
        routers: RwLock::default(),
        metrics: metrics.clone(),
        beat: std::sync::Mutex::default(),
        me: advertise.clone(),
    });
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let control = Control {
        name: format!("{advertise}#{}", std::process::id()),
        url: advertise,
        cluster_url: url,
        engine,
        book: Arc::new(book),
        key: wabill_engine::HashKey::drawn_from(&std::hash::RandomState::new()),
        service: service.clone(),
        stream,
        runtime: runtime.handle().clone(),
        shared: Arc::clone(&shared),
        stopping: Arc::clone(&stopping),
        metrics,
    };
    let mut cluster = Cluster::connect(&control.cluster_url)?;
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
        let router = Router::new()
            .route("/livez", axum::routing::get(|| async { "ok" }))
            .route("/metrics", axum::routing::get(metrics_text))
            .route("/readyz", axum::routing::get(ready))
            .route("/healthz", axum::routing::get(ready))
            .fallback(dispatch)
            .with_state(Arc::clone(&shared));
        listen::serve(listener, router, limits, crate::shutdown_signal()).await;
    });
    stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = controller.join();
    tracing::info!("stopped");
    Ok(())
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
    let beat = shared.beat.lock().ok().and_then(|b| *b);
    if beat.is_some_and(|at| at.elapsed() < TICK * 6) {
        return "ok".into_response();
    }
    ApiError::new(
        ErrorCode::StoreUnwritable,
        "the worker has not written its heartbeat to PostgreSQL in the last 3 s",
    )
    .into_response()
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
    url: String,
    cluster_url: String,
    engine: EngineConfig,
    book: Arc<RateBook>,
    key: wabill_engine::HashKey,
    service: ServiceConfig,
    stream: jetstream::stream::Stream,
    runtime: tokio::runtime::Handle,
    shared: Arc<Shared>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Control {
    fn run(&self, cluster: &mut Cluster) {
        let mut owned: BTreeMap<u32, Owned> = BTreeMap::new();
        loop {
            let stopping = self.stopping.load(std::sync::atomic::Ordering::SeqCst);
            let alive = if stopping {
                Vec::new()
            } else {
                let Some(alive) = checked(cluster.heartbeat(&self.name, &self.url)) else {
                    std::thread::sleep(TICK);
                    continue;
                };
                if let Ok(mut beat) = self.shared.beat.lock() {
                    *beat = Some(std::time::Instant::now());
                }
                alive
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
                }
            }
            if stopping {
                return;
            }
            for part in wanted {
                if owned.contains_key(&part) {
                    continue;
                }
                if let Some(partition) = self.adopt(cluster, part) {
                    owned.insert(part, partition);
                }
            }
            if let Some(owners) = checked(cluster.owners())
                && let Ok(mut o) = self.shared.owners.write()
            {
                *o = owners.into_iter().collect();
            }
            std::thread::sleep(TICK);
        }
    }

    /// Opens partition `part`'s store (its log replayed) and starts
    /// consuming; None while another process still holds it.
    fn adopt(&self, cluster: &mut Cluster, part: u32) -> Option<Owned> {
        let started = std::time::Instant::now();
        let location = checked(cluster.partition(part))?;
        let opened = State::open_shared(
            &location,
            self.engine.clone(),
            Arc::clone(&self.book),
            self.key,
        );
        let (state, writer) = match opened {
            Ok(opened) => opened,
            Err(OpenError::Store(StoreError::Busy { .. })) => return None,
            Err(OpenError::Store(e @ StoreError::Unreachable { .. })) => lost(&e),
            Err(e) => {
                tracing::error!(partition = part, error = %chain(&e), "cannot adopt the partition");
                return None;
            }
        };
        tracing::info!(
            partition = part,
            events = state.read().ledger().accepted(),
            millis = started.elapsed().as_millis() as u64,
            "partition adopted: its log replayed"
        );
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let consumer = self.runtime.spawn(consume(
            Arc::clone(&state),
            self.stream.clone(),
            self.service.cluster.clone(),
            part,
            stopped,
        ));
        let publisher = self.runtime.spawn(crate::publish_every(
            Arc::clone(&state),
            Arc::default(),
            self.service.publish_every,
        ));
        let app = http::App::new(
            Arc::clone(&state),
            self.service.clone(),
            self.metrics.clone(),
        );
        if let Ok(mut routers) = self.shared.routers.write() {
            routers.insert(part, http::router(Arc::new(app)));
        }
        checked(cluster.owns(part, &self.name, &self.url));
        checked(cluster.refresh_views(self.shared.parts.count()));
        Some(Owned {
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

/// Reads partition `part`'s consumer until told to stop: each batch is
/// handed to the writer, and acknowledged once committed.
async fn consume(
    state: Arc<State>,
    stream: jetstream::stream::Stream,
    cluster: ClusterConfig,
    part: u32,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let name = cluster.consumer(part);
    let config = pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: cluster.subject(part),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: 100_000,
        ..Default::default()
    };
    let consumer: jetstream::consumer::PullConsumer = loop {
        match stream.get_or_create_consumer(&name, config.clone()).await {
            Ok(consumer) => break consumer,
            Err(e) => tracing::error!(partition = part, error = %e, "cannot open the consumer"),
        }
        if *stop.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let mut validator = state.read().ledger().validator();
    while !*stop.borrow() {
        let fetched = consumer
            .fetch()
            .max_messages(BATCH)
            .expires(Duration::from_millis(500))
            .messages()
            .await;
        let mut batch = match fetched {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(partition = part, error = %e, "cannot read the stream");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut messages = Vec::new();
        let mut write = Write::default();
        let received_at = crate::import::received_now();
        while let Some(message) = batch.next().await {
            match message {
                Ok(message) => {
                    read_message(&message, &mut validator, &mut write, &received_at);
                    messages.push(message);
                }
                Err(e) => {
                    tracing::error!(partition = part, error = %e, "a message could not be read");
                    break;
                }
            }
        }
        if messages.is_empty() {
            continue;
        }
        if !commit(&state, write).await {
            // Not acknowledged: delivered again after ACK_WAIT.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        for message in messages {
            if let Err(e) = message.ack().await {
                tracing::warn!(partition = part, error = %e, "an acknowledgement was not sent; the message comes again and is a duplicate");
            }
        }
    }
}

/// Hands a batch to the writer; whether it was committed.
async fn commit(state: &State, write: Write) -> bool {
    match state.apply(write).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "a batch from the stream was not stored");
            false
        }
    }
}

/// One stream message into `write`: an event line (validated as a
/// receiver did) or a held item. Nothing is dropped: a message that cannot
/// be read is held, with why.
fn read_message(
    message: &jetstream::Message,
    validator: &mut wabill_engine::Validator,
    write: &mut Write,
    received_at: &str,
) {
    let headers = message.headers.as_ref();
    let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
    let source = wabill_store::source_name(header(SOURCE).unwrap_or("api"));
    let text = String::from_utf8_lossy(&message.payload);
    let refused = if header(KIND) == Some(HELD) {
        match held_of(&text, source) {
            Ok(held) => {
                write.held.push(held);
                return;
            }
            Err(e) => format!("a held item from the stream cannot be read: {e}"),
        }
    } else {
        let route = Route {
            provider: Provider::parse(source),
            ..Route::default()
        };
        match crate::import::add_line(&text, route, validator, write, received_at) {
            Ok(_) => return,
            Err(e) => format!("an event from the stream was refused by this worker: {e}"),
        }
    };
    tracing::error!(reason = %refused, "a stream message is held in the quarantine");
    write.held.push(Held {
        id: 0,
        received_at: received_at.to_owned(),
        source,
        route: String::new(),
        item: Quarantined {
            path: String::new(),
            reason: refused,
            item: text.clone().into_owned(),
            body: text.into_owned(),
            waba: None,
        },
    });
}

#[derive(serde::Deserialize)]
struct HeldMessage {
    received_at: String,
    route: String,
    path: String,
    reason: String,
    item: String,
    body: String,
    waba: Option<String>,
}

fn held_of(text: &str, source: &'static str) -> Result<Held, serde_json::Error> {
    let m: HeldMessage = serde_json::from_str(text)?;
    Ok(Held {
        id: 0,
        received_at: m.received_at,
        source,
        route: m.route,
        item: Quarantined {
            path: m.path,
            reason: m.reason,
            item: m.item,
            body: m.body,
            waba: m.waba,
        },
    })
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
