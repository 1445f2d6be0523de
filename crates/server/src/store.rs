//! The durable event log: one SQLite file under the data directory, rows
//! only ever appended. The writer appends only events that change the
//! ledger (a new event identity, rules F6, or a copy F6 prefers to the one
//! kept), so the log holds each event once plus the copies that replaced
//! one; replaying it in any order rebuilds exactly what the live ledger
//! folded. Appends land at the end of one table with no secondary index, so
//! a commit writes a few pages whatever the ids (docs/performance.md).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use wabill_engine::event::{Event, EventBody};
use wabill_engine::ledger::{Checked, Facts, copy_order};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make the event log durable ({path}): {source}")]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "event log {path} is in use by another process (another `wabill serve` on this data directory?)"
    )]
    Locked { path: PathBuf },
    #[error("event log {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// Replay is all or nothing: billed history never silently leaves.
    #[error(
        "{refused} of the {logged} logged events are refused by this configuration, so the service does not start (it would no longer bill them); the first: {first}. Start it again with the configuration that stored them, or change the configuration back"
    )]
    Replay {
        refused: u64,
        logged: u64,
        first: String,
    },
}

pub struct Store {
    path: PathBuf,
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    line TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    route TEXT NOT NULL,
    waba TEXT,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    item TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS quarantine_once ON quarantine (source, route, path, item, body);
CREATE TABLE IF NOT EXISTS probe (
    id INTEGER PRIMARY KEY,
    pad BLOB NOT NULL
) STRICT;
";

/// Logs written before the log was append-only kept one row per identity
/// in `events` (with a unique index); their rows move to `log` once.
const MIGRATE_EVENTS_TABLE: &str = "
INSERT INTO log (source, line) SELECT source, line FROM events ORDER BY seq;
DROP TABLE events;
";

const FILE: &str = "wabill.sqlite";

/// The write-ahead log of the log file `db`.
fn wal_of(db: &Path) -> PathBuf {
    let mut wal = db.to_path_buf().into_os_string();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Bytes of the log under `dir`: its file and its write-ahead log.
pub fn log_bytes(dir: &Path) -> u64 {
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let db = dir.join(FILE);
    size(&db) + size(&wal_of(&db))
}

/// One event ready to be logged: its normalized line (events.md section
/// 1), which replays it, and the validated event (with the region and
/// hashes validation found), which the writer folds once it is durable.
pub struct LogRow {
    pub checked: Checked<'static>,
    pub line: String,
    /// Where the event came from when not its request's (an item released
    /// from the quarantine keeps its provider's, rules P6).
    pub source: Option<&'static str>,
}

/// An item of a body kept whole because it gave no event (events.md
/// section 5): what the service holds until it is re-processed.
#[derive(Clone, Debug)]
pub struct Held {
    /// Its key in the quarantine (0 until stored).
    pub id: i64,
    /// When the service received it (RFC 3339, UTC): the shell's clock,
    /// for people; billing never reads it.
    pub received_at: String,
    pub source: &'static str,
    /// The provider route it came through ("" for Meta's webhook).
    pub route: String,
    pub item: wabill_ingest::Quarantined,
}

/// An event's identity (rules F6): kind, WABA, message id and status name.
pub type Identity<'e> = (&'static str, &'e str, &'e str, &'e str);

impl LogRow {
    /// A validated event.
    pub fn of((e, facts): (&Event<'_>, Facts)) -> LogRow {
        LogRow {
            line: wabill_ingest::normalized_line(e),
            checked: Checked::new(e.clone().into_owned(), facts),
            source: None,
        }
    }

    pub fn event(&self) -> &Event<'static> {
        &self.checked.event
    }

    pub fn identity(&self) -> Identity<'_> {
        let e = self.event();
        let status = match &e.body {
            EventBody::Status(s) => s.as_str(),
            EventBody::Inbound { .. } | EventBody::Outbound { .. } => "",
        };
        (e.kind_str(), &e.waba, &e.id, status)
    }

    /// Whether this copy comes before `other`, a copy of the same event, in
    /// F6's order.
    pub fn precedes(&self, other: &LogRow) -> bool {
        copy_order(self.event()) < copy_order(other.event())
    }
}

/// The source names the service writes, as the static strings it uses.
pub const SOURCES: [&str; 4] = ["meta", "360dialog", "zendesk", "api"];

fn source_name(name: &str) -> &'static str {
    SOURCES
        .into_iter()
        .find(|s| *s == name)
        .unwrap_or("unknown")
}

/// Bytes free for this process on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

impl Store {
    /// Opens (creating if needed) `dir/wabill.sqlite`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let dir_error = |source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        };
        // Owner-only: the log holds users' numbers. (An existing directory
        // or file keeps the mode its operator gave it.)
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(dir_error)?;
        let path = dir.join(FILE);
        // SQLite gives its WAL and journal files the database file's mode.
        let mut file = std::fs::OpenOptions::new();
        file.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
        file.open(&path).map_err(dir_error)?;
        let sqlite = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) => StoreError::Locked { path: path.clone() },
            _ => StoreError::Sqlite {
                path: path.clone(),
                source,
            },
        };
        let mut conn = Connection::open(&path).map_err(sqlite)?;
        // One process owns the log: a second server on the same directory
        // fails here instead of interleaving its writes. Set before WAL
        // mode, it also keeps the WAL index in memory, so a commit takes no
        // file locks.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(sqlite)?;
        // WAL with FULL: every commit is fsynced before a request is
        // answered; one commit covers many requests (group commit).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite)?;
        // Takes the write lock now, which EXCLUSIVE mode then keeps.
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(sqlite)?;
        conn.execute_batch(SCHEMA).map_err(sqlite)?;
        let old_table: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(sqlite)?
            > 0;
        if old_table {
            let tx = conn.transaction().map_err(sqlite)?;
            tx.execute_batch(MIGRATE_EVENTS_TABLE).map_err(sqlite)?;
            tx.commit().map_err(sqlite)?;
        }
        Ok(Store { path, conn })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends rows and quarantined items, and removes released items, in
    /// one durable transaction. Returns the key each held item got (None
    /// for one held already: a provider's retry).
    pub fn append<'r>(
        &mut self,
        rows: impl Iterator<Item = (&'r LogRow, &'r str)>,
        held: &[&Held],
        released: &[i64],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let mut ids = Vec::with_capacity(held.len());
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO log (source, line) VALUES (?1, ?2)")
                .map_err(err)?;
            for (row, source) in rows {
                insert.execute(params![source, row.line]).map_err(err)?;
            }
            let mut hold = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO quarantine
                     (received_at, source, route, waba, path, reason, item, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            for h in held {
                let q = &h.item;
                let n = hold
                    .execute(params![
                        h.received_at,
                        h.source,
                        h.route,
                        q.waba,
                        q.path,
                        q.reason,
                        q.item,
                        q.body
                    ])
                    .map_err(err)?;
                ids.push((n == 1).then(|| tx.last_insert_rowid()));
            }
            let mut release = tx
                .prepare_cached("DELETE FROM quarantine WHERE id = ?1")
                .map_err(err)?;
            for id in released {
                release.execute(params![id]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    /// Whether the log takes a write now (readiness, service.md): one
    /// durable transaction rewriting a page-sized row, as a commit of
    /// events would write.
    pub fn probe(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO probe (id, pad) VALUES (1, zeroblob(4096))",
            [],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Every held item, in the order they were quarantined.
    pub fn held(&self) -> Result<Vec<Held>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, received_at, source, route, waba, path, reason, item, body
                 FROM quarantine ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let source: String = r.get(2)?;
                Ok(Held {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    source: source_name(&source),
                    route: r.get(3)?,
                    item: wabill_ingest::Quarantined {
                        path: r.get(5)?,
                        reason: r.get(6)?,
                        item: r.get(7)?,
                        body: r.get(8)?,
                        waba: r.get(4)?,
                    },
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Makes the write-ahead log durable. A process that died inside a
    /// commit, before its fsync, left that commit in the file (the page
    /// cache) but maybe not on disk: replayed, its events would count as
    /// logged, and a retry of them would be answered as a duplicate.
    pub fn sync(&self) -> Result<(), StoreError> {
        let wal = wal_of(&self.path);
        match std::fs::File::open(&wal).and_then(|f| f.sync_data()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Sync {
                path: wal,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Every logged line with its source, in log order.
    pub fn replay(&self, mut f: impl FnMut(&str, &str)) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT source, line FROM log ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let source: String = row.get(0).map_err(|e| self.err(e))?;
            let line: String = row.get(1).map_err(|e| self.err(e))?;
            f(&source, &line);
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(store: &Store) -> Vec<String> {
        let mut out = Vec::new();
        store
            .replay(|_, line| out.push(line.to_owned()))
            .unwrap_or_default();
        out
    }

    #[test]
    fn a_log_of_the_one_row_per_identity_layout_moves_to_the_append_only_table_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("wabill.sqlite");
        {
            let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
            conn.execute_batch(
                "CREATE TABLE events (seq INTEGER PRIMARY KEY, identity TEXT NOT NULL UNIQUE,
                    ts INTEGER NOT NULL, waba TEXT NOT NULL, phone TEXT NOT NULL,
                    user TEXT NOT NULL, payload INTEGER NOT NULL, source TEXT NOT NULL,
                    line TEXT NOT NULL) STRICT;
                 INSERT INTO events VALUES (2, 'b', 0, 'W1', 'P1', 'U', 0, 'meta', 'second');
                 INSERT INTO events VALUES (1, 'a', 0, 'W1', 'P1', 'U', 0, 'api', 'first');",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines(&store), ["first", "second"]);
        drop(store);
        // Opening again neither moves nor loses anything.
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines(&store), ["first", "second"]);
        let tables: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tables, 0);
    }

    #[test]
    fn appended_rows_replay_in_the_order_they_were_committed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let row = |line: &str| LogRow {
            checked: Checked {
                event: Event {
                    ts: wabill_engine::Instant(0),
                    waba: "W1".into(),
                    phone: "P1".into(),
                    user: "5511999990001".into(),
                    id: "m".into(),
                    body: EventBody::Inbound { referral: false },
                    verdict: None,
                    also: None,
                },
                region: wabill_engine::market::Region::parse("BR").unwrap_or_else(|| panic!("BR")),
                id_hash: 0,
                pair_hash: 0,
                off_period: None,
            },
            line: line.to_owned(),
            source: None,
        };
        let (a, b, c) = (row("a"), row("b"), row("c"));
        store
            .append([(&a, "api"), (&b, "meta")].into_iter(), &[], &[])
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .append([(&c, "api")].into_iter(), &[], &[])
            .unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lines(&store), ["a", "b", "c"]);
    }
}
