//! The cluster's shared tables (store.md, "Cluster"), in the schema the
//! cluster's URL names: which workers are alive (`wabill_workers`) and
//! which worker owns each partition (`wabill_owners`), for reads. Each
//! partition is a store of its own in the schema `<schema>_p<N>`: its log,
//! its owner lock (the one writer), its published tables.

use postgres::Client;

use super::{connect, pg_err};
use crate::{Location, StoreError};

/// A worker missing its heartbeat this long is no longer counted.
pub const ALIVE_SECS: i32 = 5;

pub struct Cluster {
    location: Location,
    url: String,
    client: Client,
    schema: String,
}

impl Cluster {
    /// Connects and creates the shared tables if missing.
    pub fn connect(url: &str) -> Result<Cluster, StoreError> {
        let location = Location::Postgres(url.to_owned());
        let mut client = connect(&location, url)?;
        let err = pg_err(&location);
        let schema: String = client
            .query_one("SELECT current_schema()", &[])
            .and_then(|row| row.try_get(0))
            .map_err(&err)?;
        // One creator at a time: concurrent CREATE ... IF NOT EXISTS can
        // still collide in the catalog.
        client
            .batch_execute(
                "BEGIN;
                 SELECT pg_advisory_xact_lock(hashtextextended('wabill cluster:' || current_schema(), 0));
                 CREATE TABLE IF NOT EXISTS wabill_workers (
                     name text PRIMARY KEY, url text NOT NULL, seen timestamptz NOT NULL);
                 CREATE TABLE IF NOT EXISTS wabill_owners (
                     part integer PRIMARY KEY, worker text NOT NULL, url text NOT NULL,
                     since timestamptz NOT NULL);
                 COMMIT;",
            )
            .map_err(&err)?;
        drop(err);
        // PostgreSQL cuts names at 63 bytes: two partitions' schemas must
        // never become one.
        if schema.len() + "_p4095".len() > 63 {
            return Err(StoreError::SchemaName {
                location: location.to_string(),
                schema,
            });
        }
        Ok(Cluster {
            location,
            url: url.to_owned(),
            client,
            schema,
        })
    }

    /// Says `worker` (reachable at `url`) is alive; forgets workers gone
    /// for an hour. The names of the workers alive, sorted.
    pub fn heartbeat(&mut self, worker: &str, url: &str) -> Result<Vec<String>, StoreError> {
        let err = pg_err(&self.location);
        self.client
            .execute(
                "INSERT INTO wabill_workers (name, url, seen) VALUES ($1, $2, now())
                 ON CONFLICT (name) DO UPDATE SET url = excluded.url, seen = excluded.seen",
                &[&worker, &url],
            )
            .map_err(&err)?;
        self.client
            .execute(
                "DELETE FROM wabill_workers WHERE seen < now() - interval '1 hour'",
                &[],
            )
            .map_err(&err)?;
        let rows = self
            .client
            .query(
                "SELECT name FROM wabill_workers
                 WHERE seen > now() - make_interval(secs => $1) ORDER BY name",
                &[&f64::from(ALIVE_SECS)],
            )
            .map_err(&err)?;
        rows.iter()
            .map(|row| row.try_get(0).map_err(&err))
            .collect()
    }

    /// Records that `worker` at `url` owns `part` from now on.
    pub fn owns(&mut self, part: u32, worker: &str, url: &str) -> Result<(), StoreError> {
        let part = i32::try_from(part).unwrap_or(i32::MAX);
        self.client
            .execute(
                "INSERT INTO wabill_owners (part, worker, url, since) VALUES ($1, $2, $3, now())
                 ON CONFLICT (part) DO UPDATE
                 SET worker = excluded.worker, url = excluded.url,
                     since = CASE WHEN wabill_owners.worker = excluded.worker
                                  THEN wabill_owners.since ELSE excluded.since END",
                &[&part, &worker, &url],
            )
            .map_err(pg_err(&self.location))?;
        Ok(())
    }

    /// Removes `worker`'s heartbeat (it stops).
    pub fn leave(&mut self, worker: &str) -> Result<(), StoreError> {
        self.client
            .execute("DELETE FROM wabill_workers WHERE name = $1", &[&worker])
            .map_err(pg_err(&self.location))?;
        Ok(())
    }

    /// Forgets that `worker` owns `part` (it released it).
    pub fn disowns(&mut self, part: u32, worker: &str) -> Result<(), StoreError> {
        let part = i32::try_from(part).unwrap_or(i32::MAX);
        self.client
            .execute(
                "DELETE FROM wabill_owners WHERE part = $1 AND worker = $2",
                &[&part, &worker],
            )
            .map_err(pg_err(&self.location))?;
        Ok(())
    }

    /// The latest month any partition has published an invoice of
    /// (`YYYY-MM`): the horizon of customers' invoices, as every WABA's
    /// latest month is on one service.
    pub fn latest_month(&mut self) -> Result<Option<String>, StoreError> {
        let err = pg_err(&self.location);
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('wabill_invoices') IS NOT NULL", &[])
            .and_then(|row| row.try_get(0))
            .map_err(&err)?;
        if !exists {
            return Ok(None);
        }
        self.client
            .query_one("SELECT max(month) FROM wabill_invoices", &[])
            .and_then(|row| row.try_get(0))
            .map_err(&err)
    }

    /// The URL of each partition's owner as last recorded, with the
    /// owner's last heartbeat age check: owners not alive are left out.
    pub fn owners(&mut self) -> Result<Vec<(u32, String)>, StoreError> {
        let err = pg_err(&self.location);
        let rows = self
            .client
            .query(
                "SELECT o.part, o.url FROM wabill_owners o JOIN wabill_workers w ON w.name = o.worker
                 WHERE w.seen > now() - make_interval(secs => $1) ORDER BY o.part",
                &[&f64::from(ALIVE_SECS)],
            )
            .map_err(&err)?;
        rows.iter()
            .map(|row| {
                let part: i32 = row.try_get(0).map_err(&err)?;
                Ok((part.max(0) as u32, row.try_get(1).map_err(&err)?))
            })
            .collect()
    }

    /// The schema of partition `part`.
    pub fn partition_schema(&self, part: u32) -> String {
        format!("{}_p{part}", self.schema)
    }

    /// The store of partition `part` (its schema created if missing).
    pub fn partition(&mut self, part: u32) -> Result<Location, StoreError> {
        let schema = self.partition_schema(part);
        self.client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote_ident(&schema)
            ))
            .map_err(pg_err(&self.location))?;
        Ok(Location::Postgres(with_schema(&self.url, &schema)?))
    }
}

impl Cluster {
    /// The views `wabill_invoices`, `wabill_conversation_records` and
    /// `wabill_quarantine` in the cluster's schema: each partition's table
    /// (of the partitions whose store exists) with its number, `part`.
    pub fn refresh_views(&mut self, partitions: u32) -> Result<(), StoreError> {
        let err = pg_err(&self.location);
        let names: Vec<String> = (0..partitions).map(|p| self.partition_schema(p)).collect();
        let rows = self
            .client
            .query(
                "SELECT table_schema::text FROM information_schema.tables
                 WHERE table_name = 'quarantine' AND table_schema = ANY($1)",
                &[&names],
            )
            .map_err(&err)?;
        let present: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        if present.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('wabill cluster:' || current_schema(), 0));",
        );
        for table in ["invoices", "conversation_records", "quarantine"] {
            let parts: Vec<String> = (0..partitions)
                .filter(|p| present.contains(&names[*p as usize]))
                .map(|p| {
                    format!(
                        "SELECT {p} AS part, * FROM {}.{table}",
                        quote_ident(&names[p as usize])
                    )
                })
                .collect();
            sql.push_str(&format!(
                "CREATE OR REPLACE VIEW wabill_{table} AS {};",
                parts.join(" UNION ALL ")
            ));
        }
        sql.push_str("COMMIT;");
        self.client.batch_execute(&sql).map_err(&err)
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `url` with `schema` first on its search_path, after the URL's own
/// `options` (PostgreSQL takes the last `-c` of a setting).
fn with_schema(url: &str, schema: &str) -> Result<String, StoreError> {
    let location = Location::Postgres(url.to_owned());
    let config: postgres::Config = url.parse().map_err(pg_err(&location))?;
    let own = config.get_options().unwrap_or_default();
    // A `-c` value's spaces and backslashes are escaped with a backslash.
    let path = quote_ident(schema)
        .replace('\\', "\\\\")
        .replace(' ', "\\ ");
    let options = format!("{own} -csearch_path={path}");
    let encoded: String = options
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let joiner = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{joiner}options={encoded}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_url_keeps_the_url_s_own_options_and_sets_its_schema_last() {
        let url = with_schema(
            "postgres://u@h/db?options=-cstatement_timeout%3D5s",
            "t 1_p3",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let config: postgres::Config = url.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.get_options(),
            Some(r#"-cstatement_timeout=5s -csearch_path="t\ 1_p3""#)
        );
        let plain = with_schema("postgres://h/db", "s_p0").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plain,
            "postgres://h/db?options=%20-csearch_path%3D%22s_p0%22"
        );
    }
}
