//! End-to-end tests of `wabill serve`: the real binary on a free loopback
//! port, real HTTP, a real event log on disk, SIGKILL and restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

#[test]
fn signed_webhooks_are_stored_and_unsigned_or_mis_signed_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let url = server.url("/webhooks/meta");
    let good = cloud_body("W1", "wamid.good", 1_750_000_000);
    let ok = post(&url, &[("X-Hub-Signature-256", &sign(&good))], &good);
    assert_eq!((ok.status, ok.json()["accepted"].as_u64()), (200, Some(1)));

    let unsigned = cloud_body("W1", "wamid.unsigned", 1_750_000_000);
    assert_eq!(post(&url, &[], &unsigned).status, 401);
    // Signed, then altered: the signature covers the exact bytes.
    let signature = sign(&unsigned);
    let altered = unsigned.replace("hi", "ho");
    let refused = post(&url, &[("X-Hub-Signature-256", &signature)], &altered);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["error"]["code"], "bad_signature");
    let other_key = format!("sha256={}", "00".repeat(32));
    assert_eq!(
        post(&url, &[("X-Hub-Signature-256", &other_key)], &unsigned).status,
        401
    );

    // Only the signed message is in the pair's window.
    let window = get(
        &server.url("/v1/window?waba=W1&phone=P1&user=5511999990001&at=1750000100"),
        Some(TOKEN_ALL),
    );
    assert_eq!(window.status, 200);
    assert_eq!(window.json()["csw_expires_at"], "2025-06-16T15:06:40Z");
    let metrics = get(&server.url("/metrics"), None).body;
    assert!(
        metrics.contains(r#"wabill_events_total{source="meta",outcome="accepted"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"wabill_events_total{source="meta",outcome="rejected"} 3"#),
        "{metrics}"
    );
}

/// Issue 17 point 3: replay is all or nothing. Restarted with an era
/// timeline that no longer covers what it logged, the service refuses to
/// start, says how many events and which setting, and prints no user's
/// number; with the configuration back, it bills them again.
#[test]
fn a_configuration_that_refuses_logged_events_stops_the_service_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    for id in ["wamid.r1", "wamid.r2"] {
        let body = cloud_body("W1", id, 1_750_000_000);
        let ok = post(
            &server.url("/webhooks/meta"),
            &[("X-Hub-Signature-256", &sign(&body))],
            &body,
        );
        assert_eq!(ok.status, 200);
    }
    assert_eq!(server.stop(), 0);

    let later = "[eras]\ntimeline = [{ era = \"pmp-2026\", from = \"2026-10-01\" }]\n";
    let changed = write_config(dir.path(), later);
    let out = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .arg("--config")
        .arg(&changed)
        .arg("serve")
        .env("WABILL_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "it listened: {out:?}");
    assert!(
        stderr.contains("2 of the 2 logged events are refused"),
        "{stderr}"
    );
    assert!(stderr.contains("[eras]"), "{stderr}");
    assert!(!stderr.contains("5511999990001"), "{stderr}");

    let again = Server::start(&write_config(dir.path(), ""));
    let window = get(
        &again.url("/v1/window?waba=W1&phone=P1&user=5511999990001&at=1750000100"),
        Some(TOKEN_ALL),
    );
    assert_eq!(window.json()["csw_open"], true);
}

/// Issue 17 point 6: at the default log level the service's own log names
/// no user's number, whatever the requests carried (accepted, refused or
/// quarantined).
#[test]
fn the_default_log_names_no_user_number() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let log_path = dir.path().join("stderr.log");
    let server = Server::start_logging(&config, &log_path);
    let webhook = server.url("/webhooks/meta");
    let good = cloud_body("W1", "wamid.log", 1_750_000_000);
    assert_eq!(
        post(&webhook, &[("X-Hub-Signature-256", &sign(&good))], &good).status,
        200
    );
    let held = good.replace("5511999990001", "999123456789");
    let held = held.replace("wamid.log", "wamid.held");
    let answer = post(&webhook, &[("X-Hub-Signature-256", &sign(&held))], &held);
    assert_eq!(
        answer.json()["quarantined"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(post(&webhook, &[], &good).status, 401);
    for query in [
        "/v1/window?waba=W1&phone=P1&user=5511999990001",
        "/v1/quote?waba=W1&phone=P1&user=5511999990001&kind=nonsense",
        "/v1/window?waba=W9&phone=P1&user=5511999990001",
    ] {
        get(&server.url(query), Some(TOKEN_W1));
    }
    assert_eq!(server.stop(), 0);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("request refused"), "{log}");
    for number in ["5511999990001", "999123456789"] {
        assert!(!log.contains(number), "{number} in the log: {log}");
    }
}

/// Issue 17 point 6: the log holds users' numbers, so the data directory
/// and every file the service writes in it are the owner's alone.
#[test]
fn the_data_directory_and_its_files_are_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let body = cloud_body("W1", "wamid.private", 1_750_000_000);
    let ok = post(
        &server.url("/webhooks/meta"),
        &[("X-Hub-Signature-256", &sign(&body))],
        &body,
    );
    assert_eq!(ok.status, 200);
    let data = dir.path().join("data");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    let files: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty());
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

/// Issue 17 point 7: an empty signed body is refused, a body of empty lists
/// accepted, and `user` is checked alike by every endpoint that takes it.
#[test]
fn an_empty_body_is_refused_and_every_endpoint_checks_user_alike() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let url = server.url("/webhooks/meta");
    for empty in ["", " \n"] {
        let refused = post(&url, &[("X-Hub-Signature-256", &sign(empty))], empty);
        assert_eq!(refused.status, 400, "{empty:?}");
        assert_eq!(refused.json()["error"]["code"], "bad_body");
    }
    let no_items = r#"{"object":"whatsapp_business_account","entry":[]}"#;
    let accepted = post(&url, &[("X-Hub-Signature-256", &sign(no_items))], no_items);
    assert_eq!(
        (accepted.status, accepted.json()["accepted"].as_u64()),
        (200, Some(0))
    );

    for query in [
        "/v1/window?waba=W1&phone=P1&user=abc",
        "/v1/quote?waba=W1&phone=P1&user=abc&kind=freeform",
        "/v1/conversations?waba=W1&month=2025-06&user=abc",
    ] {
        let answer = get(&server.url(query), Some(TOKEN_ALL));
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(answer.json()["error"]["code"], "bad_query", "{query}");
    }
    for query in [
        "/v1/window?waba=W1&phone=P1&user=%2B5511999990001",
        "/v1/window?waba=W1&phone=P1&user=BR.1502576394655843",
        "/v1/conversations?waba=W1&month=2025-06&user=5511999990001",
    ] {
        assert_eq!(
            get(&server.url(query), Some(TOKEN_ALL)).status,
            200,
            "{query}"
        );
    }
}

#[test]
fn meta_verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let ok = get(
        &server.url(
            "/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444",
        ),
        None,
    );
    assert_eq!((ok.status, ok.body.as_str()), (200, "1158201444"));
    let wrong = get(
        &server.url("/webhooks/meta?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"),
        None,
    );
    assert_eq!(wrong.status, 403);
}

#[test]
fn malformed_oversized_and_unauthenticated_bodies_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let url = server.url("/webhooks/meta");
    // No readable envelope: `entry` is no array of entries.
    let broken = r#"{"object":"whatsapp_business_account","entry":{"id":"W1","changes":[]}}"#;
    let bad = post(&url, &[("X-Hub-Signature-256", &sign(broken))], broken);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.json()["error"]["code"], "bad_body");
    // The reason names where in the body the problem is.
    assert_eq!(
        bad.json()["error"]["message"],
        "entry: must be an array",
        "{}",
        bad.body
    );

    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000));
    let too_large = post(&url, &[("X-Hub-Signature-256", &sign(&huge))], &huge);
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.json()["error"]["code"], "body_too_large");
    // Both refused bodies count as rejected, the oversized one too.
    assert_eq!(
        metric(
            &server,
            r#"wabill_events_total{source="meta",outcome="rejected"}"#
        ),
        2
    );
    // Errors are JSON everywhere, unknown paths and methods included.
    let unknown = get(&server.url("/v1/nothing"), Some(TOKEN_ALL));
    assert_eq!(
        (unknown.status, unknown.json()["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let wrong_method = post(&server.url("/healthz"), &[], "");
    assert_eq!(
        (
            wrong_method.status,
            wrong_method.json()["error"]["code"].as_str()
        ),
        (405, Some("method_not_allowed"))
    );

    let onprem = r#"{"contacts":[{"wa_id":"5511999990001"}],"messages":[{"from":"5511999990001","id":"wamid.d1","timestamp":"1750000000","type":"text"}]}"#;
    let dialog = server.url("/webhooks/360dialog/acme");
    assert_eq!(
        post(&dialog, &[("D360-Secret", "wrong")], onprem).status,
        401
    );
    assert_eq!(post(&dialog, &[], onprem).status, 401);
    assert_eq!(
        post(
            &server.url("/webhooks/360dialog/nope"),
            &[("D360-Secret", DIALOG_SECRET)],
            onprem
        )
        .status,
        404
    );
    // Nothing stored so far: the pair has no window.
    let window = get(
        &server.url("/v1/window?waba=W1&phone=P1&user=5511999990001&at=1750000100"),
        Some(TOKEN_ALL),
    );
    assert_eq!(window.json()["csw_open"], false);
    // The route supplies WABA and phone to On-Premises bodies.
    let stored = post(&dialog, &[("D360-Secret", DIALOG_SECRET)], onprem);
    assert_eq!(
        (stored.status, stored.json()["accepted"].as_u64()),
        (200, Some(1))
    );
    let window = get(
        &server.url("/v1/window?waba=W1&phone=P1&user=5511999990001&at=1750000100"),
        Some(TOKEN_ALL),
    );
    assert_eq!(window.json()["csw_open"], true);
    assert_eq!(window.json()["freeform_allowed"], true);
}

#[test]
fn a_key_for_one_waba_gets_403_on_every_endpoint_for_another() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let w2 = r#"{"type":"inbound","id":"wamid.w2","waba":"W2","phone":"P1","user":"5511999990001","ts":"2025-06-15T10:00:00Z"}"#;
    assert_eq!(post_events(&server, TOKEN_W1, w2).status, 403);
    assert_eq!(post_events(&server, "not-a-token", w2).status, 401);
    assert_eq!(post_events(&server, TOKEN_ALL, w2).status, 200);
    for path in [
        "/v1/window?waba=W2&phone=P1&user=5511999990001",
        "/v1/quote?waba=W2&phone=P1&user=5511999990001&kind=freeform",
        "/v1/invoices/W2/2025-06",
        "/v1/conversations?waba=W2&month=2025-06",
        "/v1/reconciliation/W2/2025-06",
    ] {
        let denied = get(&server.url(path), Some(TOKEN_W1));
        assert_eq!(denied.status, 403, "{path}: {}", denied.body);
        assert_eq!(denied.json()["error"]["code"], "forbidden");
        assert_eq!(get(&server.url(path), None).status, 401, "{path}");
        assert_ne!(
            get(&server.url(path), Some(TOKEN_ALL)).status,
            403,
            "{path}"
        );
    }
}

#[test]
fn post_events_reports_each_rejected_item_and_refuses_over_ten_thousand() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config_with_limit(dir.path(), "", 4 << 20));
    let body = [
        r#"{"type":"inbound","id":"wamid.a","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-06-15T10:00:00Z"}"#,
        r#"{"type":"inbound","id":"wamid.b","waba":"W1","phone":"P1","user":"not digits","ts":"2025-06-15T10:00:00Z"}"#,
        r#"{"type":"inbound","id":"wamid.a","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-06-15T10:00:00Z"}"#,
    ]
    .join("\n");
    let reply = post_events(&server, TOKEN_W1, &body).json();
    assert_eq!(reply["accepted"], 1);
    assert_eq!(reply["duplicates"], 1);
    assert_eq!(reply["rejected"][0]["index"], 1);
    assert!(
        reply["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("user")
    );
    // The same as a JSON array.
    let array = r#"[{"type":"inbound","id":"wamid.c","waba":"W1","phone":"P1","user":"5511999990001","ts":1750000000}]"#;
    let auth = format!("Bearer {TOKEN_W1}");
    let reply = post(
        &server.url("/v1/events"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        array,
    );
    assert_eq!(reply.json()["accepted"], 1);
    let many: String = (0..10_001)
        .map(|i| format!("{{\"type\":\"inbound\",\"id\":\"m{i}\",\"waba\":\"W1\",\"phone\":\"P\",\"user\":\"1\",\"ts\":1}}\n"))
        .collect();
    let refused = post_events(&server, TOKEN_W1, &many);
    assert_eq!(refused.status, 413);
    assert_eq!(refused.json()["error"]["code"], "too_many_events");
}

#[test]
fn quote_and_window_follow_the_customer_service_window() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let user_writes = r#"{"type":"inbound","id":"wamid.in","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-06-15T10:00:00Z"}"#;
    assert_eq!(post_events(&server, TOKEN_W1, user_writes).status, 200);
    let quote = |at: &str, kind: &str| {
        get(
            &server.url(&format!(
                "/v1/quote?waba=W1&phone=P1&user=5511999990001&at={at}&{kind}"
            )),
            Some(TOKEN_W1),
        )
        .json()
    };
    let inside = quote("2025-06-15T12:00:00Z", "kind=freeform");
    assert_eq!(inside["allowed"], true);
    assert_eq!(inside["era"], "cbp-2023");
    assert_eq!(inside["category"], "service");
    assert_eq!(inside["free"], "free_customer_service");
    assert_eq!(inside["market"], "Brazil");
    assert_eq!(inside["meta_price"], "0");
    // A day later the window is closed: free-form is not allowed, and a
    // marketing template opens a paid conversation at the Brazil rate.
    let after = quote("2025-06-16T12:00:00Z", "kind=freeform");
    assert_eq!(after["allowed"], false);
    let template = quote("2025-06-16T12:00:00Z", "kind=template&category=marketing");
    assert_eq!(template["allowed"], true);
    assert_eq!(template["opens_conversation"], true);
    assert_eq!(template["category"], "marketing");
    assert_eq!(template["meta_price"], "0.0625");
    assert_eq!(template["free_tier_left"], 1000);
    // Under per-message pricing every delivered template is priced.
    let pmp = quote("2025-07-16T12:00:00Z", "kind=template&category=marketing");
    assert_eq!(pmp["era"], "pmp-2025");
    let window = get(
        &server.url("/v1/window?waba=W1&phone=P1&user=5511999990001&at=2025-06-16T12:00:00Z"),
        Some(TOKEN_W1),
    )
    .json();
    assert_eq!(window["csw_open"], false);
    assert_eq!(window["template_required"], true);
}

/// Sends `bodies` on `threads` threads; returns which were acknowledged
/// (2xx) before the server went away.
fn send_all(base: &str, bodies: &[String], threads: usize, stop_after: Option<usize>) -> Vec<bool> {
    let next = Arc::new(AtomicUsize::new(0));
    let acked: Arc<Vec<std::sync::atomic::AtomicBool>> = Arc::new(
        bodies
            .iter()
            .map(|_| std::sync::atomic::AtomicBool::new(false))
            .collect(),
    );
    std::thread::scope(|s| {
        for _ in 0..threads {
            let next = Arc::clone(&next);
            let acked = Arc::clone(&acked);
            s.spawn(move || {
                let agent = agent();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= bodies.len() || stop_after.is_some_and(|n| i >= n) {
                        break;
                    }
                    let body = &bodies[i];
                    // Cloud API bodies come as webhooks; what the platform
                    // sends (outbound records) through the platform API.
                    let sent = if body.starts_with("{\"object\"") {
                        agent
                            .post(&format!("{base}/webhooks/meta"))
                            .header("X-Hub-Signature-256", &sign(body))
                            .send(body.as_str())
                    } else {
                        agent
                            .post(&format!("{base}/v1/events"))
                            .header("Authorization", &format!("Bearer {TOKEN_ALL}"))
                            .send(body.as_str())
                    };
                    match sent {
                        Ok(r) if r.status().is_success() => acked[i].store(true, Ordering::SeqCst),
                        Ok(r) => panic!("body {i}: status {}", r.status()),
                        Err(_) => break,
                    }
                }
            });
        }
    });
    acked.iter().map(|a| a.load(Ordering::SeqCst)).collect()
}

/// The value of one series (name and labels as printed) in `/metrics`.
fn metric(server: &Server, series: &str) -> u64 {
    let metrics = get(&server.url("/metrics"), None).body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {metrics}"))
}

/// Rows of the event log, read beside the service (the store's file also
/// grows by the published tables, store.md).
fn log_rows(data_dir: &Path) -> i64 {
    let c = rusqlite::Connection::open_with_flags(
        data_dir.join("wabill.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.query_row("SELECT count(*) FROM log", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let body = cloud_body("W1", "wamid.first", 1_750_000_000);
    let ok = post(
        &server.url("/webhooks/meta"),
        &[("X-Hub-Signature-256", &sign(&body))],
        &body,
    );
    assert_eq!(ok.status, 200);
    let second = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    // The first one still takes webhooks.
    let body = cloud_body("W1", "wamid.second", 1_750_000_100);
    let ok = post(
        &server.url("/webhooks/meta"),
        &[("X-Hub-Signature-256", &sign(&body))],
        &body,
    );
    assert_eq!((ok.status, ok.json()["accepted"].as_u64()), (200, Some(1)));
    assert_eq!(server.stop(), 0);
}

#[test]
fn sigkill_loses_no_acknowledged_event_and_the_invoice_equals_the_batch_cli() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("traffic.cloud");
    wabill(&[
        "gen",
        "--events",
        "6000",
        "--seed",
        "7",
        "--format",
        "cloud",
        "-o",
        traffic.to_str().unwrap(),
    ]);
    let bodies: Vec<String> = std::fs::read_to_string(&traffic)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(bodies.len() > 2000, "{}", bodies.len());
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let base = server.base.clone();
    // Kill the server with SIGKILL while four senders stream webhooks.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(700));
        server.kill();
    });
    let acked = send_all(&base, &bodies, 4, None);
    killer.join().unwrap();
    let n_acked = acked.iter().filter(|a| **a).count();
    assert!(
        n_acked > 0 && n_acked < bodies.len(),
        "acknowledged {n_acked} of {}",
        bodies.len()
    );

    // After a restart, every acknowledged body is already there: sending it
    // again adds nothing.
    let server = Server::start(&config);
    let again: Vec<String> = bodies
        .iter()
        .zip(&acked)
        .filter(|(_, a)| **a)
        .map(|(b, _)| b.clone())
        .collect();
    let rows_before = log_rows(&dir.path().join("data"));
    let mut added = 0;
    let mut present = 0;
    for body in &again {
        let r = if body.starts_with("{\"object\"") {
            post(
                &server.url("/webhooks/meta"),
                &[("X-Hub-Signature-256", &sign(body))],
                body,
            )
        } else {
            post_events(&server, TOKEN_ALL, body)
        };
        assert_eq!(r.status, 200, "{}", r.body);
        added += r.json()["accepted"].as_u64().unwrap();
        present += r.json()["duplicates"].as_u64().unwrap();
    }
    assert_eq!(added, 0, "acknowledged events were lost");
    assert!(present > 0);
    // Events the log holds already are not written again.
    assert_eq!(log_rows(&dir.path().join("data")), rows_before);

    // The senders' retries cover the rest, with concurrent duplicates.
    let rest: Vec<String> = bodies
        .iter()
        .zip(&acked)
        .filter(|(_, a)| !**a)
        .map(|(b, _)| b.clone())
        .collect();
    let doubled: Vec<String> = rest.iter().chain(rest.iter()).cloned().collect();
    assert!(send_all(&server.base, &doubled, 4, None).iter().all(|a| *a));

    assert!(assert_served_invoices_equal_the_cli(&server, &traffic) > 0);
    assert_eq!(server.stop(), 0, "SIGTERM ends the service cleanly");
}

#[test]
fn the_openapi_document_lists_exactly_the_served_paths() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let doc = get(&server.url("/openapi.json"), None).json();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut documented: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    documented.sort();
    let mut served = vec![
        "/healthz",
        "/livez",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/conversations",
        "/v1/customers/{id}/invoices/{month}",
        "/v1/events",
        "/v1/invoices/{waba}/{month}",
        "/v1/quarantine",
        "/v1/quarantine/reprocess",
        "/v1/quote",
        "/v1/reconciliation/{waba}/{month}",
        "/v1/window",
        "/webhooks/360dialog/{name}",
        "/webhooks/meta",
        "/webhooks/zendesk/{name}",
    ];
    served.sort_unstable();
    assert_eq!(documented, served);
    // Each documented path answers something other than 404 (routing).
    for path in &served {
        let concrete = path
            .replace("{waba}", "W1")
            .replace("{month}", "2025-06")
            .replace("{name}", "acme")
            .replace("{id}", "C1");
        let documented_get = doc["paths"][path].get("get").is_some();
        let status = if documented_get {
            get(&server.url(&concrete), Some(TOKEN_ALL)).status
        } else {
            post(&server.url(&concrete), &[], "{}").status
        };
        assert_ne!(status, 405, "{path}");
        if !path.contains("invoices")
            && !path.contains("reconciliation")
            && !path.contains("zendesk")
        {
            assert_ne!(status, 404, "{path}");
        }
    }
    assert_eq!(get(&server.url("/healthz"), None).body, "ok");
}

/// A Cloud API body of WABA W2 with three statuses: a good `delivered`, a
/// payment's progress and one whose timestamp is no time.
const MIXED_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"W2","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"P2"},"statuses":[{"id":"wamid.good","status":"delivered","timestamp":"1750000000","recipient_id":"5511999990001"},{"id":"ABMAAQVBAXmFlQ","from":"5511999990001","status":"captured","timestamp":"1750000001","type":"payment","payment":{"reference_id":"r1"}},{"id":"wamid.bad","status":"delivered","timestamp":"soon","recipient_id":"5511999990001"}]}}]}]}"#;

/// A Zendesk route for W1 that maps no user yet (`users` in TOML).
fn zendesk_route(users: &str) -> String {
    format!(
        r#"
[[route]]
name = "zd2"
provider = "zendesk"
secret = "{ZENDESK_SECRET}"
waba = "W1"
phone = "P1"
users = {users}
"#
    )
}

fn reprocess(server: &Server, token: &str) -> Value {
    let auth = format!("Bearer {token}");
    let reply = post(
        &server.url("/v1/quarantine/reprocess"),
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[test]
fn a_bad_item_is_quarantined_durably_while_its_body_is_billed_and_is_billed_once_reprocessed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &zendesk_route("{}"));
    let server = Server::start(&config);
    let meta = server.url("/webhooks/meta");
    let answer = post(
        &meta,
        &[("X-Hub-Signature-256", &sign(MIXED_BODY))],
        MIXED_BODY,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json();
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["ignored"], serde_json::json!({"payment": 1}));
    assert_eq!(
        answer["quarantined"][0]["path"],
        "entry[0].changes[0].value.statuses[2]"
    );
    assert!(
        answer["quarantined"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("`timestamp` \"soon\""),
        "{answer}"
    );
    // The good status is billed: its pair's month has a conversation.
    let invoice = get(&server.url("/v1/invoices/W2/2025-06"), Some(TOKEN_ALL));
    assert_eq!(invoice.status, 200, "{}", invoice.body);
    assert_eq!(invoice.json()["conversations"]["total"], 1);

    // A Sunshine user no route maps yet.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ingest/tests/golden/sunshine/inbound_unmapped_user_quarantined.json");
    let sunshine = std::fs::read_to_string(golden).unwrap();
    let zd = server.url("/webhooks/zendesk/zd2");
    let held = post(&zd, &[("X-API-Key", ZENDESK_SECRET)], &sunshine).json();
    assert_eq!(
        (
            held["accepted"].as_u64(),
            held["quarantined"][0]["path"].as_str()
        ),
        (Some(0), Some("events[0]"))
    );

    // Listed, scoped like every read.
    let all = get(&server.url("/v1/quarantine"), Some(TOKEN_ALL)).json();
    assert_eq!(all["items"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(all["items"][0]["item"]["id"], "wamid.bad");
    assert_eq!(all["items"][0]["source"], "meta");
    assert_eq!(all["items"][1]["route"], "zd2");
    let w1 = get(&server.url("/v1/quarantine"), Some(TOKEN_W1)).json();
    assert_eq!(w1["items"].as_array().unwrap().len(), 1, "{w1}");
    assert_eq!(
        get(&server.url("/v1/quarantine?waba=W2"), Some(TOKEN_W1)).status,
        403
    );
    assert_eq!(
        metric(&server, r#"wabill_quarantined_items_total{source="meta"}"#),
        1
    );
    assert_eq!(
        metric(
            &server,
            r#"wabill_ignored_items_total{source="meta",kind="payment"}"#
        ),
        1
    );
    assert_eq!(metric(&server, "wabill_quarantine_held"), 2);

    // Nothing is fixed yet: re-processing keeps both.
    let again = reprocess(&server, TOKEN_ALL);
    assert_eq!(
        (again["reprocessed"].as_u64(), again["released"].as_u64()),
        (Some(2), Some(0))
    );
    // Meta retries the body: its good event is a duplicate, its bad item
    // is held once.
    let retry = post(
        &meta,
        &[("X-Hub-Signature-256", &sign(MIXED_BODY))],
        MIXED_BODY,
    )
    .json();
    assert_eq!(
        (retry["accepted"].as_u64(), retry["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(metric(&server, "wabill_quarantine_held"), 2);

    // The route now maps the user; the quarantine survived the restart.
    assert_eq!(server.stop(), 0);
    let config = write_config(
        dir.path(),
        &zendesk_route(r#"{ "cbec0073faeda4dfcd21d0f1" = "+14155550000" }"#),
    );
    let server = Server::start(&config);
    let listed = get(&server.url("/v1/quarantine"), Some(TOKEN_ALL)).json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    // W1's key re-processes W1's item only.
    let done = reprocess(&server, TOKEN_W1);
    assert_eq!(
        (
            done["reprocessed"].as_u64(),
            done["released"].as_u64(),
            done["accepted"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{done}"
    );
    let window = get(
        &server.url("/v1/window?waba=W1&phone=P1&user=14155550000&at=2025-06-08T22:00:00Z"),
        Some(TOKEN_W1),
    )
    .json();
    assert_eq!(window["csw_open"], true, "{window}");
    let left = get(&server.url("/v1/quarantine"), Some(TOKEN_ALL)).json();
    assert_eq!(left["items"].as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left["items"][0]["item"]["id"], "wamid.bad");
    // A malformed item stays, with its reason, until it is fixed at the source.
    let still = reprocess(&server, TOKEN_ALL);
    assert_eq!(
        still["still_quarantined"][0]["path"],
        "entry[0].changes[0].value.statuses[2]"
    );
    // Its event never reached the log: a restart rebuilds the same state.
    assert_eq!(server.stop(), 0);
    let server = Server::start(&config);
    let invoice = get(&server.url("/v1/invoices/W2/2025-06"), Some(TOKEN_ALL)).json();
    assert_eq!(invoice["conversations"]["total"], 1);
    assert_eq!(metric(&server, "wabill_quarantine_held"), 1);
}

#[test]
fn zendesk_webhooks_need_their_api_key_and_map_sunshine_users() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ingest/tests/golden/sunshine/inbound_user_from_map.json");
    let body = std::fs::read_to_string(golden).unwrap();
    let url = server.url("/webhooks/zendesk/zd");
    assert_eq!(post(&url, &[], &body).status, 401);
    assert_eq!(post(&url, &[("X-API-Key", "wrong")], &body).status, 401);
    let stored = post(&url, &[("X-API-Key", ZENDESK_SECRET)], &body);
    assert_eq!(
        (stored.status, stored.json()["accepted"].as_u64()),
        (200, Some(1)),
        "{}",
        stored.body
    );
    let window = get(
        &server.url("/v1/window?waba=W1&phone=P1&user=16505551234&at=2025-06-08T22:00:00Z"),
        Some(TOKEN_W1),
    )
    .json();
    assert_eq!(window["csw_expires_at"], "2025-06-09T21:10:05.87Z");
    let not_json = post(&url, &[("X-API-Key", ZENDESK_SECRET)], "{");
    assert_eq!(not_json.status, 400);
}

/// Issue 17 point 2: a message is a WABA's id (rules F6), so a key's copy
/// under its own WABA, however early, is another message.
#[test]
fn a_key_s_earlier_copy_of_another_waba_s_message_id_leaves_that_waba_s_bill_alone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let w2 = [
        ev(
            "inbound",
            "wamid.u",
            "W2",
            "5511999990001",
            "2025-06-15T10:00:00Z",
            "",
        ),
        ev(
            "outbound",
            "wamid.o",
            "W2",
            "5511999990001",
            "2025-06-15T10:01:00Z",
            "",
        ),
        ev(
            "status",
            "wamid.o",
            "W2",
            "5511999990001",
            "2025-06-15T10:02:00Z",
            r#","status":"delivered""#,
        ),
    ]
    .join("\n");
    assert_eq!(post_events(&server, TOKEN_ALL, &w2).json()["accepted"], 3);
    let before = get(&server.url("/v1/invoices/W2/2025-06"), Some(TOKEN_ALL)).body;
    // The same status, a second earlier, claimed for W1 by W1's key.
    let claim = ev(
        "status",
        "wamid.o",
        "W1",
        "5511999990001",
        "2025-06-15T10:01:59Z",
        r#","status":"delivered""#,
    );
    let stored = post_events(&server, TOKEN_W1, &claim);
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.json()["accepted"], 1, "{}", stored.body);
    assert_eq!(
        get(&server.url("/v1/invoices/W2/2025-06"), Some(TOKEN_ALL)).body,
        before
    );
}

#[test]
fn live_answers_follow_the_canonical_copy_of_each_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    // F6: the same delivered status for two users; the earlier copy (U2's)
    // is the one that counts, so U1 has no conversation.
    let body = [
        ev(
            "status",
            "wamid.o1",
            "W1",
            "5511999990001",
            "2025-06-15T10:05:00Z",
            r#","status":"delivered""#,
        ),
        ev(
            "status",
            "wamid.o1",
            "W1",
            "5511999990002",
            "2025-06-15T10:04:00Z",
            r#","status":"delivered""#,
        ),
    ]
    .join("\n");
    assert_eq!(post_events(&server, TOKEN_W1, &body).status, 200);
    let window = |server: &Server, user: &str| {
        get(
            &server.url(&format!(
                "/v1/window?waba=W1&phone=P1&user={user}&at=2025-06-15T11:00:00Z"
            )),
            Some(TOKEN_W1),
        )
        .json()["open_conversations"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        (
            window(&server, "5511999990001"),
            window(&server, "5511999990002")
        ),
        (0, 1)
    );
    server.stop();
    let server = Server::start(&config);
    assert_eq!(
        (
            window(&server, "5511999990001"),
            window(&server, "5511999990002")
        ),
        (0, 1)
    );
}

#[test]
fn quotes_need_no_rate_for_what_is_free_and_use_the_conversation_s_era() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let user = "5511999990001";
    let body = [
        ev(
            "inbound",
            "wamid.ad",
            "W1",
            user,
            "2025-06-15T10:00:00Z",
            r#","referral":{"source_type":"ad"}"#,
        ),
        ev(
            "inbound",
            "wamid.in",
            "W1",
            user,
            "2025-07-20T10:00:00Z",
            "",
        ),
    ]
    .join("\n");
    assert_eq!(post_events(&server, TOKEN_W1, &body).json()["accepted"], 2);
    let quote = |at: &str, kind: &str| {
        let r = get(
            &server.url(&format!(
                "/v1/quote?waba=W1&phone=P1&user={user}&at={at}&{kind}"
            )),
            Some(TOKEN_W1),
        );
        assert_eq!(r.status, 200, "{at} {kind}: {}", r.body);
        r.json()
    };
    // A reply to an ad opens a free entry point conversation (cbp-2023).
    let fep = quote("2025-06-15T10:05:00Z", "kind=freeform");
    assert_eq!(
        (fep["free"].as_str(), fep["meta_price"].as_str()),
        (Some("free_entry_point"), Some("0"))
    );
    // A free-form reply under per-message pricing is free service.
    let service = quote("2025-07-20T10:05:00Z", "kind=freeform");
    assert_eq!(service["era"], "pmp-2025");
    assert_eq!(service["meta_price"], "0");
    assert_eq!(service["allowed"], true);
}

#[test]
fn conversation_pages_resume_after_the_last_record_shown() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let template = r#","template":{"category":"marketing"}"#;
    let delivered = r#","status":"delivered""#;
    let mut lines = Vec::new();
    for (i, day) in ["03", "05", "07"].iter().enumerate() {
        let id = format!("wamid.o{i}");
        let at = format!("2025-06-{day}T10:00:00Z");
        lines.push(ev("outbound", &id, "W1", "5511999990001", &at, template));
        lines.push(ev("status", &id, "W1", "5511999990001", &at, delivered));
    }
    assert_eq!(
        post_events(&server, TOKEN_W1, &lines.join("\n")).json()["accepted"],
        6
    );
    let page = |cursor: Option<&str>| {
        let mut path = "/v1/conversations?waba=W1&month=2025-06&limit=2".to_owned();
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        get(&server.url(&path), Some(TOKEN_W1)).json()
    };
    let first = page(None);
    let opened: Vec<&str> = first["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["opened_by"].as_str().unwrap())
        .collect();
    assert_eq!(opened, ["wamid.o0", "wamid.o1"]);
    assert_eq!(
        first["conversations"][0]["timeline"][0]["template"],
        "marketing"
    );
    // A late record earlier than the page does not shift the next page.
    let late = [
        ev(
            "outbound",
            "wamid.late",
            "W1",
            "5511999990001",
            "2025-06-01T10:00:00Z",
            template,
        ),
        ev(
            "status",
            "wamid.late",
            "W1",
            "5511999990001",
            "2025-06-01T10:00:00Z",
            delivered,
        ),
    ]
    .join("\n");
    assert_eq!(post_events(&server, TOKEN_W1, &late).json()["accepted"], 2);
    let second = page(first["next_cursor"].as_str());
    let opened: Vec<&str> = second["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["opened_by"].as_str().unwrap())
        .collect();
    assert_eq!(opened, ["wamid.o2"]);
    assert!(second["next_cursor"].is_null());
    assert_eq!(page(Some("zz"))["error"]["code"], "bad_query");
}

/// Compares every invoice `wabill invoice` writes for the events in
/// `file` with the one the service serves now; returns how many.
fn assert_served_invoices_equal_the_cli(server: &Server, file: &Path) -> usize {
    let batch: Value = serde_json::from_str(&wabill(&[
        "invoice",
        "--format",
        "json",
        file.to_str().unwrap(),
    ]))
    .unwrap();
    let invoices = batch["invoices"].as_array().unwrap();
    for invoice in invoices {
        let (waba, month) = (
            invoice["waba"].as_str().unwrap(),
            invoice["month"].as_str().unwrap(),
        );
        let served = get(
            &server.url(&format!("/v1/invoices/{waba}/{month}")),
            Some(TOKEN_ALL),
        );
        assert_eq!(served.status, 200, "{}", served.body);
        assert_eq!(
            served.json(),
            *invoice,
            "{waba} {month} of {}",
            file.display()
        );
    }
    invoices.len()
}

#[test]
fn served_invoices_equal_the_batch_cli_at_every_point_of_shuffled_duplicated_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("traffic.ndjson");
    // Six weeks over the cbp-2023 → pmp-2025 switch and two month ends.
    wabill(&[
        "gen",
        "--events",
        "8000",
        "--seed",
        "11",
        "--start",
        "2025-06-10",
        "--days",
        "45",
        "--users",
        "400",
        "-o",
        traffic.to_str().unwrap(),
    ]);
    let mut lines: Vec<String> = std::fs::read_to_string(&traffic)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    // A fixed shuffle (xorshift) with every tenth line sent twice: late,
    // early and repeated events in one stream.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in (1..lines.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        lines.swap(i, j);
    }
    let repeats: Vec<String> = lines.iter().step_by(10).cloned().collect();
    for line in repeats {
        let at = (next() % lines.len() as u64) as usize;
        lines.insert(at, line);
    }

    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let chunks: Vec<&[String]> = lines.chunks(300).collect();
    let mut sent = 0;
    let mut checked = 0;
    for (n, chunk) in chunks.iter().enumerate() {
        let r = post_events(&server, TOKEN_ALL, &(chunk.join("\n") + "\n"));
        assert_eq!(r.status, 200, "{}", r.body);
        sent += chunk.len();
        // Read the invoices mid-stream (each read settles what changed).
        if n % 8 == 7 || n + 1 == chunks.len() {
            let so_far = dir.path().join(format!("first-{sent}.ndjson"));
            std::fs::write(&so_far, lines[..sent].join("\n") + "\n").unwrap();
            checked += assert_served_invoices_equal_the_cli(&server, &so_far);
        }
    }
    assert!(checked >= 10, "only {checked} invoices compared");
    assert_eq!(server.stop(), 0);
}

#[test]
fn sigterm_answers_the_request_in_flight_then_refuses_new_ones() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let body = cloud_body("W1", "wamid.inflight", 1_750_000_000);
    let addr = server.base.trim_start_matches("http://").to_owned();
    // Half a signed webhook is on the wire when SIGTERM arrives.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST /webhooks/meta HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sign(&body),
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first.as_bytes()).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // A new connection is no longer served.
    let refused = std::net::TcpStream::connect(&addr).map_or(true, |mut s| {
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply.is_empty()
    });
    assert!(refused, "a connection opened after SIGTERM was served");
    stream.write_all(rest.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""accepted":1"#), "{reply}");
    assert_eq!(server.stop(), 0, "the service exits cleanly");

    // The answered event was durable before the answer.
    let server = Server::start(&config);
    let again = post(
        &server.url("/webhooks/meta"),
        &[("X-Hub-Signature-256", &sign(&body))],
        &body,
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["duplicates"], 1, "{}", again.body);
}

/// `wabill load` (the service benchmark's open-loop generator) drives the
/// signed Meta path and window checks, and every request it counts is
/// answered 2xx.
#[test]
fn the_load_generator_posts_signed_webhooks_on_schedule_and_checks_windows() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let run = |extra: &[&str]| {
        let mut args = vec![
            "load",
            "--url",
            &server.base,
            "--connections",
            "4",
            "--seconds",
            "1",
            "--warmup",
            "0",
            "--users",
            "50",
        ];
        args.extend_from_slice(extra);
        wabill(&args)
    };
    let hooks = run(&[
        "--mode",
        "webhooks",
        "--app-secret",
        APP_SECRET,
        "--rate",
        "200",
    ]);
    assert!(
        hooks.starts_with("rate asked 200/s, 4 connections: "),
        "{hooks}"
    );
    assert!(hooks.contains("failed 0"), "{hooks}");
    let answered: u64 = hooks
        .split(" answered")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{hooks}"));
    assert!((150..=210).contains(&answered), "{hooks}");
    let windows = run(&["--mode", "window", "--token", TOKEN_W1]);
    assert!(
        windows.starts_with("closed loop, 4 connections: "),
        "{windows}"
    );
    assert!(windows.contains("failed 0"), "{windows}");
    // The webhooks' events are stored: the pairs they filled have windows.
    let accepted = metric(
        &server,
        r#"wabill_events_total{source="meta",outcome="accepted"}"#,
    );
    assert!(accepted >= answered, "{accepted} < {answered}");
    assert_eq!(server.stop(), 0);
}

/// Meta's 2026 real traffic (docs/reference/webhook-shapes-2026.md 4b): a
/// delivered utility template, billable, with its `pricing` and
/// `conversation` objects.
const PRICED_DELIVERY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"5521983691497","phone_number_id":"P1"},"statuses":[{"id":"wamid.HBgNNTUyMTk4NzkzMDEyMRUCABEYEjMyQzQ0NjQ3NkNGRUNFMEM2OAA=","status":"delivered","timestamp":"1778239358","recipient_id":"5521987930121","recipient_user_id":"BR.2077296503193087","conversation":{"id":"224f9f2cb8c7b19b80aba593aa84bdad","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}}]},"field":"messages"}]}]}"#;

#[test]
fn meta_s_verdict_shows_in_conversations_and_timelines_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let meta = server.url("/webhooks/meta");
    let stored = post(
        &meta,
        &[("X-Hub-Signature-256", &sign(PRICED_DELIVERY))],
        PRICED_DELIVERY,
    );
    assert_eq!(stored.status, 200, "{}", stored.body);
    let url = server.url("/v1/conversations?waba=W1&month=2026-05");
    let page = get(&url, Some(TOKEN_W1));
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    let record = &page["conversations"][0];
    let want = serde_json::json!({
        "billable": true,
        "category": "utility",
        "conversation_id": "224f9f2cb8c7b19b80aba593aa84bdad",
        "origin": "utility",
        "pricing_model": "PMP",
        "pricing_type": "regular"
    });
    assert_eq!(record["meta"], want, "{page}");
    assert_eq!(record["timeline"][0]["meta"], want, "{page}");
    // The log kept the verdict: a restart answers the same.
    assert_eq!(server.stop(), 0);
    let server = Server::start(&config);
    let again = get(
        &server.url("/v1/conversations?waba=W1&month=2026-05"),
        Some(TOKEN_W1),
    )
    .json();
    assert_eq!(again, page);
}

/// Review finding: one item whose message id another WABA uses used to
/// refuse the whole route body (403 on every retry, its good items lost);
/// since issue 17 it is the route's WABA's own message.
#[test]
fn an_item_naming_another_waba_s_message_id_is_stored_as_its_own_waba_s_and_a_bad_one_held() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    let owned = ev(
        "status",
        "wamid.o",
        "W2",
        "5511999990001",
        "2025-06-15T10:00:00Z",
        r#","status":"delivered""#,
    );
    assert_eq!(post_events(&server, TOKEN_ALL, &owned).status, 200);
    let body = r#"{"statuses":[{"id":"wamid.good","recipient_id":"5511999990001","status":"delivered","timestamp":"1750000000"},{"id":"wamid.o","recipient_id":"5511999990001","status":"read","timestamp":"1750000100"},{"id":"wamid.bad","recipient_id":"5511999990001","status":"delivered","timestamp":"soon"}]}"#;
    let url = server.url("/webhooks/360dialog/acme");
    let answer = post(&url, &[("D360-Secret", DIALOG_SECRET)], body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json();
    assert_eq!(answer["accepted"], 2, "{answer}");
    let held: Vec<&str> = answer["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["path"].as_str().unwrap())
        .collect();
    assert_eq!(held, ["statuses[2]"], "{answer}");
    // A retry stores nothing new and holds nothing twice.
    let retry = post(&url, &[("D360-Secret", DIALOG_SECRET)], body).json();
    assert_eq!(
        (retry["accepted"].as_u64(), retry["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(
        metric(
            &server,
            r#"wabill_quarantined_items_total{source="360dialog"}"#
        ),
        1
    );
    assert_eq!(metric(&server, "wabill_quarantine_held"), 1);
    // W1's key re-processes what it may: the bad item stays held.
    let again = reprocess(&server, TOKEN_W1);
    assert_eq!(again["released"], 0, "{again}");
    assert_eq!(
        again["still_quarantined"].as_array().map(Vec::len),
        Some(1),
        "{again}"
    );
    // W2's message is as it was: its delivery, not W1's read.
    let w2 = get(
        &server.url("/v1/conversations?waba=W2&month=2025-06"),
        Some(TOKEN_ALL),
    )
    .json();
    let timeline = &w2["conversations"][0]["timeline"];
    assert_eq!(timeline.as_array().map(Vec::len), Some(1), "{w2}");
    assert_eq!(timeline[0]["ts"], "2025-06-15T10:00:00Z", "{w2}");
}

/// Issue 16 point 6: the service reconciles a WABA-month as the CLI does.
#[test]
fn the_service_reconciles_a_waba_month_as_the_cli_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    // The platform says utility; Meta's signed status says marketing.
    let outbound = r#"{"type":"outbound","id":"wamid.r1","waba":"W1","phone":"P1","user":"919812345678","ts":"2025-08-04T10:00:00Z","template":{"name":"t","category":"utility"}}"#;
    assert_eq!(post_events(&server, TOKEN_W1, outbound).status, 200);
    let status = r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P1"},"statuses":[{"id":"wamid.r1","status":"delivered","timestamp":"1754301601","recipient_id":"919812345678","pricing":{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}}]}}]}]}"#;
    let stored = post(
        &server.url("/webhooks/meta"),
        &[("X-Hub-Signature-256", &sign(status))],
        status,
    );
    assert_eq!(stored.status, 200, "{}", stored.body);
    let served = get(&server.url("/v1/reconciliation/W1/2025-08"), Some(TOKEN_W1));
    assert_eq!(served.status, 200, "{}", served.body);
    let served = served.json();
    assert_eq!(served["agree"], false, "{served}");
    assert_eq!(
        served["disagreements"][0]["class"], "recategorized",
        "{served}"
    );
    assert_eq!(served["disagreements"][0]["wabill"]["category"], "utility");
    assert_eq!(served["disagreements"][0]["meta"]["category"], "marketing");
    // The CLI on the same events says the same.
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, format!("{outbound}\n{status}\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(["reconcile", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["reconciliations"][0], served);
    let none = get(&server.url("/v1/reconciliation/W1/2025-09"), Some(TOKEN_W1));
    assert_eq!(none.status, 404, "{}", none.body);
}

/// Issue 16 points 2 and 3: bodies of a user whose number Meta withholds,
/// the body that links that user's id to the number, and a group status of
/// two participants are billed as the CLI bills them, before and after a
/// restart (the log keeps `user_id` and `group`).
#[test]
fn withheld_numbers_links_and_group_deliveries_are_billed_as_the_cli_bills_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let server = Server::start(&config);
    let body = |value: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P1"}},{value}}}}}]}}]}}"#
        )
    };
    let bodies = [
        // A template delivered to the id alone (Meta withholds the number).
        body(
            r#""statuses":[{"id":"wamid.t1","status":"delivered","timestamp":"1754301600","recipient_user_id":"IN.77","pricing":{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}}]"#,
        ),
        // Later the user writes with both ids: one person.
        body(
            r#""messages":[{"from":"919812345678","from_user_id":"IN.77","id":"wamid.i1","timestamp":"1754305200","type":"text","text":{"body":"hi"}}]"#,
        ),
        // A group delivery to two participants.
        body(
            r#""statuses":[{"id":"wamid.g1","status":"delivered","timestamp":"1754308800","recipient_id":"G1@g.us","recipient_type":"group","recipient_participant_id":"5511999990001","pricing":{"billable":true,"pricing_model":"PMP","category":"group_marketing"}},{"id":"wamid.g1","status":"delivered","timestamp":"1754308800","recipient_id":"G1@g.us","recipient_type":"group","participant_recipient_id":"447400123456","pricing":{"billable":true,"pricing_model":"PMP","category":"group_marketing"}}]"#,
        ),
    ];
    let meta = server.url("/webhooks/meta");
    for b in &bodies {
        let stored = post(&meta, &[("X-Hub-Signature-256", &sign(b))], b);
        assert_eq!(stored.status, 200, "{}", stored.body);
        assert_eq!(
            stored.json()["quarantined"],
            serde_json::json!([]),
            "{}",
            stored.body
        );
    }
    let file = dir.path().join("bodies.ndjson");
    std::fs::write(&file, bodies.join("\n") + "\n").unwrap();
    let page = get(
        &server.url("/v1/conversations?waba=W1&month=2025-08"),
        Some(TOKEN_W1),
    )
    .json();
    let users: Vec<&str> = page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["user"].as_str())
        .collect();
    assert_eq!(
        users,
        ["919812345678", "447400123456", "5511999990001"],
        "{page}"
    );
    assert_eq!(assert_served_invoices_equal_the_cli(&server, &file), 1);
    assert_eq!(server.stop(), 0);
    let server = Server::start(&config);
    assert_eq!(assert_served_invoices_equal_the_cli(&server, &file), 1);
}

/// Rules F9: the quote prices a business-scoped id linked to a number in
/// the number's market, as billing does (a reviewer finding: it used the
/// id's prefix).
#[test]
fn a_quote_for_a_linked_business_scoped_id_uses_the_number_s_market() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), ""));
    // The id's prefix says Brazil; the number is Indian.
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P1"},"messages":[{"from":"919812345678","from_user_id":"BR.4242","id":"wamid.q1","timestamp":"1754301600","type":"text","text":{"body":"hi"}}]}}]}]}"#;
    let stored = post(
        &server.url("/webhooks/meta"),
        &[("X-Hub-Signature-256", &sign(body))],
        body,
    );
    assert_eq!(stored.status, 200, "{}", stored.body);
    let quote = |user: &str| {
        get(
            &server.url(&format!(
                "/v1/quote?waba=W1&phone=P1&user={user}&kind=template&category=marketing&at=1754305200"
            )),
            Some(TOKEN_W1),
        )
        .json()
    };
    assert_eq!(quote("BR.4242")["market"], "India");
    assert_eq!(quote("BR.9999")["market"], "Brazil");
}
