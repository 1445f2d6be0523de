//! `wabill serve --role receiver`: the service's HTTP edge (the same
//! authentication, limits and validation), whose writer publishes each
//! request's events to JetStream instead of logging them, and answers
//! once every one is acknowledged by the stream. Reads are redirected to
//! the worker that owns their partition.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream;
use axum::extract::{Request, State as AxState};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::digest;
use wabill_engine::partition::Partitions;
use wabill_engine::{EngineConfig, RateBook};

use super::routing::{Owners, partition_of, redirect};
use super::{ClusterConfig, HELD, KIND, SOURCE};
use crate::http::{ApiError, ErrorCode};
use crate::state::{Applied, Job, JobError, State};
use crate::store::Held;
use crate::{ServiceConfig, http, listen};

/// Requests whose events are published together before their answers.
const GROUP: usize = 256;

/// Runs a receiver until SIGINT or SIGTERM.
pub fn serve_receiver(
    service: ServiceConfig,
    engine: EngineConfig,
    book: RateBook,
) -> anyhow::Result<()> {
    let metrics = crate::observe();
    let cluster = service.cluster.clone();
    let parts = Arc::new(super::partitions(&engine, &cluster));
    let customers = engine.customers.clone();
    let (state, jobs) = State::relay(engine, book).context("cannot start the receiver")?;
    let owners = super::worker::watch_owners(&service.store)?;
    let limits = listen::ConnectionLimits::of(&service);
    listen::raise_open_files(limits.max_connections);
    let listen_on = service.listen.clone();
    let keys = service.clone();
    let app = Arc::new(http::App::new(Arc::clone(&state), service, metrics));
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let (client, _stream) = super::connect(&cluster).await?;
        let js = jetstream::new(client.clone());
        let relay = tokio::spawn(relay(
            jobs,
            Arc::clone(&state),
            js,
            client,
            Arc::clone(&parts),
            cluster,
        ));
        let listener = tokio::net::TcpListener::bind(&listen_on)
            .await
            .with_context(|| format!("cannot listen on {listen_on}"))?;
        let local = listener.local_addr().context("listening address")?;
        println!("wabill listening on http://{local}");
        tracing::info!(%local, role = "receiver", "listening");
        let reads = Arc::new((parts, customers, owners, keys));
        let router =
            http::router(app).layer(axum::middleware::from_fn_with_state(reads, redirect_reads));
        listen::serve(listener, router, limits, crate::shutdown_signal()).await;
        // In-flight requests are answered; the relay ends with the queue.
        state.close();
        let _ = relay.await;
        anyhow::Ok(())
    })?;
    tracing::info!("stopped");
    Ok(())
}

type Reads = Arc<(
    Arc<Partitions>,
    wabill_engine::customers::Customers,
    Owners,
    ServiceConfig,
)>;

/// A read of one partition goes to its owner.
async fn redirect_reads(AxState(reads): AxState<Reads>, request: Request, next: Next) -> Response {
    let (parts, customers, owners, service) = &*reads;
    let found = partition_of(parts, customers, request.method(), request.uri());
    let held = request.uri().path().starts_with("/v1/quarantine");
    // Without a known key the service's own answer (401): where workers
    // answer is for callers with a key.
    if (found.is_none() && !held) || http::auth::key_of(service, request.headers()).is_err() {
        return next.run(request).await;
    }
    match found {
        Some((part, _)) => redirect(owners, part, request.uri()),
        // Held items live in the partitions' stores, not here.
        None => ApiError::new(
            ErrorCode::BadQuery,
            "a cluster holds items per partition: GET /v1/quarantine?waba=W, or GET /p/<N>/v1/quarantine of a worker; re-processing is re-sending a held item's body",
        )
        .into_response(),
    }
}

/// The receiver's writer: each batch of requests' events published, then
/// answered (accepted: acknowledged as new by the stream; duplicates: ids
/// the stream had seen within its window).
async fn relay(
    mut jobs: tokio::sync::mpsc::Receiver<Job>,
    state: Arc<State>,
    js: jetstream::Context,
    client: async_nats::Client,
    parts: Arc<Partitions>,
    cluster: ClusterConfig,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let answers = publish_batch(&mut batch, &js, &client, &parts, &cluster).await;
        if let Ok(mut last) = state.last_commit.lock() {
            *last = Some((std::time::Instant::now(), answers.iter().all(Result::is_ok)));
        }
        for (job, answer) in batch.into_iter().zip(answers) {
            let _ = job.reply.send(answer);
        }
    }
}

/// How long the stream may take to acknowledge a message.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages published and not yet acknowledged, at most: the JetStream
/// context holds back a publish beyond its own limit (5 000) until an
/// acknowledgement is awaited, so the oldest is awaited first.
const IN_FLIGHT: usize = 1_024;

type Pending = std::collections::VecDeque<(usize, bool, jetstream::context::PublishAckFuture)>;

/// Publishes the batch's events and held items (its rows are taken: the
/// lines become the messages' payloads, uncopied).
async fn publish_batch(
    batch: &mut [Job],
    js: &jetstream::Context,
    client: &async_nats::Client,
    parts: &Partitions,
    cluster: &ClusterConfig,
) -> Vec<Result<Applied, JobError>> {
    let mut answers: Vec<Result<Applied, JobError>> = vec![Ok(Applied::default()); batch.len()];
    let mut pending = Pending::new();
    for (i, job) in batch.iter_mut().enumerate() {
        let rows = std::mem::take(&mut job.write.rows);
        let messages = rows
            .into_iter()
            .map(|row| {
                let source = row.source.unwrap_or(job.source);
                let part = parts.of(&row.event().waba);
                (part, source, None, row.line)
            })
            .chain(job.write.held.iter().map(|held| {
                let part = held.item.waba.as_deref().map_or(0, |w| parts.of(w));
                (part, held.source, Some(HELD), held_json(held))
            }));
        for (part, source, kind, payload) in messages {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", message_id(source, kind, &payload).as_str());
            headers.insert(SOURCE, source);
            if let Some(kind) = kind {
                headers.insert(KIND, kind);
            }
            if pending.len() >= IN_FLIGHT {
                acknowledged(&mut pending, &mut answers).await;
            }
            let sent = js
                .publish_with_headers(cluster.subject(part), headers, payload.into())
                .await;
            match sent {
                Ok(ack) => pending.push_back((i, kind.is_none(), ack)),
                Err(e) => refused(&mut answers[i], &e.to_string()),
            }
        }
        if job.write.probe && client.connection_state() != async_nats::connection::State::Connected
        {
            answers[i] = Err(JobError::Store("NATS is not connected".into()));
        }
    }
    while !pending.is_empty() {
        acknowledged(&mut pending, &mut answers).await;
    }
    answers
}

/// Awaits the oldest acknowledgement and counts it in its job's answer.
async fn acknowledged(pending: &mut Pending, answers: &mut [Result<Applied, JobError>]) {
    let Some((i, event, ack)) = pending.pop_front() else {
        return;
    };
    let acked = tokio::time::timeout(ACK_TIMEOUT, ack)
        .await
        .map_err(|_| "no acknowledgement in time".to_owned())
        .and_then(|a| a.map_err(|e| e.to_string()));
    match (acked, answers[i].as_mut()) {
        (Ok(ack), Ok(applied)) if event => {
            if ack.duplicate {
                applied.duplicates += 1;
            } else {
                applied.accepted += 1;
            }
        }
        (Ok(_), _) => {}
        (Err(e), _) => refused(&mut answers[i], &e),
    }
}

fn refused(answer: &mut Result<Applied, JobError>, e: &str) {
    tracing::error!(error = %e, "the stream did not take an event");
    *answer = Err(JobError::Store(format!("the stream did not take it: {e}")));
}

/// The deduplication id: the same event (or held item) from the same
/// source is the same message, whichever receiver publishes it.
pub(super) fn message_id(source: &str, kind: Option<&str>, payload: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [source, kind.unwrap_or(""), payload] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

/// A held item as its stream message.
fn held_json(held: &Held) -> String {
    serde_json::json!({
        "received_at": held.received_at,
        "route": held.route,
        "path": held.item.path,
        "reason": held.item.reason,
        "item": held.item.item,
        "body": held.item.body,
        "waba": held.item.waba,
    })
    .to_string()
}
