//! The store end to end (issue 19): the service on PostgreSQL as on the
//! embedded store, the published tables, and the operators' commands
//! (`migrate`, `export`, `import`, `backup`) on the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;
use wabill_testkit::TestSchema;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Generated traffic over two months and three WABAs, as NDJSON.
fn traffic(dir: &Path, events: u32) -> std::path::PathBuf {
    let path = dir.join("traffic.ndjson");
    let out = run(&[
        "gen",
        "--events",
        &events.to_string(),
        "--start",
        "2025-06-20",
        "--days",
        "40",
        "--seed",
        "7",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    path
}

/// `wabill serve` on `store` (a URL or a directory), configured by `config`.
fn serve_on(config: &Path, store: &str) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wabill"));
    command
        .arg("--config")
        .arg(config)
        .args(["serve", "--store", store]);
    Server::spawn(command)
}

fn post_file(server: &Server, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(5_000) {
        let reply = post_events(server, TOKEN_ALL, &chunk.join("\n"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.json()["rejected"],
            Value::Array(vec![]),
            "{}",
            reply.body
        );
    }
}

/// The service's invoices, one per (WABA, month) that `invoices` lists.
fn served_invoices(server: &Server, invoices: &Value) -> Vec<Value> {
    invoices
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let path = format!(
                "/v1/invoices/{}/{}",
                i["waba"].as_str().unwrap(),
                i["month"].as_str().unwrap()
            );
            let reply = get(&server.url(&path), Some(TOKEN_ALL));
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            reply.json()
        })
        .collect()
}

fn invoices_of(config: &Path, files: &[&Path], extra: &[&str]) -> Value {
    let mut args = vec!["--config", config.to_str().unwrap(), "invoice"];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Value>(&stdout(&out)).unwrap()["invoices"].clone()
}

/// The invoice of `waba` among `invoices` (one month's).
fn invoice_of<'v>(invoices: &'v Value, waba: &str) -> &'v Value {
    invoices
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["waba"] == waba)
        .unwrap_or_else(|| panic!("no invoice of {waba}: {invoices}"))
}

/// (waba, month, revision, invoice JSON) of the published invoices.
fn published_sqlite(dir: &Path) -> Vec<(String, String, i64, Value)> {
    let c = rusqlite::Connection::open(dir.join("wabill.sqlite")).unwrap();
    let mut stmt = c
        .prepare("SELECT waba, month, revision, invoice FROM invoices ORDER BY waba, month")
        .unwrap();
    stmt.query_map([], |r| {
        let text: String = r.get(3)?;
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            serde_json::from_str(&text).unwrap(),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn published_postgres(url: &str) -> Vec<(String, String, i64, Value)> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query(
        "SELECT waba, month, revision::bigint, invoice::text FROM invoices ORDER BY waba, month",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| {
        let text: String = r.get(3);
        (
            r.get(0),
            r.get(1),
            r.get(2),
            serde_json::from_str(&text).unwrap(),
        )
    })
    .collect()
}

#[test]
fn the_service_on_postgresql_bills_as_on_the_embedded_store_and_publishes_its_invoices() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let input = traffic(dir.path(), 3_000);
    let pg = TestSchema::new();
    let data = dir.path().join("data");
    let embedded = serve_on(&config, data.to_str().unwrap());
    let postgres = serve_on(&config, &pg.url);
    post_file(&embedded, &input);
    post_file(&postgres, &input);
    let expected = invoices_of(&config, &[&input], &[]);
    assert!(expected.as_array().unwrap().len() >= 4, "{expected}");
    let from_embedded = served_invoices(&embedded, &expected);
    let from_postgres = served_invoices(&postgres, &expected);
    assert_eq!(from_postgres, from_embedded);
    // Stopping publishes what the last requests billed.
    assert_eq!(embedded.stop(), 0);
    assert_eq!(postgres.stop(), 0);
    let tables = |rows: Vec<(String, String, i64, Value)>| -> Vec<Value> {
        assert!(rows.iter().all(|r| r.2 == 1), "one revision each");
        rows.into_iter().map(|r| r.3).collect()
    };
    assert_eq!(tables(published_postgres(&pg.url)), from_embedded);
    assert_eq!(tables(published_sqlite(&data)), from_embedded);
    // The records: one row per conversation, as the CLI lists them.
    let records = run(&[
        "--config",
        config.to_str().unwrap(),
        "conversations",
        "--format",
        "ndjson",
        input.to_str().unwrap(),
    ]);
    let listed = stdout(&records).lines().count() as i64;
    let mut c = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    let rows: i64 = c
        .query_one("SELECT count(*) FROM conversation_records", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, listed);
    // Restarted, the PostgreSQL service rebuilds the same bills from its
    // log, and publishing again changes no revision.
    let again = serve_on(&config, &pg.url);
    assert_eq!(served_invoices(&again, &expected), from_embedded);
    assert_eq!(again.stop(), 0);
    assert!(published_postgres(&pg.url).iter().all(|r| r.2 == 1));
}

#[test]
fn a_month_billed_again_after_it_was_published_gets_a_new_revision() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let data = dir.path().join("data");
    let server = serve_on(&config, data.to_str().unwrap());
    let user = "5511999990001";
    let first = [
        ev("inbound", "in1", "W1", user, "2026-03-02T10:00:00Z", ""),
        ev("outbound", "out1", "W1", user, "2026-03-02T10:01:00Z", ""),
        ev(
            "status",
            "out1",
            "W1",
            user,
            "2026-03-02T10:01:05Z",
            r#","status":"delivered""#,
        ),
    ];
    assert_eq!(
        post_events(&server, TOKEN_ALL, &first.join("\n")).status,
        200
    );
    let before = get(&server.url("/v1/invoices/W1/2026-03"), Some(TOKEN_ALL)).json();
    assert_eq!(server.stop(), 0);
    let published = published_sqlite(&data);
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].2, &published[0].3), (1, &before));
    // A late marketing template of the same month: the month is billed
    // again and its published invoice replaced.
    let server = serve_on(&config, data.to_str().unwrap());
    let late = [
        ev(
            "outbound",
            "out2",
            "W1",
            user,
            "2026-03-20T10:00:00Z",
            r#","template":{"category":"marketing"}"#,
        ),
        ev(
            "status",
            "out2",
            "W1",
            user,
            "2026-03-20T10:00:05Z",
            r#","status":"delivered""#,
        ),
    ];
    assert_eq!(
        post_events(&server, TOKEN_ALL, &late.join("\n")).status,
        200
    );
    let served = get(&server.url("/v1/invoices/W1/2026-03"), Some(TOKEN_ALL)).json();
    assert_eq!(server.stop(), 0);
    assert_ne!(served, before);
    let published = published_sqlite(&data);
    assert_eq!(published[0].2, 2, "revision");
    assert_eq!(published[0].3, served);
}

const MOVED_PHONE: &str = r#"
[[phone]]
id = "P1"
carriers = [{ provider = "360dialog", waba = "W1" }]
"#;

#[test]
fn export_writes_what_invoice_reads_back_to_the_same_invoices_whole_by_waba_and_by_month() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), MOVED_PHONE);
    let input = traffic(dir.path(), 4_000);
    let data = dir.path().join("data");
    let server = serve_on(&config, data.to_str().unwrap());
    post_file(&server, &input);
    // Phone P1 is 360dialog's: an event through Zendesk's route is billed
    // and counted (rules P6); the export must say where it came from.
    let body = r#"{"app":{"id":"a"},"webhook":{"id":"w","version":"v2"},"events":[{"id":"e1","createdAt":"2025-07-02T10:00:00.000Z","type":"conversation:message","payload":{"conversation":{"id":"c1","type":"personal"},"message":{"id":"zd-m1","received":"2025-07-02T10:00:00.000Z","author":{"userId":"5963c0d619a30a2e00de36b8","type":"user"},"content":{"type":"text","text":"hi"},"source":{"type":"whatsapp"}}}}]}"#;
    let reply = post(
        &server.url("/webhooks/zendesk/zd"),
        &[("X-API-Key", ZENDESK_SECRET)],
        body,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let user = "16505551234";
    let answer = [
        ev(
            "outbound",
            "zd-out1",
            "W1",
            user,
            "2025-07-02T10:05:00Z",
            "",
        ),
        ev(
            "status",
            "zd-out1",
            "W1",
            user,
            "2025-07-02T10:05:05Z",
            r#","status":"delivered""#,
        ),
    ];
    assert_eq!(
        post_events(&server, TOKEN_ALL, &answer.join("\n")).status,
        200
    );
    // Rules F9: a number and a business-scoped id, each sent a utility
    // template in June, are one user by a link that comes in August: one
    // conversation, which a June export must still show.
    let (number, bsuid) = ("5511988887777", "BR.1502576394655843");
    let utility = r#","template":{"category":"utility"}"#;
    let delivered = r#","status":"delivered""#;
    let link = format!(r#","user_id":"{bsuid}""#);
    let linked = [
        ev(
            "outbound",
            "u1",
            "W9",
            number,
            "2025-06-10T10:00:00Z",
            utility,
        ),
        ev(
            "status",
            "u1",
            "W9",
            number,
            "2025-06-10T10:00:05Z",
            delivered,
        ),
        ev(
            "outbound",
            "u2",
            "W9",
            bsuid,
            "2025-06-10T12:00:00Z",
            utility,
        ),
        ev(
            "status",
            "u2",
            "W9",
            bsuid,
            "2025-06-10T12:00:05Z",
            delivered,
        ),
        ev(
            "inbound",
            "in-aug",
            "W9",
            number,
            "2025-08-01T09:00:00Z",
            &link,
        ),
        // A template sent in July to a number and delivered in August, its
        // status naming the user's business-scoped id only.
        ev(
            "outbound",
            "t1",
            "W8",
            "5511977776666",
            "2025-07-29T10:00:00Z",
            utility,
        ),
        ev(
            "status",
            "t1",
            "W8",
            "BR.88887777",
            "2025-08-05T10:00:00Z",
            delivered,
        ),
    ];
    let reply = post_events(&server, TOKEN_ALL, &linked.join("\n"));
    assert_eq!(reply.json()["accepted"], 7, "{}", reply.body);
    // Read beside the running service.
    let export = |name: &str, extra: &[&str]| {
        let path = dir.path().join(name);
        let mut args = vec![
            "--config",
            config.to_str().unwrap(),
            "export",
            "--store",
            data.to_str().unwrap(),
            "-o",
            path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        path
    };
    let all = export("all.ndjson", &[]);
    let text = std::fs::read_to_string(&all).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with(r#"{"provider":"zendesk","#))
            .count(),
        1
    );
    let invoices = invoices_of(&config, &[&all], &[]);
    let w1_july = invoices
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["waba"] == "W1" && i["month"] == "2025-07")
        .unwrap();
    assert_eq!(w1_july["off_period_events"], 1, "{w1_july}");
    assert_eq!(
        served_invoices(&server, &invoices),
        invoices.as_array().unwrap().clone()
    );
    // By WABA and by month: the selected invoices are the same.
    let wabas: std::collections::BTreeSet<&str> = invoices
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["waba"].as_str().unwrap())
        .collect();
    // The selection's invoices, checked equal to the whole export's.
    let selected = |name: &str, flag: &str, value: &str| {
        let file = export(name, &[flag, value]);
        let invoices = invoices_of(&config, &[&file], &[flag, value]);
        assert_eq!(invoices, invoices_of(&config, &[&all], &[flag, value]));
        (file, invoices)
    };
    let waba = wabas.iter().next().unwrap();
    selected("waba.ndjson", "--waba", waba);
    let (_, june) = selected("june.ndjson", "--month", "2025-06");
    let w9 = invoice_of(&june, "W9");
    assert_eq!(w9["conversations"]["total"], 1, "{w9}");
    let (_, august) = selected("august.ndjson", "--month", "2025-08");
    let w8 = invoice_of(&august, "W8");
    assert_eq!(w8["messages"]["paid"], 1, "{w8}");
    let (by_month, _) = selected("month.ndjson", "--month", "2025-07");
    let month_lines = std::fs::read_to_string(&by_month).unwrap().lines().count();
    assert!(month_lines < text.lines().count(), "{month_lines}");
    let served = served_invoices(&server, &invoices);
    assert_eq!(server.stop(), 0);
    // Published on stop as served, the off-period count included.
    let published: Vec<Value> = published_sqlite(&data).into_iter().map(|r| r.3).collect();
    assert_eq!(published, served);
    // An export never overwrites a file.
    let out = run(&[
        "export",
        "--store",
        data.to_str().unwrap(),
        "-o",
        all.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn import_loads_a_file_once_and_the_service_bills_it_on_either_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let input = traffic(dir.path(), 2_000);
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"type\":\"inbound\"}\nnot json\n").unwrap();
    let expected = invoices_of(&config, &[&input], &[]);
    let pg = TestSchema::new();
    let data = dir.path().join("data");
    for store in [data.to_str().unwrap(), pg.url.as_str()] {
        let import = |file: &Path| {
            run(&[
                "--config",
                config.to_str().unwrap(),
                "import",
                "--store",
                store,
                file.to_str().unwrap(),
            ])
        };
        let first = import(&input);
        assert!(first.status.success(), "{}", stderr(&first));
        assert!(
            stderr(&first).contains(" 0 lines rejected"),
            "{}",
            stderr(&first)
        );
        let again = import(&input);
        assert!(
            stderr(&again).contains(": 0 new events, 2000 duplicates"),
            "{}",
            stderr(&again)
        );
        let refused = import(&bad);
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            stderr(&refused).contains("bad.ndjson:2:"),
            "{}",
            stderr(&refused)
        );
        let server = serve_on(&config, store);
        assert_eq!(
            served_invoices(&server, &expected),
            expected.as_array().unwrap().clone(),
            "{store}"
        );
        // The service holds its store: no import meanwhile.
        let busy = import(&input);
        // 2 on the embedded store; 75 on PostgreSQL (try again later).
        let expected_code = if store.starts_with("postgres://") {
            75
        } else {
            2
        };
        assert_eq!(busy.status.code(), Some(expected_code));
        assert!(
            stderr(&busy).contains("in use by another process"),
            "{}",
            stderr(&busy)
        );
        assert_eq!(server.stop(), 0);
    }
}

#[test]
fn backup_copies_the_embedded_store_while_the_service_writes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let input = traffic(dir.path(), 2_000);
    let data = dir.path().join("data");
    let server = serve_on(&config, data.to_str().unwrap());
    post_file(&server, &input);
    let copy = dir.path().join("copy.sqlite");
    let out = run(&[
        "backup",
        "--store",
        data.to_str().unwrap(),
        "--to",
        copy.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The service goes on taking webhooks.
    let body = cloud_body("W1", "wamid.after", 1_750_000_000);
    let ok = post(
        &server.url("/webhooks/meta"),
        &[("X-Hub-Signature-256", &sign(&body))],
        &body,
    );
    assert_eq!(ok.status, 200);
    let again = run(&[
        "backup",
        "--store",
        data.to_str().unwrap(),
        "--to",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("never overwrites"),
        "{}",
        stderr(&again)
    );
    assert_eq!(server.stop(), 0);
    // The copy is a store: a service started on it bills the traffic.
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    std::fs::rename(&copy, restored.join("wabill.sqlite")).unwrap();
    let expected = invoices_of(&config, &[&input], &[]);
    let server = serve_on(&config, restored.to_str().unwrap());
    assert_eq!(
        served_invoices(&server, &expected),
        expected.as_array().unwrap().clone()
    );
    assert_eq!(server.stop(), 0);
    // A name SQLite could read as a URI is a file's name all the same.
    let odd = "file:copy.sqlite?mode=memory";
    let out = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .current_dir(dir.path())
        .args(["backup", "--store", restored.to_str().unwrap(), "--to", odd])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::metadata(dir.path().join(odd)).unwrap().len() > 4096);
    let pg = run(&[
        "backup",
        "--store",
        "postgres://x@127.0.0.1/none",
        "--to",
        "f",
    ]);
    assert!(stderr(&pg).contains("pg_dump"), "{}", stderr(&pg));
}

#[test]
fn migrate_applies_the_schema_once_on_either_store() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestSchema::new();
    let data = dir.path().join("data");
    for store in [data.to_str().unwrap(), pg.url.as_str()] {
        let first = run(&["migrate", "--store", store]);
        assert!(first.status.success(), "{}", stderr(&first));
        let latest = wabill_store::MIGRATIONS.len();
        assert_eq!(
            stdout(&first)
                .lines()
                .filter(|l| l.starts_with("applied "))
                .count(),
            latest
        );
        assert!(
            stdout(&first).starts_with("applied 0001 log_and_quarantine\n"),
            "{}",
            stdout(&first)
        );
        let again = run(&["migrate", "--store", store]);
        assert!(
            stdout(&again).ends_with(&format!("schema version {latest}\n")),
            "{}",
            stdout(&again)
        );
        assert!(!stdout(&again).contains("applied"), "{}", stdout(&again));
    }
    // The password of a URL is never printed.
    let refused = run(&[
        "migrate",
        "--store",
        "postgres://wabill:hunter2@127.0.0.1:1/none",
    ]);
    // Unreachable: try again later (a supervisor restarts on 75).
    assert_eq!(refused.status.code(), Some(75), "{}", stderr(&refused));
    assert!(
        !stderr(&refused).contains("hunter2"),
        "{}",
        stderr(&refused)
    );
    // A second writer on a store in use is refused, as on the embedded one.
    let store = wabill_store::open(&wabill_store::Location::Postgres(pg.url.clone())).unwrap();
    let busy = run(&["migrate", "--store", &pg.url]);
    // PostgreSQL: try again later (the holder may be a session of a
    // process that is gone, which PostgreSQL ends within a minute).
    assert_eq!(busy.status.code(), Some(75));
    assert!(
        stderr(&busy).contains("in use by another process"),
        "{}",
        stderr(&busy)
    );
    drop(store);
}

#[test]
fn a_service_whose_postgresql_goes_away_stops_with_75_and_bills_the_same_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let pg = TestSchema::new();
    let server = serve_on(&config, &pg.url);
    let user = "5511999990001";
    let first = [
        ev("inbound", "in1", "W1", user, "2026-03-02T10:00:00Z", ""),
        ev("outbound", "out1", "W1", user, "2026-03-02T10:01:00Z", ""),
    ];
    assert_eq!(
        post_events(&server, TOKEN_ALL, &first.join("\n")).status,
        200
    );
    // PostgreSQL ends the service's session (a restart, a cut network).
    let mut admin = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'
               AND objid::bigint = (hashtextextended('wabill owner:' || current_schema(), 0) & 4294967295)",
            &[],
        )
        .unwrap();
    let late = ev(
        "status",
        "out1",
        "W1",
        user,
        "2026-03-02T10:01:05Z",
        r#","status":"delivered""#,
    );
    let refused = agent()
        .post(&server.url("/v1/events"))
        .header("Authorization", &format!("Bearer {TOKEN_ALL}"))
        .send(late.as_str());
    // The request is not acknowledged (an error, or the connection closed
    // as the process ends) ...
    assert!(refused.map_or(true, |r| r.status().as_u16() >= 500));
    // ... and the service ends with 75: a supervisor starts it again.
    let mut server = server;
    let mut status = None;
    for _ in 0..200 {
        status = server.child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(75),
        "still running after 20 s"
    );
    // Started again, it replays the log; the retry is then taken.
    let server = serve_on(&config, &pg.url);
    let reply = post_events(&server, TOKEN_ALL, &late);
    assert_eq!(reply.json()["accepted"], 1, "{}", reply.body);
    let window = get(
        &server.url("/v1/window?waba=W1&phone=P1&user=5511999990001&at=2026-03-02T11:00:00Z"),
        Some(TOKEN_ALL),
    );
    assert_eq!(window.status, 200, "{}", window.body);
    assert_eq!(server.stop(), 0);
}
