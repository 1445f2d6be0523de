//! The store in PostgreSQL: the same tables as the embedded store (in the
//! connection's current schema: `?options=-csearch_path%3D…` picks one),
//! written in one transaction per batch, as the embedded store does.
//! PostgreSQL's own commit is the durability (`synchronous_commit`, on by
//! default). One process writes a schema's log at a time: a session
//! advisory lock named after the schema, held while the store is open.

use postgres::types::ToSql;
use postgres::{Client, NoTls};

pub mod cluster;
mod published;

use crate::migrations::{self, Applied};
use crate::{Held, Location, PublishedMonth, Store, StoreError, source_name};
use published::{no_nul, no_nul_json, replace_records};

pub struct PgStore {
    location: Location,
    client: Client,
    /// An operation failed: the connection may be gone without the
    /// client knowing yet ([`Store::lost`] checks).
    suspect: std::cell::Cell<bool>,
    /// The log's insert, prepared once on the connection.
    insert: Option<postgres::Statement>,
}

/// The advisory lock keys of the current schema: one for its writer, one
/// for migrating it.
const OWNER_KEY: &str = "hashtextextended('wabill owner:' || current_schema(), 0)";
const MIGRATE_KEY: &str = "hashtextextended('wabill migrate:' || current_schema(), 0)";

/// Rows read per round trip when replaying the log.
const REPLAY_BATCH: i32 = 10_000;

/// A PostgreSQL error as the store's: `Unreachable` (exit 75: try again
/// later) when the connection is gone, could not be made, or the server
/// is starting, stopping or full; else a configuration or data error.
fn pg_err(location: &Location) -> impl Fn(postgres::Error) -> StoreError + '_ {
    move |source| {
        let location = location.to_string();
        if transient(&source) {
            StoreError::Unreachable { location, source }
        } else {
            StoreError::Postgres { location, source }
        }
    }
}

/// Whether trying again later may succeed: a closed connection, no answer
/// (an I/O error or a timeout), SQLSTATE class 08 (connection), 57P01-03
/// (shutting down, starting up) or 53300 (too many connections). A wrong
/// password, an unknown database or a malformed URL are not.
fn transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    std::error::Error::source(e).is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
}

/// [`pg_err`] that also marks the connection suspect.
fn op_err<'a>(
    location: &'a Location,
    suspect: &'a std::cell::Cell<bool>,
) -> impl Fn(postgres::Error) -> StoreError + 'a {
    move |source| {
        suspect.set(true);
        pg_err(location)(source)
    }
}

/// How long a connection attempt, or an unanswered write on a silent
/// network, may take before the store counts as unreachable (unless the
/// URL sets `connect_timeout`, `tcp_user_timeout`).
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn connect(location: &Location, url: &str) -> Result<Client, StoreError> {
    let mut config: postgres::Config = url.parse().map_err(pg_err(location))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TIMEOUT * 3);
    }
    config.keepalives_idle(TIMEOUT);
    let mut client = config.connect(NoTls).map_err(pg_err(location))?;
    // The server's side of the session ends as soon as the client's is
    // gone (a cut network), freeing its owner lock for the restart.
    client
        .batch_execute(
            "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3",
        )
        .map_err(pg_err(location))?;
    // PostgreSQL 12 and later.
    let _ = client.batch_execute("SET tcp_user_timeout = 30000");
    // A search_path that names no existing schema leaves nowhere to keep
    // the tables (and nothing to name the owner lock after).
    let schema: Option<String> = client
        .query_one("SELECT current_schema()", &[])
        .map_err(pg_err(location))?
        .try_get(0)
        .map_err(pg_err(location))?;
    if schema.is_none() {
        return Err(StoreError::NoSchema {
            location: location.to_string(),
        });
    }
    Ok(client)
}

fn version(client: &mut Client, location: &Location) -> Result<u32, StoreError> {
    let err = pg_err(location);
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .map_err(&err)?
        .try_get(0)
        .map_err(&err)?;
    if !exists {
        return Ok(0);
    }
    max_version(client, location)
}

/// The highest migration `schema_migrations` records.
fn max_version(
    client: &mut impl postgres::GenericClient,
    location: &Location,
) -> Result<u32, StoreError> {
    let err = pg_err(location);
    let v: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .map_err(&err)?
        .try_get(0)
        .map_err(&err)?;
    Ok(u32::try_from(v).unwrap_or(0))
}

/// Applies what the schema lacks, each migration in one transaction;
/// concurrent migrators wait for each other.
fn apply(client: &mut Client, location: &Location) -> Result<(Vec<Applied>, u32), StoreError> {
    let err = pg_err(location);
    let mut tx = client.transaction().map_err(&err)?;
    tx.execute(&format!("SELECT pg_advisory_xact_lock({MIGRATE_KEY})"), &[])
        .map_err(&err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );",
    )
    .map_err(&err)?;
    let found = max_version(&mut tx, location)?;
    let known = migrations::latest();
    if found > known {
        return Err(StoreError::Newer {
            location: location.to_string(),
            found,
            known,
        });
    }
    let mut applied = Vec::new();
    for m in migrations::pending(found) {
        tx.batch_execute(m.postgres).map_err(&err)?;
        let version = i32::try_from(m.version).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &m.name],
        )
        .map_err(&err)?;
        applied.push(Applied {
            version: m.version,
            name: m.name,
        });
    }
    tx.commit().map_err(&err)?;
    Ok((applied, known))
}

/// `wabill migrate` on a PostgreSQL URL.
pub fn migrate(url: &str) -> Result<(Vec<Applied>, u32), StoreError> {
    let location = Location::Postgres(url.to_owned());
    let mut client = connect(&location, url)?;
    take_owner_lock(&mut client, &location)?;
    apply(&mut client, &location)
}

/// The schema's owner lock, held by the session, or the error saying who
/// holds it.
fn take_owner_lock(client: &mut Client, location: &Location) -> Result<(), StoreError> {
    let owned: bool = client
        .query_one(&format!("SELECT pg_try_advisory_lock({OWNER_KEY})"), &[])
        .map_err(pg_err(location))?
        .try_get(0)
        .map_err(pg_err(location))?;
    if owned {
        Ok(())
    } else {
        Err(StoreError::Busy {
            location: location.to_string(),
        })
    }
}

/// The log as it was when [`snapshot`] began, read beside the writer.
struct Snapshot {
    location: Location,
    client: Client,
}

/// A repeatable-read, read-only transaction begun now: every scan reads
/// the same prefix of the log. The store must be at this wabill's schema.
pub fn snapshot(url: &str) -> Result<Box<dyn crate::LogSnapshot>, StoreError> {
    let location = Location::Postgres(url.to_owned());
    let mut client = connect(&location, url)?;
    let (found, known) = (version(&mut client, &location)?, migrations::latest());
    if found != known {
        let shown = location.to_string();
        return Err(if found > known {
            StoreError::Newer {
                location: shown,
                found,
                known,
            }
        } else {
            StoreError::Older {
                location: shown,
                found,
                known,
            }
        });
    }
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1 FROM log LIMIT 1")
        .map_err(pg_err(&location))?;
    Ok(Box::new(Snapshot { location, client }))
}

impl crate::LogSnapshot for Snapshot {
    fn scan(&mut self, f: &mut dyn FnMut(&str, &str)) -> Result<u64, StoreError> {
        scan(&mut self.client, &self.location, f)
    }
}

/// Every line of the log in the transaction in progress, read through a
/// cursor [`REPLAY_BATCH`] rows at a time.
fn scan(
    client: &mut Client,
    location: &Location,
    f: &mut dyn FnMut(&str, &str),
) -> Result<u64, StoreError> {
    let err = pg_err(location);
    client
        .batch_execute(
            "DECLARE wabill_scan NO SCROLL CURSOR FOR SELECT source, line FROM log ORDER BY seq",
        )
        .map_err(&err)?;
    let fetch = format!("FETCH {REPLAY_BATCH} FROM wabill_scan");
    let mut n = 0;
    loop {
        let rows = client.query(&fetch, &[]).map_err(&err)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let source: &str = row.try_get(0).map_err(&err)?;
            let line: &str = row.try_get(1).map_err(&err)?;
            f(source, line);
            n += 1;
        }
    }
    client.batch_execute("CLOSE wabill_scan").map_err(&err)?;
    Ok(n)
}

/// The whole log in one repeatable-read, read-only transaction.
fn replay_on(
    client: &mut Client,
    location: &Location,
    f: &mut dyn FnMut(&str, &str),
) -> Result<u64, StoreError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(pg_err(location))?;
    let scanned = scan(client, location, f);
    let end = client.batch_execute(if scanned.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    });
    let n = scanned?;
    end.map_err(pg_err(location))?;
    Ok(n)
}

/// What keeps a held item once: SHA-256 of its fields, each length-prefixed.
fn fingerprint(h: &Held) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let q = &h.item;
    for part in [h.source, &h.route, &q.path, &q.item, &q.body] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    ctx.finish().as_ref().to_vec()
}

impl PgStore {
    /// Connects, takes the schema's owner lock and migrates.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let location = Location::Postgres(url.to_owned());
        let mut client = connect(&location, url)?;
        take_owner_lock(&mut client, &location)?;
        apply(&mut client, &location)?;
        Ok(PgStore {
            location,
            client,
            suspect: std::cell::Cell::new(false),
            insert: None,
        })
    }
}

impl Store for PgStore {
    fn location(&self) -> &Location {
        &self.location
    }

    fn append(
        &mut self,
        rows: &mut dyn Iterator<Item = (&str, &str)>,
        held: &[&Held],
        released: &[i64],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let err = op_err(&self.location, &self.suspect);
        let (sources, lines): (Vec<&str>, Vec<&str>) = rows.unzip();
        const INSERT: &str = "INSERT INTO log (source, line)
                              SELECT * FROM unnest($1::text[], $2::text[])";
        if held.is_empty() && released.is_empty() {
            // Events alone: one statement is its own transaction, so the
            // whole batch is one round trip (a prepared statement's).
            if !lines.is_empty() {
                let insert = match &self.insert {
                    Some(statement) => statement.clone(),
                    None => {
                        let statement = self.client.prepare(INSERT).map_err(&err)?;
                        self.insert.insert(statement).clone()
                    }
                };
                self.client
                    .execute(&insert, &[&sources, &lines])
                    .map_err(&err)?;
            }
            return Ok(Vec::new());
        }
        let mut tx = self.client.transaction().map_err(&err)?;
        if !lines.is_empty() {
            tx.execute(INSERT, &[&sources, &lines]).map_err(&err)?;
        }
        let mut ids = Vec::with_capacity(held.len());
        if !held.is_empty() {
            let hold = tx
                .prepare(
                    "INSERT INTO quarantine
                     (received_at, source, route, waba, path, reason, item, body, fingerprint)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
                )
                .map_err(&err)?;
            for h in held {
                let q = &h.item;
                let print = fingerprint(h);
                let text = [
                    &h.received_at,
                    h.source,
                    &h.route,
                    &q.path,
                    &q.reason,
                    &q.item,
                    &q.body,
                ]
                .map(no_nul);
                let waba = q.waba.as_deref().map(no_nul);
                let params: [&(dyn ToSql + Sync); 9] = [
                    &text[0], &text[1], &text[2], &waba, &text[3], &text[4], &text[5], &text[6],
                    &print,
                ];
                let row = tx.query_opt(&hold, &params).map_err(&err)?;
                ids.push(
                    row.map(|r| r.try_get::<_, i64>(0))
                        .transpose()
                        .map_err(&err)?,
                );
            }
        }
        if !released.is_empty() {
            tx.execute("DELETE FROM quarantine WHERE id = ANY($1)", &[&released])
                .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(ids)
    }

    fn probe(&mut self) -> Result<(), StoreError> {
        let err = op_err(&self.location, &self.suspect);
        let pad = vec![0u8; 4096];
        let mut tx = self.client.transaction().map_err(&err)?;
        tx.execute(
            "INSERT INTO probe (id, pad) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET pad = EXCLUDED.pad",
            &[&pad],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    fn held(&mut self) -> Result<Vec<Held>, StoreError> {
        let err = op_err(&self.location, &self.suspect);
        let rows = self
            .client
            .query(
                "SELECT id, received_at, source, route, waba, path, reason, item, body
                 FROM quarantine ORDER BY id",
                &[],
            )
            .map_err(&err)?;
        rows.iter()
            .map(|r| {
                let source: &str = r.try_get(2)?;
                Ok(Held {
                    id: r.try_get(0)?,
                    received_at: r.try_get(1)?,
                    source: source_name(source),
                    route: r.try_get(3)?,
                    item: wabill_ingest::Quarantined {
                        path: r.try_get(5)?,
                        reason: r.try_get(6)?,
                        item: r.try_get(7)?,
                        body: r.try_get(8)?,
                        waba: r.try_get(4)?,
                    },
                })
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(&err)
    }

    fn replay(&mut self, f: &mut dyn FnMut(&str, &str)) -> Result<u64, StoreError> {
        replay_on(&mut self.client, &self.location, f)
    }

    fn publish(&mut self, months: &[PublishedMonth]) -> Result<Vec<Option<u32>>, StoreError> {
        let err = op_err(&self.location, &self.suspect);
        let mut tx = self.client.transaction().map_err(&err)?;
        let mut revisions = Vec::with_capacity(months.len());
        for m in months {
            let digest = m.digest();
            let stored = tx
                .query_opt(
                    "SELECT revision, digest FROM invoices WHERE waba = $1 AND month = $2",
                    &[&no_nul(&m.waba), &no_nul(&m.month)],
                )
                .map_err(&err)?
                .map(|r| {
                    Ok::<_, postgres::Error>((r.try_get::<_, i32>(0)?, r.try_get::<_, Vec<u8>>(1)?))
                })
                .transpose()
                .map_err(&err)?;
            if stored.as_ref().is_some_and(|(_, d)| *d == digest) {
                revisions.push(None);
                continue;
            }
            let revision = stored.map_or(1, |(r, _)| r + 1);
            tx.execute(
                "INSERT INTO invoices
                 (waba, month, currency, meta_total, amount_due, revision, published_at, digest, invoice)
                 VALUES ($1, $2, $3, $4::text::numeric, $5::text::numeric, $6, now(), $7, $8::text::jsonb)
                 ON CONFLICT (waba, month) DO UPDATE SET
                   currency = EXCLUDED.currency, meta_total = EXCLUDED.meta_total,
                   amount_due = EXCLUDED.amount_due, revision = EXCLUDED.revision,
                   published_at = EXCLUDED.published_at, digest = EXCLUDED.digest,
                   invoice = EXCLUDED.invoice",
                &[
                    &no_nul(&m.waba),
                    &no_nul(&m.month),
                    &no_nul(&m.currency),
                    &m.meta_total,
                    &m.amount_due,
                    &revision,
                    &digest,
                    &no_nul_json(&m.invoice),
                ],
            )
            .map_err(&err)?;
            replace_records(&mut tx, m, revision).map_err(&err)?;
            revisions.push(Some(u32::try_from(revision).unwrap_or(0)));
        }
        tx.commit().map_err(&err)?;
        Ok(revisions)
    }

    fn keep_published(&mut self, keep: &[(String, String)]) -> Result<u64, StoreError> {
        let err = op_err(&self.location, &self.suspect);
        let (wabas, months): (
            Vec<std::borrow::Cow<'_, str>>,
            Vec<std::borrow::Cow<'_, str>>,
        ) = keep.iter().map(|(w, m)| (no_nul(w), no_nul(m))).unzip();
        let (wabas, months): (Vec<&str>, Vec<&str>) = (
            wabas.iter().map(|w| w.as_ref()).collect(),
            months.iter().map(|m| m.as_ref()).collect(),
        );
        let mut tx = self.client.transaction().map_err(&err)?;
        let gone = "SELECT i.waba, i.month FROM invoices i
                    WHERE (i.waba, i.month) NOT IN (SELECT * FROM unnest($1::text[], $2::text[]))";
        tx.execute(
            &format!("DELETE FROM conversation_records WHERE (waba, month) IN ({gone})"),
            &[&wabas, &months],
        )
        .map_err(&err)?;
        let months_gone = tx
            .execute(
                &format!("DELETE FROM invoices WHERE (waba, month) IN ({gone})"),
                &[&wabas, &months],
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(months_gone)
    }

    fn log_bytes(&mut self) -> Option<u64> {
        let row = self
            .client
            .query_one("SELECT pg_total_relation_size('log')", &[])
            .ok()?;
        u64::try_from(row.try_get::<_, i64>(0).ok()?).ok()
    }

    fn free_bytes(&self) -> Option<u64> {
        None
    }

    fn lost(&mut self) -> bool {
        if !self.suspect.replace(false) {
            return self.client.is_closed();
        }
        self.client.is_closed() || self.client.is_valid(TIMEOUT).is_err()
    }
}
