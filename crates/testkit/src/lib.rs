//! For tests of several crates: a PostgreSQL schema of their own
//! on the machine's server (127.0.0.1:5432, database `test`), started if
//! it is down (the command the machine's notes give), dropped afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use postgres::{Client, NoTls};

const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema; its URL selects it. Dropped with everything in it.
pub struct TestSchema {
    pub url: String,
    pub schema: String,
}

fn connect() -> Result<Client, String> {
    Client::connect(SERVER, NoTls).map_err(|e| e.to_string())
}

/// Starts the machine's PostgreSQL when it does not answer.
fn ensure_running() -> Result<Client, String> {
    if let Ok(c) = connect() {
        return Ok(c);
    }
    let versions = std::fs::read_dir("/etc/postgresql").map_err(|e| e.to_string())?;
    for v in versions.flatten() {
        let _ = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect"])
            .arg(v.file_name())
            .args(["main", "start"])
            .status();
    }
    let mut last = String::new();
    for _ in 0..50 {
        match connect() {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err(last)
}

impl TestSchema {
    /// Panics with the reason when no PostgreSQL can be had: a test that
    /// needs one fails rather than passes without it.
    pub fn new() -> TestSchema {
        static N: AtomicU32 = AtomicU32::new(0);
        let mut client = ensure_running()
            .unwrap_or_else(|e| panic!("PostgreSQL at {SERVER} is down and did not start: {e}"));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!(
            "wabill_test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("cannot create schema {schema}: {e}"));
        TestSchema {
            url: format!("{SERVER}?options=-csearch_path%3D{schema}"),
            schema,
        }
    }
}

impl Default for TestSchema {
    fn default() -> Self {
        TestSchema::new()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut c) = connect() {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
            // A cluster's partitions live in schemas named after it.
            let partitions = c
                .query(
                    "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)",
                    &[&format!("{}_p", self.schema)],
                )
                .unwrap_or_default();
            for row in partitions {
                let name: String = row.get(0);
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"));
            }
        }
    }
}

/// The machine's NATS server (127.0.0.1:4222, JetStream), started with the
/// command of the machine's notes when it does not answer.
pub fn nats_running() -> Result<(), String> {
    let up = || std::net::TcpStream::connect("127.0.0.1:4222").is_ok();
    if up() {
        return Ok(());
    }
    let _ = std::process::Command::new("start-stop-daemon")
        .args(["--start", "--oknodo", "--background", "--exec"])
        .args([
            "/usr/sbin/nats-server",
            "--",
            "-a",
            "127.0.0.1",
            "-p",
            "4222",
        ])
        .args([
            "-js",
            "-sd",
            "/var/lib/nats-server",
            "-l",
            "/var/log/nats-server.log",
        ])
        .status();
    for _ in 0..50 {
        if up() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Err("NATS at 127.0.0.1:4222 is down and did not start".into())
}
