//! The durable event log: one SQLite file under the data directory, one row
//! per distinct event (rules F6 identity). When copies of an event disagree,
//! the row keeps the copy F6 says counts (earliest time, then smallest
//! `(waba, phone, user)`, then payload), so the log rebuilt after a restart
//! holds exactly what the live ledger folded.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use wabill_engine::event::{Event, EventBody};
use wabill_engine::ledger::template_code;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("event log {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

pub struct Store {
    path: PathBuf,
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,
    ts INTEGER NOT NULL,
    waba TEXT NOT NULL,
    phone TEXT NOT NULL,
    user TEXT NOT NULL,
    payload INTEGER NOT NULL,
    source TEXT NOT NULL,
    line TEXT NOT NULL
) STRICT;
";

/// One event ready to be logged: its identity, its F6 order and its
/// normalized line (events.md section 1), which replays it; and the event
/// itself, which the writer folds once it is durable.
pub struct LogRow {
    pub event: Event<'static>,
    pub identity: String,
    pub payload: i64,
    pub line: String,
}

impl LogRow {
    pub fn of(e: &Event<'_>) -> LogRow {
        let (status, payload) = match &e.body {
            EventBody::Inbound { referral } => ("", i64::from(*referral)),
            // The ledger's own payload order (F6's last tie-break).
            EventBody::Outbound { template } => ("", i64::from(template_code(*template))),
            EventBody::Status(s) => (s.as_str(), 0),
        };
        LogRow {
            identity: format!("{}\u{1f}{}\u{1f}{}", e.kind_str(), e.id, status),
            payload,
            line: wabill_ingest::normalized_line(e),
            event: e.clone().into_owned(),
        }
    }
}

impl Store {
    /// Opens (creating if needed) `dir/wabill.sqlite`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("wabill.sqlite");
        let sqlite = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sqlite)?;
        // WAL with FULL: every commit is fsynced before a request is
        // answered; one commit covers many requests (group commit).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite)?;
        conn.execute_batch(SCHEMA).map_err(sqlite)?;
        Ok(Store { path, conn })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends rows in one durable transaction. A row whose identity is
    /// logged already replaces it only when F6 prefers it.
    pub fn append<'r>(
        &mut self,
        rows: impl Iterator<Item = (&'r LogRow, &'r str)>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (identity, ts, waba, phone, user, payload, source, line)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (identity) DO UPDATE SET
                        ts = excluded.ts, waba = excluded.waba, phone = excluded.phone,
                        user = excluded.user, payload = excluded.payload,
                        source = excluded.source, line = excluded.line
                     WHERE (excluded.ts, excluded.waba, excluded.phone, excluded.user, excluded.payload)
                         < (events.ts, events.waba, events.phone, events.user, events.payload)",
                )
                .map_err(|e| StoreError::Sqlite {
                    path: self.path.clone(),
                    source: e,
                })?;
            for (row, source) in rows {
                insert
                    .execute(params![
                        row.identity,
                        row.event.ts.0,
                        row.event.waba,
                        row.event.phone,
                        row.event.user,
                        row.payload,
                        source,
                        row.line
                    ])
                    .map_err(|e| StoreError::Sqlite {
                        path: self.path.clone(),
                        source: e,
                    })?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every logged line, in log order.
    pub fn replay(&self, mut f: impl FnMut(&str)) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT line FROM events ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let line: String = row.get(0).map_err(|e| self.err(e))?;
            f(&line);
            n += 1;
        }
        Ok(n)
    }

    /// Bytes of the log file and its write-ahead log.
    pub fn size_bytes(&self) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.path) + size(Path::new(&wal))
    }
}
