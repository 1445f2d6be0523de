//! The service's store (docs/spec/store.md): the event log, from which
//! the engine is rebuilt; the quarantine; and what the service billed
//! (invoices and conversation records), published as tables for other
//! systems. One interface ([`Store`]), two backends: an embedded SQLite
//! file under a data directory ([`sqlite`]) and PostgreSQL ([`postgres`]).
//! Both apply the same numbered migrations ([`migrations`]) on open.
//!
//! The store knows lines and JSON text, never the engine's types: the
//! service decides what to log and what a month's invoice is.

use std::fmt;
use std::path::{Path, PathBuf};

pub mod migrations;
pub mod postgres;
pub mod sqlite;

pub use migrations::{Applied, MIGRATIONS, Migration};

/// Where a store is: a data directory (the embedded SQLite file) or a
/// PostgreSQL connection URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Embedded(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…` or `postgresql://…` (any case, blanks around
    /// ignored) is PostgreSQL; another `scheme://` or `postgres:` without
    /// `//` is an error (whose message never holds the text: it may hold a
    /// password); anything else is a data directory.
    pub fn parse(text: &str) -> Result<Location, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the store is empty: give a PostgreSQL URL or a data directory".into());
        }
        let lower = text.to_ascii_lowercase();
        for scheme in ["postgresql", "postgres"] {
            let Some(rest) = lower.strip_prefix(scheme) else {
                continue;
            };
            if rest.starts_with("://") {
                return Ok(Location::Postgres(format!(
                    "postgres://{}",
                    &text[scheme.len() + 3..]
                )));
            }
            if rest.starts_with(':') || rest.starts_with("//") {
                return Err(format!(
                    "the store is not a PostgreSQL URL: it must start with `{scheme}://`"
                ));
            }
        }
        if let Some((scheme, _)) = text.split_once("://")
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(format!(
                "the store has the scheme `{scheme}://`: a PostgreSQL URL starts with postgres://, and a data directory is a path"
            ));
        }
        Ok(Location::Embedded(PathBuf::from(text)))
    }

    /// The data directory of an embedded store.
    pub fn data_dir(&self) -> Option<&Path> {
        match self {
            Location::Embedded(dir) => Some(dir),
            Location::Postgres(_) => None,
        }
    }
}

/// What may name a store, from the most preferred (store.md "Where").
pub struct Named<'a> {
    /// `WABILL_STORE`: a URL or a directory.
    pub env_store: Option<String>,
    /// `WABILL_DATA_DIR`.
    pub env_data_dir: Option<String>,
    /// `[server] store` and `data_dir` of the file, whose relative paths
    /// are relative to the file's directory `base`.
    pub store: Option<&'a str>,
    pub data_dir: Option<PathBuf>,
    pub base: Option<&'a Path>,
}

impl Location {
    /// The store named: the environment's, else the file's (`store` or
    /// `data_dir`, not both), else `./wabill-data`.
    pub fn named(n: Named<'_>) -> Result<Location, String> {
        let in_file = |dir: PathBuf| match n.base {
            Some(base) if dir.is_relative() => base.join(dir),
            _ => dir,
        };
        Ok(match (n.env_store, n.env_data_dir, n.store, n.data_dir) {
            (Some(_), Some(_), _, _) => {
                return Err("WABILL_STORE and WABILL_DATA_DIR: give one of them".into());
            }
            (Some(store), None, _, _) => {
                Location::parse(&store).map_err(|e| format!("WABILL_STORE: {e}"))?
            }
            (None, Some(dir), _, _) => Location::Embedded(PathBuf::from(dir)),
            (None, None, Some(_), Some(_)) => {
                return Err("server.store and server.data_dir: give one of them".into());
            }
            (None, None, Some(store), None) => {
                match Location::parse(store).map_err(|e| format!("server.store: {e}"))? {
                    Location::Embedded(dir) => Location::Embedded(in_file(dir)),
                    postgres => postgres,
                }
            }
            (None, None, None, Some(dir)) => Location::Embedded(in_file(dir)),
            (None, None, None, None) => Location::Embedded(PathBuf::from("./wabill-data")),
        })
    }
}

/// For messages and logs: a URL's password is never shown.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Embedded(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// The URL as PostgreSQL's client reads it, rebuilt without its password
/// (given in the user part or as `password=`): `***` where it was.
fn redact(url: &str) -> String {
    // A user part with `@` in it: where the password ends is anyone's
    // guess, so only what follows the last `@` is shown.
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['?', '#']).next().unwrap_or(rest);
        if let Some(at) = authority.rfind('@')
            && authority[..at].contains('@')
        {
            return format!("postgres://***@{}", &authority[at + 1..]);
        }
    }
    let Ok(c) = url.parse::<::postgres::Config>() else {
        return "postgres://(a URL that does not parse)".to_owned();
    };
    let user = match (c.get_user(), c.get_password()) {
        (Some(u), Some(_)) => format!("{u}:***@"),
        (Some(u), None) => format!("{u}@"),
        (None, Some(_)) => ":***@".to_owned(),
        (None, None) => String::new(),
    };
    let ports = c.get_ports();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                ::postgres::config::Host::Tcp(name) => name.clone(),
                ::postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let mut shown = format!("postgres://{user}{}", hosts.join(","));
    if let Some(db) = c.get_dbname() {
        shown.push('/');
        shown.push_str(db);
    }
    if let Some(options) = c.get_options() {
        shown.push_str(" (options ");
        shown.push_str(options);
        shown.push(')');
    }
    // A password with `@` or `/` in it can end up read as part of a
    // host: whatever could be the password goes, wherever it landed.
    let mut secrets: Vec<String> = Vec::new();
    if let Some(p) = c.get_password() {
        secrets.push(String::from_utf8_lossy(p).into_owned());
    }
    if let Some((_, rest)) = url.split_once("://")
        && let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        secrets.push(password.to_owned());
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        shown = shown.replace(secret.as_str(), "***");
    }
    shown
}

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
        "the store {location} is in use by another process (another `wabill serve`, `import` or `migrate` on it?)"
    )]
    Locked { location: String },
    /// PostgreSQL: another session holds the store; it may be one whose
    /// client is gone and that PostgreSQL has not yet ended (exit 75: try
    /// again later).
    #[error(
        "the store {location} is in use by another process or session (another `wabill serve`, `import` or `migrate` on it, or the session of one that ended, which PostgreSQL frees within a minute)"
    )]
    Busy { location: String },
    #[error("store {location}: {source}")]
    Sqlite {
        location: String,
        source: rusqlite::Error,
    },
    /// Try again later: exit status 75 (cli.md).
    #[error("store {location} cannot be reached: {source}")]
    Unreachable {
        location: String,
        source: ::postgres::Error,
    },
    #[error("store {location}: {source}")]
    Postgres {
        location: String,
        source: ::postgres::Error,
    },
    #[error(
        "cluster {location}: the schema name {schema:?} is too long for its partitions' schemas (`<schema>_p<N>` must fit PostgreSQL's 63 bytes)"
    )]
    SchemaName { location: String, schema: String },
    #[error(
        "store {location} has schema version {found}, newer than the {known} this wabill knows: use the wabill that migrated it, or a newer one"
    )]
    Newer {
        location: String,
        found: u32,
        known: u32,
    },
    #[error(
        "store {location} has schema version {found} and needs {known}: run `wabill migrate` (or start `wabill serve`, which migrates) first"
    )]
    Older {
        location: String,
        found: u32,
        known: u32,
    },
    #[error("backup: {0}")]
    Backup(String),
    #[error(
        "store {location}: the connection's search_path names no schema that exists: create it, or fix `options=-csearch_path=…`"
    )]
    NoSchema { location: String },
    #[error(
        "no store at {path}: no wabill.sqlite there (run `wabill migrate` or start `wabill serve` on it first)"
    )]
    Missing { path: PathBuf },
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

/// The source names the service writes, as the static strings it uses.
pub const SOURCES: [&str; 4] = ["meta", "360dialog", "zendesk", "api"];

/// A stored source name as the service's static string.
pub fn source_name(name: &str) -> &'static str {
    SOURCES
        .into_iter()
        .find(|s| *s == name)
        .unwrap_or("unknown")
}

/// One WABA-month as billed: its invoice (JSON, as `GET /v1/invoices`
/// answers) and its conversation records (each as `GET
/// /v1/conversations` lists it, without timeline), in cli.md's order.
pub struct PublishedMonth {
    pub waba: String,
    /// `YYYY-MM`.
    pub month: String,
    pub currency: String,
    pub meta_total: String,
    pub amount_due: String,
    pub invoice: String,
    pub records: Vec<PublishedRecord>,
}

/// A conversation record's columns and its JSON.
pub struct PublishedRecord {
    pub phone: String,
    pub user: String,
    /// RFC 3339.
    pub start: String,
    pub end: String,
    pub era: String,
    pub category: String,
    pub market: String,
    pub free: String,
    pub unit_price: String,
    pub opened_by: String,
    pub messages: u32,
    pub json: String,
}

impl PublishedMonth {
    /// What decides whether a month changed since it was published.
    fn digest(&self) -> Vec<u8> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(self.invoice.as_bytes());
        for r in &self.records {
            ctx.update(b"\n");
            ctx.update(r.json.as_bytes());
        }
        ctx.finish().as_ref().to_vec()
    }
}

/// The store's operations, the same on both backends; one writer thread
/// drives a store ([`open`] takes its owner lock).
pub trait Store: Send {
    fn location(&self) -> &Location;

    /// Appends log rows (source, normalized line) and quarantined items,
    /// and removes released items, in one durable transaction. Returns
    /// the key each held item got (None for one held already: a
    /// provider's retry).
    fn append(
        &mut self,
        rows: &mut dyn Iterator<Item = (&str, &str)>,
        held: &[&Held],
        released: &[i64],
    ) -> Result<Vec<Option<i64>>, StoreError>;

    /// Whether the store takes a durable write now (readiness): one
    /// transaction rewriting a page-sized row.
    fn probe(&mut self) -> Result<(), StoreError>;

    /// Every held item, in the order they were quarantined.
    fn held(&mut self) -> Result<Vec<Held>, StoreError>;

    /// Every logged line with its source, in log order; the number of rows.
    fn replay(&mut self, f: &mut dyn FnMut(&str, &str)) -> Result<u64, StoreError>;

    /// Replaces each month's published invoice and records when they
    /// differ from what is stored; returns the revision each month has
    /// now, None for a month that had not changed.
    fn publish(&mut self, months: &[PublishedMonth]) -> Result<Vec<Option<u32>>, StoreError>;

    /// Withdraws the published rows (invoice and records) of every month
    /// not in `keep` (`(waba, YYYY-MM)`): months that can no longer be
    /// billed. Returns how many were withdrawn.
    fn keep_published(&mut self, keep: &[(String, String)]) -> Result<u64, StoreError>;

    /// Bytes the log takes, when the backend tells.
    fn log_bytes(&mut self) -> Option<u64>;

    /// Bytes free where the store writes, when it is a local disk.
    fn free_bytes(&self) -> Option<u64>;

    /// After a failed operation: whether the connection to the store is
    /// gone (PostgreSQL restarted, the network cut). The service then
    /// stops rather than reconnect (exit status 75): a commit whose answer
    /// was lost may have been made, and only a replay of the log tells.
    fn lost(&mut self) -> bool {
        false
    }
}

/// Opens the store at `location` for writing, creating it if needed,
/// applies pending migrations and takes its owner lock: one process
/// writes a store at a time.
pub fn open(location: &Location) -> Result<Box<dyn Store>, StoreError> {
    Ok(match location {
        Location::Embedded(dir) => Box::new(sqlite::SqliteStore::open(dir)?),
        Location::Postgres(url) => Box::new(postgres::PgStore::open(url)?),
    })
}

/// Applies the pending migrations; returns what was applied and the
/// schema version after.
pub fn migrate(location: &Location) -> Result<(Vec<Applied>, u32), StoreError> {
    match location {
        Location::Embedded(dir) => sqlite::migrate(dir),
        Location::Postgres(url) => postgres::migrate(url),
    }
}

/// The log as one snapshot, read beside a running service (no owner
/// lock): every scan reads the same lines.
pub trait LogSnapshot {
    /// Every logged line of the snapshot with its source, in log order;
    /// the number of lines.
    fn scan(&mut self, f: &mut dyn FnMut(&str, &str)) -> Result<u64, StoreError>;
}

/// A snapshot of the log begun now; the store must be at this wabill's
/// schema version.
pub fn snapshot(location: &Location) -> Result<Box<dyn LogSnapshot>, StoreError> {
    match location {
        Location::Embedded(dir) => sqlite::snapshot(dir),
        Location::Postgres(url) => postgres::snapshot(url),
    }
}

/// Every logged line with its source, read once beside a running service.
pub fn read_log(location: &Location, f: &mut dyn FnMut(&str, &str)) -> Result<u64, StoreError> {
    snapshot(location)?.scan(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_shown_without_its_password() {
        let l = Location::parse("postgres://bill:s3cret@db.internal:5432/wabill?sslmode=disable")
            .unwrap();
        assert_eq!(l.to_string(), "postgres://bill:***@db.internal:5432/wabill");
        // The client reads the user part up to the first `@` and takes a
        // `password=` parameter too.
        let l = Location::parse("postgres://u:pa/ss@h/db").unwrap();
        assert!(!l.to_string().contains("pa/ss"), "{l}");
        let l =
            Location::parse("postgresql://db/wabill?password=x&options=-csearch_path%3Dbilling")
                .unwrap();
        assert_eq!(
            l.to_string(),
            "postgres://:***@db:5432/wabill (options -csearch_path=billing)"
        );
        assert_eq!(
            Location::parse("/var/lib/wabill"),
            Ok(Location::Embedded(PathBuf::from("/var/lib/wabill")))
        );
        let at = Location::parse("postgres://postgres:SEC@RETPW@127.0.0.1:5432/test").unwrap();
        assert_eq!(at.to_string(), "postgres://***@127.0.0.1:5432/test");
    }

    #[test]
    fn a_store_that_looks_like_a_url_but_is_no_postgresql_one_is_refused_without_its_text() {
        let upper = Location::parse(" POSTGRES://u:pw@h/db ").unwrap();
        assert_eq!(upper, Location::Postgres("postgres://u:pw@h/db".into()));
        for bad in [
            "postgres:/u:pw@h/db",
            "postgres//u:pw@h/db",
            "mysql://u:pw@h/db",
            "",
            "  ",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert!(!e.contains("pw"), "{e}");
        }
        // Paths stay paths, even with `postgres` or `://` in them.
        for path in ["postgres-data", "./a://b", "/srv/postgres/wabill"] {
            assert_eq!(
                Location::parse(path),
                Ok(Location::Embedded(PathBuf::from(path)))
            );
        }
    }
}
