//! A worker's consumer of one partition: batches of stream messages read
//! as a receiver read them, committed by the partition's writer, and only
//! then acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use wabill_engine::carriers::Provider;
use wabill_engine::partition::Partitions;
use wabill_ingest::{Quarantined, Route};

use super::{ClusterConfig, HELD, KIND, SOURCE};
use crate::state::{State, Write};
use crate::store::Held;

/// Messages per batch read from a partition's consumer.
const BATCH: usize = 2_000;
/// A message not acknowledged this long after delivery is delivered again.
const ACK_WAIT: Duration = Duration::from_secs(15);

/// Reads partition `part`'s consumer until told to stop: each batch is
/// handed to the writer, and acknowledged once committed.
pub(super) async fn consume(feed: Feed, stop: tokio::sync::watch::Receiver<bool>) {
    let Feed {
        state,
        stream,
        js,
        cluster,
        parts,
        part,
    } = feed;
    let Some(consumer) = open_consumer(&stream, &cluster, part, &stop).await else {
        return;
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
                    let before = write.rows.len();
                    read_message(&message, &mut validator, &mut write, &received_at);
                    if message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(FORWARDED))
                        .is_some()
                    {
                        hold_forwarded_again(&mut write, before, &parts, part, &received_at);
                    }
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
        let forwarded = forward_misrouted(&mut write, &js, &cluster, &parts, part).await;
        if !forwarded || !commit(&state, write).await {
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

/// The partition's durable consumer (created if missing), retried each
/// second until opened; None when told to stop meanwhile.
async fn open_consumer(
    stream: &jetstream::stream::Stream,
    cluster: &ClusterConfig,
    part: u32,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Option<jetstream::consumer::PullConsumer> {
    let name = cluster.consumer(part);
    let config = pull::Config {
        durable_name: Some(name.clone()),
        filter_subject: cluster.subject(part),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: 100_000,
        ..Default::default()
    };
    loop {
        match stream.get_or_create_consumer(&name, config.clone()).await {
            Ok(consumer) => return Some(consumer),
            Err(e) => tracing::error!(partition = part, error = %e, "cannot open the consumer"),
        }
        if *stop.borrow() {
            return None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What a partition's consumer needs.
pub(super) struct Feed {
    pub state: Arc<State>,
    pub stream: jetstream::stream::Stream,
    pub js: jetstream::Context,
    pub cluster: ClusterConfig,
    pub parts: Arc<Partitions>,
    pub part: u32,
}

/// Events this worker's configuration bills in another partition (a
/// receiver ran another configuration: units changed while they rolled
/// out) are published to that partition instead of being stored here;
/// whether every one was taken (if not, the batch waits for redelivery).
async fn forward_misrouted(
    write: &mut Write,
    js: &jetstream::Context,
    cluster: &ClusterConfig,
    parts: &Partitions,
    part: u32,
) -> bool {
    let (mine, elsewhere): (Vec<_>, Vec<_>) = std::mem::take(&mut write.rows)
        .into_iter()
        .partition(|row| parts.of(&row.event().waba) == part);
    write.rows = mine;
    if let Some(first) = elsewhere.first() {
        tracing::warn!(
            partition = part,
            events = elsewhere.len(),
            waba = %first.event().waba,
            "events of other partitions came here (receivers on another configuration?); forwarded"
        );
    }
    for row in elsewhere {
        let to = parts.of(&row.event().waba);
        let source = row.source.unwrap_or("api");
        let mut headers = async_nats::HeaderMap::new();
        // Its own id: the original's, within the stream's window, would be
        // taken as a duplicate of the message being forwarded.
        let id = format!(
            "{}@p{to}",
            super::receiver::message_id(source, None, &row.line)
        );
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert(SOURCE, source);
        headers.insert(FORWARDED, part.to_string().as_str());
        let sent = js
            .publish_with_headers(cluster.subject(to), headers, row.line.into())
            .await;
        let acked = match sent {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if !acked {
            tracing::error!(
                to,
                "an event could not be forwarded to its partition; the batch comes again"
            );
            return false;
        }
    }
    true
}

/// Header of a message a worker forwarded: the partition it came from.
const FORWARDED: &str = "Wabill-Forwarded-From";

/// Events of a forwarded message that this worker would forward again
/// (two workers on different configurations) are held in the quarantine
/// instead, with why: never forwarded in a loop, never dropped.
fn hold_forwarded_again(
    write: &mut Write,
    from: usize,
    parts: &Partitions,
    part: u32,
    received_at: &str,
) {
    let added = write.rows.split_off(from);
    for row in added {
        let to = parts.of(&row.event().waba);
        if to == part {
            write.rows.push(row);
            continue;
        }
        let reason = format!(
            "forwarded here by another worker, but this worker's configuration bills WABA {:?} in partition {to}: the workers run different configurations",
            row.event().waba
        );
        tracing::error!(partition = part, reason = %reason, "an event is held in the quarantine");
        write.held.push(Held {
            id: 0,
            received_at: received_at.to_owned(),
            source: row.source.unwrap_or("api"),
            route: String::new(),
            item: Quarantined {
                path: String::new(),
                reason,
                waba: Some(row.event().waba.to_string()),
                item: row.line.clone(),
                body: row.line,
            },
        });
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
