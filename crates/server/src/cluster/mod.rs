//! Scale-out on NATS JetStream (service.md, "Cluster"). Receivers
//! (`--role receiver`) validate webhooks and API writes as the service
//! does and answer once JetStream has acknowledged each event, published
//! to its partition's subject with a deduplication id. Workers (`--role
//! worker`) each own some partitions: a partition is a store of its own in
//! PostgreSQL (its schema's owner lock makes its worker the one writer),
//! fed by a durable consumer that is acknowledged only after the store's
//! commit. A worker that dies loses its sessions, so its locks; the
//! workers alive share its partitions out again by rendezvous hashing, and
//! the new owner replays the partition's log before it consumes: events
//! delivered twice are the ledger's duplicates, never counted twice.

mod consume;
mod receiver;
mod routing;
mod worker;

use std::time::Duration;

use async_nats::jetstream;
use wabill_engine::partition::Partitions;

pub use receiver::serve_receiver;
pub use worker::serve_worker;

/// What a process does (`wabill serve --role`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Webhooks, store and reads in one process (the default).
    #[default]
    Single,
    Receiver,
    Worker,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "single" => Some(Role::Single),
            "receiver" => Some(Role::Receiver),
            "worker" => Some(Role::Worker),
            _ => None,
        }
    }
}

/// `[cluster]`: where the stream is and how events are partitioned.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub nats: String,
    /// The JetStream stream; its subjects are `<stream>.p.<partition>`.
    pub stream: String,
    /// Fixed once events have flowed: a WABA's partition depends on it.
    pub partitions: u32,
    /// The URL other processes redirect a worker's reads to (default:
    /// `http://` and the address it listens on).
    pub advertise: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats: "nats://127.0.0.1:4222".to_owned(),
            stream: "WABILL".to_owned(),
            partitions: 16,
            advertise: None,
        }
    }
}

/// `[cluster]` as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterTable {
    nats: Option<String>,
    stream: Option<String>,
    partitions: Option<u32>,
    advertise: Option<String>,
}

impl ClusterConfig {
    /// `[cluster]` checked; `WABILL_NATS` and `WABILL_ADVERTISE` over it.
    pub(crate) fn read(
        table: Option<&ClusterTable>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<ClusterConfig> {
        let mut cluster = ClusterConfig::default();
        if let Some(t) = table {
            if let Some(nats) = &t.nats {
                cluster.nats.clone_from(nats);
            }
            if let Some(stream) = &t.stream {
                if stream.is_empty()
                    || !stream
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    anyhow::bail!("cluster.stream: {stream:?} must be letters, digits, `-` or `_`");
                }
                cluster.stream.clone_from(stream);
            }
            if let Some(partitions) = t.partitions {
                if partitions == 0 || partitions > 4096 {
                    anyhow::bail!("cluster.partitions: {partitions} must be from 1 to 4096");
                }
                cluster.partitions = partitions;
            }
            cluster.advertise.clone_from(&t.advertise);
        }
        if let Some(nats) = env("WABILL_NATS") {
            cluster.nats = nats;
        }
        if let Some(advertise) = env("WABILL_ADVERTISE") {
            cluster.advertise = Some(advertise);
        }
        Ok(cluster)
    }

    pub fn subject(&self, part: u32) -> String {
        format!("{}.p.{part}", self.stream)
    }

    fn consumer(&self, part: u32) -> String {
        format!("{}-p{part}", self.stream)
    }
}

/// Headers of a stream message.
const SOURCE: &str = "Wabill-Source";
const KIND: &str = "Wabill-Kind";
/// A held item's messages carry this kind; an event's none.
const HELD: &str = "held";

/// How long JetStream drops a message whose id it has seen (a provider's
/// quick retries); later copies are the workers' ledgers' duplicates.
const DEDUP_WINDOW: Duration = Duration::from_secs(120);

/// NATS could not be reached on start: like a store that cannot be
/// reached, exit status 75 (try again later), not a configuration error.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to NATS at {url}: {reason}")]
pub struct NatsUnreachable {
    pub url: String,
    pub reason: String,
}

/// A NATS URL without its credentials (`nats://***@host:4222`).
fn redacted(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    let start = url.find("://").filter(|s| *s < at).map_or(0, |s| s + 3);
    format!("{}***{}", &url[..start], &url[at..])
}

/// Connects to NATS and makes sure the stream exists (work-queue
/// retention: an acknowledged message leaves the stream).
async fn connect(
    cluster: &ClusterConfig,
) -> anyhow::Result<(async_nats::Client, jetstream::stream::Stream)> {
    use anyhow::Context;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(cluster.nats.as_str())
        .await
        .map_err(|e| {
            use async_nats::ConnectErrorKind as Kind;
            let url = redacted(&cluster.nats);
            match e.kind() {
                // Retrying will not help: a configuration error (exit 2).
                Kind::ServerParse
                | Kind::Authentication
                | Kind::AuthorizationViolation
                | Kind::Tls => {
                    anyhow::anyhow!("cannot connect to NATS at {url}: {e}")
                }
                _ => NatsUnreachable {
                    url,
                    reason: e.to_string(),
                }
                .into(),
            }
        })?;
    let js = jetstream::new(client.clone());
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: cluster.stream.clone(),
            subjects: vec![format!("{}.p.*", cluster.stream)],
            retention: jetstream::stream::RetentionPolicy::WorkQueue,
            storage: jetstream::stream::StorageType::File,
            duplicate_window: DEDUP_WINDOW,
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot create the JetStream stream {}", cluster.stream))?;
    Ok((client, stream))
}

/// The worker alive that owns `part`: the highest hash of (worker, part)
/// (rendezvous hashing: a worker coming or going moves only its share).
fn rendezvous(alive: &[String], part: u32) -> Option<&str> {
    alive
        .iter()
        .max_by_key(|name| {
            let mut key = name.as_bytes().to_vec();
            key.extend(part.to_le_bytes());
            (wabill_engine::partition::fnv1a64(&key), name.as_str())
        })
        .map(String::as_str)
}

/// The partitions of the engine's configuration.
fn partitions(engine: &wabill_engine::EngineConfig, cluster: &ClusterConfig) -> Partitions {
    Partitions::new(engine, cluster.partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nats_url_is_printed_without_its_credentials() {
        assert_eq!(redacted("nats://u:p@ss@h:4222"), "nats://***@h:4222");
        assert_eq!(redacted("nats://h:4222"), "nats://h:4222");
        assert_eq!(redacted("u:p@h:4222"), "***@h:4222");
    }

    #[test]
    fn rendezvous_moves_only_the_partitions_of_the_worker_that_left() {
        let three: Vec<String> = ["a", "b", "c"].map(str::to_owned).to_vec();
        let two: Vec<String> = ["a", "c"].map(str::to_owned).to_vec();
        let mut owned = [0; 3];
        for part in 0..64 {
            let before = rendezvous(&three, part).unwrap_or_default();
            let after = rendezvous(&two, part).unwrap_or_default();
            if before != "b" {
                assert_eq!(
                    before, after,
                    "partition {part} moved off a worker still alive"
                );
            }
            owned[usize::from(before.as_bytes()[0] - b'a')] += 1;
        }
        assert!(owned.iter().all(|n| *n > 10), "uneven: {owned:?}");
        assert_eq!(rendezvous(&[], 0), None);
    }
}
