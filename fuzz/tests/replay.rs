//! Replays the committed seeds and reproducers through the harnesses without
//! libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml`. A reproducer
//! under regressions/<target>/ fails this test until the bug is fixed.

use std::path::Path;

/// Runs every file of seeds/<target>/ and regressions/<target>/; returns
/// (file name, what `run` returned) for the seeds. seeds/<target>/ must exist
/// and hold at least one seed; regressions/<target>/ may be absent.
fn replay<T>(target: &str, run: fn(&[u8]) -> T) -> Vec<(String, T)> {
    let mut results = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["seeds", "regressions"] {
        let path = root.join(dir).join(target);
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if dir == "regressions" && e.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let mut paths: Vec<_> = entries
            .map(|e| match e {
                Ok(e) => e.path(),
                Err(e) => panic!("{}: {e}", path.display()),
            })
            .collect();
        paths.sort();
        for path in paths {
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            eprintln!("{target}: {}", path.display());
            let result = run(&data);
            if dir == "seeds" {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                results.push((name.into_owned(), result));
            }
        }
    }
    assert!(!results.is_empty(), "no seeds replayed for {target}");
    results
}

/// The seeds that hold valid traffic must get through to billing, or the
/// fuzzer starts from nothing but rejections. Every pattern of `valid` must
/// name at least one seed.
fn assert_reaches_engine(results: &[(String, u64)], valid: &[&str]) {
    for v in valid {
        assert!(
            results.iter().any(|(name, _)| name.contains(v)),
            "no seed matches {v:?}"
        );
    }
    for (name, accepted) in results {
        eprintln!("{name}: {accepted} events accepted");
        if valid.iter().any(|v| name.contains(v)) {
            assert!(*accepted > 0, "seed {name} no longer reaches the engine");
        }
    }
}

#[test]
fn normalized() {
    let results = replay("normalized", |d| {
        wabill_fuzz::event_pipeline(d, wabill_ingest::Route::default())
    });
    assert_reaches_engine(&results, &["events-md", "gen-"]);
}

#[test]
fn scan() {
    let results = replay("scan", wabill_fuzz::scan_agrees);
    // The line seeds hold plain lines: the scanner must read them itself.
    let lines = results
        .iter()
        .filter(|(name, _)| !name.starts_with("verdict-"));
    assert!(
        lines.clone().count() > 0 && lines.clone().all(|(_, n)| *n > 0),
        "{results:?}"
    );
}

#[test]
fn cloud_api() {
    let results = replay("cloud_api", |d| {
        wabill_fuzz::event_pipeline(d, wabill_ingest::Route::default())
    });
    assert_reaches_engine(
        &results,
        &[
            "6.3",
            "6.4",
            "-filled",
            "6.5e",
            "6.6",
            "6.7",
            "gen-",
            "2026-group_aggregated",
            "2026-bsuid_phone_withheld",
        ],
    );
}

#[test]
fn analytics() {
    let results = replay("analytics", wabill_fuzz::analytics);
    // Every seed is a readable export: it compares and renders rows.
    assert!(
        results
            .iter()
            .all(|(name, rows)| rows.is_some_and(|n| n > 0) || name.is_empty()),
        "{results:?}"
    );
}

#[test]
fn on_premises() {
    let results = replay("on_premises", |d| {
        wabill_fuzz::event_pipeline(d, wabill_fuzz::ON_PREMISES_ROUTE)
    });
    assert_reaches_engine(&results, &["6.9", "-filled", "6.6", "6.7"]);
}

#[test]
fn timestamp() {
    replay("timestamp", |d| {
        let _ = wabill_fuzz::timestamp(d);
    });
}

/// `meta-*` and `constructed-*` rate card seeds that the harness does not
/// parse as a card or a map: still replayed, but not required to parse.
/// - `meta-cbp-2023_USD_authentication-international.csv` is neither a card
///   nor a map but the list of authentication-international rates, which
///   `wabill_rates::shipped` applies with a parser of its own.
const RATE_CARD_SEEDS_REJECTED: [&str; 1] = ["meta-cbp-2023_USD_authentication-international.csv"];

/// The rate card seeds taken from Meta's cards and maps (`meta-*`) and the
/// constructed ones (`constructed-*`) must parse as a card or a map, or the
/// fuzzer starts from nothing but rejections.
#[test]
fn rate_card() {
    let results = replay("rate_card", wabill_fuzz::rate_card);
    let valid = ["meta-", "constructed-"];
    for v in valid {
        assert!(
            results.iter().any(|(name, _)| name.starts_with(v)),
            "no seed starts with {v:?}"
        );
    }
    for stale in RATE_CARD_SEEDS_REJECTED {
        assert!(
            results
                .iter()
                .any(|(name, parsed)| name == stale && !parsed),
            "{stale} is gone or parses again: take it off RATE_CARD_SEEDS_REJECTED"
        );
    }
    for (name, parsed) in &results {
        eprintln!("{name}: parsed {parsed}");
        if valid.iter().any(|v| name.starts_with(v))
            && !RATE_CARD_SEEDS_REJECTED.contains(&name.as_str())
        {
            assert!(*parsed, "seed {name} no longer parses as a card or map");
        }
    }
}

/// The HTTP edge's seeds: each makes a request, and the valid ones get
/// past authentication to a 2xx (the fuzzer starts from answers, not only
/// refusals).
#[test]
fn http() {
    let results = replay("http", wabill_fuzz::http_edge);
    let status = |name: &str| {
        results
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, s)| *s)
            .unwrap_or_else(|| panic!("no answer for seed {name}: {results:?}"))
    };
    for ok in [
        "meta-signed-cloud-body",
        "meta-handshake",
        "dialog-statuses",
        "events-ndjson",
        "window",
        "quote",
        "conversations",
        "readyz",
        "reprocess",
    ] {
        assert_eq!(status(ok), 200, "{ok}: {results:?}");
    }
    assert_eq!(status("meta-unsigned"), 401);
    assert_eq!(status("events-w1-key-w2-event"), 403);
}
