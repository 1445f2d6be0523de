//! The store's contract, run against both backends: the embedded SQLite
//! store in a temporary directory and PostgreSQL in a schema of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use wabill_store::{Held, Location, PublishedMonth, PublishedRecord, Store, StoreError};
use wabill_testkit::TestSchema;

/// Runs `check` on a fresh store of each backend.
fn on_both(check: impl Fn(&Location)) {
    let dir = tempfile::tempdir().unwrap();
    check(&Location::Embedded(dir.path().join("data")));
    let pg = TestSchema::new();
    check(&Location::Postgres(pg.url.clone()));
}

fn lines(store: &mut dyn Store) -> Vec<(String, String)> {
    let mut out = Vec::new();
    store
        .replay(&mut |source, line| out.push((source.to_owned(), line.to_owned())))
        .unwrap();
    out
}

fn held(item: &str) -> Held {
    Held {
        id: 0,
        received_at: "2026-12-07T10:00:00Z".into(),
        source: "meta",
        route: String::new(),
        item: wabill_ingest::Quarantined {
            path: "entry[0].changes[0].value.statuses[0]".into(),
            reason: "no id".into(),
            item: item.into(),
            // Longer than a PostgreSQL index row may be.
            body: format!("{{\"body\":\"{}\"}}", "x".repeat(10_000)),
            waba: Some("W1".into()),
        },
    }
}

#[test]
fn appended_rows_replay_in_the_order_they_were_committed_after_a_reopen() {
    on_both(|loc| {
        {
            let mut store = wabill_store::open(loc).unwrap();
            store
                .append(&mut [("api", "a"), ("meta", "b")].into_iter(), &[], &[])
                .unwrap();
            store
                .append(&mut [("api", "c")].into_iter(), &[], &[])
                .unwrap();
        }
        let mut store = wabill_store::open(loc).unwrap();
        let got = lines(store.as_mut());
        let want: Vec<(String, String)> = [("api", "a"), ("meta", "b"), ("api", "c")]
            .iter()
            .map(|(s, l)| (s.to_string(), l.to_string()))
            .collect();
        assert_eq!(got, want, "{loc}");
        // Read beside the writer, too.
        let mut seen = 0;
        wabill_store::read_log(loc, &mut |_, _| seen += 1).unwrap();
        assert_eq!(seen, 3, "{loc}");
    });
}

#[test]
fn a_held_item_is_kept_once_and_released_by_its_key() {
    on_both(|loc| {
        let mut store = wabill_store::open(loc).unwrap();
        let (a, b) = (held("{\"a\":1}"), held("{\"b\":1}"));
        let ids = store
            .append(&mut std::iter::empty(), &[&a, &b, &a], &[])
            .unwrap();
        assert!(ids[0].is_some() && ids[1].is_some(), "{loc}: {ids:?}");
        assert_eq!(ids[2], None, "{loc}: the same item twice in one commit");
        // A provider's retry, in a later commit.
        let again = store.append(&mut std::iter::empty(), &[&a], &[]).unwrap();
        assert_eq!(again, [None], "{loc}");
        let kept = store.held().unwrap();
        assert_eq!(kept.len(), 2, "{loc}");
        assert_eq!(kept[0].item.item, "{\"a\":1}");
        assert_eq!(kept[0].item.body.len(), a.item.body.len());
        assert_eq!(kept[0].item.waba.as_deref(), Some("W1"));
        assert_eq!(kept[0].source, "meta");
        store
            .append(&mut [("api", "x")].into_iter(), &[], &[kept[0].id])
            .unwrap();
        drop(store);
        let mut store = wabill_store::open(loc).unwrap();
        let kept = store.held().unwrap();
        assert_eq!(kept.len(), 1, "{loc}");
        assert_eq!(kept[0].item.item, "{\"b\":1}", "{loc}");
        store.probe().unwrap();
    });
}

#[test]
fn a_second_writer_on_one_store_is_refused_while_the_first_holds_it() {
    on_both(|loc| {
        let first = wabill_store::open(loc).unwrap();
        match wabill_store::open(loc) {
            Err(StoreError::Locked { location } | StoreError::Busy { location }) => {
                assert_eq!(location, loc.to_string())
            }
            Err(e) => panic!("{loc}: {e}"),
            Ok(_) => panic!("{loc}: two writers"),
        }
        drop(first);
        wabill_store::open(loc).unwrap();
    });
}

#[test]
fn migrations_apply_once_and_a_newer_schema_is_refused() {
    on_both(|loc| {
        let (applied, version) = wabill_store::migrate(loc).unwrap();
        assert_eq!(applied.len(), wabill_store::MIGRATIONS.len(), "{loc}");
        assert_eq!(version as usize, wabill_store::MIGRATIONS.len());
        let (again, _) = wabill_store::migrate(loc).unwrap();
        assert!(again.is_empty(), "{loc}: {again:?}");
        drop(wabill_store::open(loc).unwrap());
        mark_newer(loc);
        match wabill_store::open(loc) {
            Err(e @ StoreError::Newer { .. }) => {
                assert!(e.to_string().contains("schema version 99"), "{e}")
            }
            Err(e) => panic!("{loc}: {e}"),
            Ok(_) => panic!("{loc}: a newer schema opened"),
        }
    });
}

/// Records a migration this wabill does not know.
fn mark_newer(loc: &Location) {
    match loc {
        Location::Embedded(dir) => {
            let c = rusqlite::Connection::open(dir.join("wabill.sqlite")).unwrap();
            c.execute(
                "INSERT INTO schema_migrations VALUES (99, 'future', 'now')",
                [],
            )
            .unwrap();
        }
        Location::Postgres(url) => {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            c.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')",
                &[],
            )
            .unwrap();
        }
    }
}

fn month(amount: &str, records: usize) -> PublishedMonth {
    PublishedMonth {
        waba: "W1".into(),
        month: "2026-11".into(),
        currency: "USD".into(),
        meta_total: amount.into(),
        amount_due: amount.into(),
        invoice: format!("{{\"amount_due\":\"{amount}\"}}"),
        records: (0..records)
            .map(|i| PublishedRecord {
                phone: "P1".into(),
                user: format!("55119999900{i:02}"),
                start: "2026-11-02T10:00:00Z".into(),
                end: "2026-11-03T10:00:00Z".into(),
                era: "cbp-2023".into(),
                category: "marketing".into(),
                market: "Brazil".into(),
                free: "no".into(),
                unit_price: "0.0625".into(),
                opened_by: format!("wamid.{i}"),
                messages: 1,
                json: format!("{{\"n\":{i}}}"),
            })
            .collect(),
    }
}

fn published(loc: &Location) -> (i64, String, i64) {
    match loc {
        Location::Embedded(dir) => {
            let c = rusqlite::Connection::open(dir.join("wabill.sqlite")).unwrap();
            c.query_row(
                "SELECT revision, amount_due, (SELECT count(*) FROM conversation_records c WHERE c.month = i.month AND c.revision = i.revision) FROM invoices i",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
        }
        Location::Postgres(url) => {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            let r = c
                .query_one(
                    "SELECT revision::bigint, amount_due::text, (SELECT count(*) FROM conversation_records c WHERE c.month = i.month AND c.revision = i.revision) FROM invoices i",
                    &[],
                )
                .unwrap();
            (r.get(0), r.get(1), r.get(2))
        }
    }
}

#[test]
fn a_month_published_again_is_replaced_with_its_revision_raised_only_when_it_changed() {
    on_both(|loc| {
        let mut store = wabill_store::open(loc).unwrap();
        assert_eq!(store.publish(&[month("1.50", 2)]).unwrap(), [Some(1)]);
        assert_eq!(published(loc), (1, "1.50".into(), 2), "{loc}");
        assert_eq!(store.publish(&[month("1.50", 2)]).unwrap(), [None], "{loc}");
        assert_eq!(store.publish(&[month("2.25", 3)]).unwrap(), [Some(2)]);
        assert_eq!(published(loc), (2, "2.25".into(), 3), "{loc}");
        // Another month, then the first withdrawn (it can no longer be
        // billed): its invoice and records leave together.
        let mut other = month("0.10", 1);
        other.month = "2026-12".into();
        assert_eq!(store.publish(&[other]).unwrap(), [Some(1)]);
        let keep = [("W1".to_owned(), "2026-12".to_owned())];
        assert_eq!(store.keep_published(&keep).unwrap(), 1, "{loc}");
        assert_eq!(published(loc), (1, "0.10".into(), 1), "{loc}");
        assert_eq!(store.keep_published(&keep).unwrap(), 0, "{loc}");
    });
}

#[test]
fn a_postgresql_store_whose_connection_was_cut_says_it_is_lost_and_frees_the_store() {
    let pg = TestSchema::new();
    let loc = Location::Postgres(pg.url.clone());
    let mut store = wabill_store::open(&loc).unwrap();
    store
        .append(&mut [("api", "before")].into_iter(), &[], &[])
        .unwrap();
    assert!(!store.lost());
    // PostgreSQL ends the store's session (a restart, a cut network).
    let mut admin = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    let cut: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks
             WHERE locktype = 'advisory' AND pid <> pg_backend_pid()
               AND objid::bigint = (hashtextextended('wabill owner:' || current_schema(), 0) & 4294967295)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(cut, 1, "the store's session holds the owner lock");
    assert!(
        store
            .append(&mut [("api", "lost")].into_iter(), &[], &[])
            .is_err()
    );
    // The service stops on this (exit 75) and a restart replays the log.
    assert!(store.lost());
    let mut again = wabill_store::open(&loc).unwrap();
    let got: Vec<String> = lines(again.as_mut()).into_iter().map(|(_, l)| l).collect();
    assert_eq!(got, ["before"]);
}

#[test]
fn a_search_path_naming_no_schema_is_refused_with_a_reason() {
    let pg = TestSchema::new();
    let url = pg.url.replace(&pg.schema, "no_such_schema_here");
    let loc = Location::Postgres(url);
    for result in [
        wabill_store::open(&loc).map(|_| ()),
        wabill_store::migrate(&loc).map(|_| ()),
        wabill_store::read_log(&loc, &mut |_, _| {}).map(|_| ()),
    ] {
        match result {
            Err(e @ StoreError::NoSchema { .. }) => {
                assert!(e.to_string().contains("search_path"), "{e}")
            }
            Err(e) => panic!("{e}"),
            Ok(()) => panic!("opened without a schema"),
        }
    }
}

#[test]
fn a_month_whose_ids_hold_a_nul_is_published_on_both_backends() {
    on_both(|loc| {
        let mut store = wabill_store::open(loc).unwrap();
        let mut m = month("1.00", 1);
        m.waba = "W\0X".into();
        m.records[0].opened_by = "wamid.\0".into();
        m.records[0].json = r#"{"opened_by":"wamid.\u0000"}"#.into();
        m.invoice = r#"{"waba":"W\u0000X"}"#.into();
        assert_eq!(store.publish(&[m]).unwrap(), [Some(1)], "{loc}");
        let held = Held {
            item: wabill_ingest::Quarantined {
                waba: Some("W\0X".into()),
                reason: "a \0 in it".into(),
                ..held("{}").item
            },
            ..held("{}")
        };
        let ids = store
            .append(&mut std::iter::empty(), &[&held], &[])
            .unwrap();
        assert!(ids[0].is_some(), "{loc}");
    });
}
