//! The embedded store: one SQLite file under the data directory, in WAL
//! mode with FULL sync (every commit is fsynced before a request is
//! answered; one commit covers many requests). The log's rows are only
//! ever appended, at the end of one table with no secondary index, so a
//! commit writes a few pages whatever the ids (docs/performance.md). One
//! process writes it (an exclusive `flock` on `wabill.lock`); others may
//! read it meanwhile (`wabill export`, `wabill backup`).

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::migrations::{self, Applied};
use crate::{Held, Location, PublishedMonth, Store, StoreError, source_name};

const FILE: &str = "wabill.sqlite";
const LOCK: &str = "wabill.lock";

pub struct SqliteStore {
    location: Location,
    path: PathBuf,
    conn: Connection,
    /// Held open: the owner lock lasts as long as the store.
    _lock: File,
}

/// The write-ahead log of the log file `db`.
fn wal_of(db: &Path) -> PathBuf {
    let mut wal = db.to_path_buf().into_os_string();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Bytes of the store under `dir`: its file and its write-ahead log.
pub fn log_bytes(dir: &Path) -> u64 {
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let db = dir.join(FILE);
    size(&db) + size(&wal_of(&db))
}

/// Bytes free for this process on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// SQLite's error as the store's, named after the store.
fn located(location: &Location) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        location: location.to_string(),
        source,
    }
}

fn sqlite_err(dir: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        location: dir.display().to_string(),
        source,
    }
}

/// Creates `dir` (owner-only: the log holds users' numbers; an existing
/// directory or file keeps the mode its operator gave it) and an empty
/// store file in it, if missing.
fn create(dir: &Path) -> Result<PathBuf, StoreError> {
    let dir_error = |source| StoreError::Dir {
        path: dir.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(dir_error)?;
    let path = dir.join(FILE);
    // SQLite gives its WAL and journal files the database file's mode.
    owner_only_file(&path).map_err(dir_error)?;
    Ok(path)
}

fn owner_only_file(path: &Path) -> std::io::Result<File> {
    let mut file = std::fs::OpenOptions::new();
    file.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.open(path)
}

/// Takes the data directory's owner lock, or says who holds it.
fn lock(dir: &Path) -> Result<File, StoreError> {
    let file = owner_only_file(&dir.join(LOCK)).map_err(|source| StoreError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(_) => Err(StoreError::Locked {
            location: dir.display().to_string(),
        }),
    }
}

/// Opens the store file for writing: WAL, FULL sync, busy waits short.
fn connect(dir: &Path, path: &Path) -> Result<Connection, StoreError> {
    let err = sqlite_err(dir);
    let conn = Connection::open(path).map_err(&err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&err)?;
    // A reader (`wabill backup`) may hold a lock for a moment.
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&err)?;
    Ok(conn)
}

/// Logs written before the log was append-only kept one row per identity
/// in `events` (with a unique index); their rows move to `log` once.
const MOVE_EVENTS_TABLE: &str = "
INSERT INTO log (source, line) SELECT source, line FROM events ORDER BY seq;
DROP TABLE events;
";

fn version(conn: &Connection) -> rusqlite::Result<u32> {
    let has_table: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |r| r.get(0),
    )?;
    if has_table == 0 {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )
}

/// Applies what `conn`'s store lacks, each migration in one transaction.
fn apply(dir: &Path, conn: &mut Connection) -> Result<(Vec<Applied>, u32), StoreError> {
    let err = sqlite_err(dir);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        ) STRICT;",
    )
    .map_err(&err)?;
    let found = version(conn).map_err(&err)?;
    let known = migrations::latest();
    if found > known {
        return Err(StoreError::Newer {
            location: dir.display().to_string(),
            found,
            known,
        });
    }
    let mut applied = Vec::new();
    for m in migrations::pending(found) {
        let tx = conn.transaction().map_err(&err)?;
        tx.execute_batch(m.sqlite).map_err(&err)?;
        if m.version == 1 {
            let old_table: i64 = tx
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'",
                    [],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            if old_table > 0 {
                tx.execute_batch(MOVE_EVENTS_TABLE).map_err(&err)?;
            }
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
            params![m.version, m.name],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        applied.push(Applied {
            version: m.version,
            name: m.name,
        });
    }
    Ok((applied, known))
}

/// `wabill migrate` on a data directory.
pub fn migrate(dir: &Path) -> Result<(Vec<Applied>, u32), StoreError> {
    let path = create(dir)?;
    let _lock = lock(dir)?;
    let mut conn = connect(dir, &path)?;
    apply(dir, &mut conn)
}

/// A read-only connection beside the writer, at this wabill's schema.
fn reader(dir: &Path) -> Result<Connection, StoreError> {
    let err = sqlite_err(dir);
    let path = dir.join(FILE);
    if !path.is_file() {
        return Err(StoreError::Missing {
            path: dir.to_owned(),
        });
    }
    let conn =
        Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(&err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&err)?;
    let (found, known) = (version(&conn).map_err(&err)?, migrations::latest());
    let location = dir.display().to_string();
    match found {
        f if f > known => Err(StoreError::Newer {
            location,
            found,
            known,
        }),
        f if f < known => Err(StoreError::Older {
            location,
            found,
            known,
        }),
        _ => Ok(conn),
    }
}

/// The log as it was when [`snapshot`] began, read beside the writer.
struct Snapshot {
    dir: PathBuf,
    conn: Connection,
}

/// A read transaction begun now: every scan reads the same prefix of
/// the log (WAL readers keep their snapshot until they end).
pub fn snapshot(dir: &Path) -> Result<Box<dyn crate::LogSnapshot>, StoreError> {
    let conn = reader(dir)?;
    let err = sqlite_err(dir);
    conn.execute_batch("BEGIN").map_err(&err)?;
    // The snapshot starts at the transaction's first read.
    conn.query_row("SELECT count(*) FROM log WHERE seq < 0", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(&err)?;
    Ok(Box::new(Snapshot {
        dir: dir.to_owned(),
        conn,
    }))
}

impl crate::LogSnapshot for Snapshot {
    fn scan(&mut self, f: &mut dyn FnMut(&str, &str)) -> Result<u64, StoreError> {
        replay_on(&self.conn, f).map_err(sqlite_err(&self.dir))
    }
}

/// An online copy of the store into the new file `to` (owner-only),
/// made from one read transaction while the service writes on.
pub fn backup(dir: &Path, to: &Path) -> Result<(), StoreError> {
    let conn = reader(dir)?;
    // Created here, new and owner-only (never a file or link that was
    // there); VACUUM INTO fills an empty file.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(to).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => StoreError::Backup(format!(
            "{} exists; a backup never overwrites a file",
            to.display()
        )),
        _ => StoreError::Backup(format!("{}: {e}", to.display())),
    })?;
    // Absolute: SQLite reads a name that begins with `file:` as a URI.
    let target = std::path::absolute(to)
        .map_err(|e| StoreError::Backup(format!("{}: {e}", to.display())))?;
    let target = target.to_string_lossy();
    if let Err(e) = conn.execute("VACUUM INTO ?1", params![target]) {
        let _ = std::fs::remove_file(to);
        return Err(sqlite_err(dir)(e));
    }
    Ok(())
}

fn replay_on(conn: &Connection, f: &mut dyn FnMut(&str, &str)) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare("SELECT source, line FROM log ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let source = row.get_ref(0)?.as_str()?;
        let line = row.get_ref(1)?.as_str()?;
        f(source, line);
        n += 1;
    }
    Ok(n)
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/wabill.sqlite`, takes the owner
    /// lock and migrates.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = create(dir)?;
        let lock = lock(dir)?;
        let mut conn = connect(dir, &path)?;
        apply(dir, &mut conn)?;
        Ok(SqliteStore {
            location: Location::Embedded(dir.to_owned()),
            path,
            conn,
            _lock: lock,
        })
    }

    /// Makes the write-ahead log durable. A process that died inside a
    /// commit, before its fsync, left that commit in the file (the page
    /// cache) but maybe not on disk: replayed, its events would count as
    /// logged, and a retry of them would be answered as a duplicate.
    pub fn sync(&self) -> Result<(), StoreError> {
        let wal = wal_of(&self.path);
        match File::open(&wal).and_then(|f| f.sync_data()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Sync {
                path: wal,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

impl Store for SqliteStore {
    fn location(&self) -> &Location {
        &self.location
    }

    fn append(
        &mut self,
        rows: &mut dyn Iterator<Item = (&str, &str)>,
        held: &[&Held],
        released: &[i64],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let err = located(&self.location);
        let tx = self.conn.transaction().map_err(&err)?;
        let mut ids = Vec::with_capacity(held.len());
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO log (source, line) VALUES (?1, ?2)")
                .map_err(&err)?;
            for (source, line) in rows {
                insert.execute(params![source, line]).map_err(&err)?;
            }
            let mut hold = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO quarantine
                     (received_at, source, route, waba, path, reason, item, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&err)?;
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
                    .map_err(&err)?;
                ids.push((n == 1).then(|| tx.last_insert_rowid()));
            }
            let mut release = tx
                .prepare_cached("DELETE FROM quarantine WHERE id = ?1")
                .map_err(&err)?;
            for id in released {
                release.execute(params![id]).map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
        Ok(ids)
    }

    fn probe(&mut self) -> Result<(), StoreError> {
        let err = located(&self.location);
        let tx = self.conn.transaction().map_err(&err)?;
        tx.execute(
            "INSERT OR REPLACE INTO probe (id, pad) VALUES (1, zeroblob(4096))",
            [],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    fn held(&mut self) -> Result<Vec<Held>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, received_at, source, route, waba, path, reason, item, body
                 FROM quarantine ORDER BY id",
            )
            .map_err(located(&self.location))?;
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
            .map_err(located(&self.location))?;
        rows.collect::<Result<_, _>>()
            .map_err(located(&self.location))
    }

    fn replay(&mut self, f: &mut dyn FnMut(&str, &str)) -> Result<u64, StoreError> {
        self.sync()?;
        replay_on(&self.conn, f).map_err(located(&self.location))
    }

    fn publish(&mut self, months: &[PublishedMonth]) -> Result<Vec<Option<u32>>, StoreError> {
        let err = located(&self.location);
        let tx = self.conn.transaction().map_err(&err)?;
        let mut revisions = Vec::with_capacity(months.len());
        for m in months {
            let digest = m.digest();
            let stored: Option<(u32, Vec<u8>)> = tx
                .query_row(
                    "SELECT revision, digest FROM invoices WHERE waba = ?1 AND month = ?2",
                    params![m.waba, m.month],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(&err)?;
            if stored.as_ref().is_some_and(|(_, d)| *d == digest) {
                revisions.push(None);
                continue;
            }
            let revision = stored.map_or(1, |(r, _)| r + 1);
            tx.execute(
                "INSERT OR REPLACE INTO invoices
                 (waba, month, currency, meta_total, amount_due, revision, published_at, digest, invoice)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?7, ?8)",
                params![
                    m.waba,
                    m.month,
                    m.currency,
                    m.meta_total,
                    m.amount_due,
                    revision,
                    digest,
                    m.invoice
                ],
            )
            .map_err(&err)?;
            tx.execute(
                "DELETE FROM conversation_records WHERE waba = ?1 AND month = ?2",
                params![m.waba, m.month],
            )
            .map_err(&err)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO conversation_records
                     (waba, month, n, phone, user_id, start_at, end_at, era, category, market,
                      free, unit_price, opened_by, messages, revision, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                )
                .map_err(&err)?;
            for (n, r) in m.records.iter().enumerate() {
                insert
                    .execute(params![
                        m.waba,
                        m.month,
                        n as i64,
                        r.phone,
                        r.user,
                        r.start,
                        r.end,
                        r.era,
                        r.category,
                        r.market,
                        r.free,
                        r.unit_price,
                        r.opened_by,
                        r.messages,
                        revision,
                        r.json
                    ])
                    .map_err(&err)?;
            }
            revisions.push(Some(revision));
        }
        tx.commit().map_err(&err)?;
        Ok(revisions)
    }

    fn keep_published(&mut self, keep: &[(String, String)]) -> Result<u64, StoreError> {
        let err = located(&self.location);
        let keep: std::collections::HashSet<(&str, &str)> =
            keep.iter().map(|(w, m)| (w.as_str(), m.as_str())).collect();
        let tx = self.conn.transaction().map_err(&err)?;
        let stored: Vec<(String, String)> = {
            let mut stmt = tx
                .prepare("SELECT waba, month FROM invoices")
                .map_err(&err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(&err)?;
            rows.collect::<Result<_, _>>().map_err(&err)?
        };
        let mut withdrawn = 0;
        for (waba, month) in stored {
            if keep.contains(&(waba.as_str(), month.as_str())) {
                continue;
            }
            for table in ["invoices", "conversation_records"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE waba = ?1 AND month = ?2"),
                    params![waba, month],
                )
                .map_err(&err)?;
            }
            withdrawn += 1;
        }
        tx.commit().map_err(&err)?;
        Ok(withdrawn)
    }

    fn log_bytes(&mut self) -> Option<u64> {
        self.location.data_dir().map(log_bytes)
    }

    fn free_bytes(&self) -> Option<u64> {
        self.location.data_dir().and_then(free_bytes)
    }
}
