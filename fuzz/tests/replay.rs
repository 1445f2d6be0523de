//! Replays the committed seeds and reproducers through the harnesses without
//! libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml`. A reproducer
//! under regressions/<target>/ fails this test until the bug is fixed.

use std::path::Path;

/// Runs every file of seeds/<target>/ and regressions/<target>/; returns
/// (file name, what `run` returned) for the seeds.
fn replay<T>(target: &str, run: fn(&[u8]) -> T) -> Vec<(String, T)> {
    let mut results = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths {
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let data = std::fs::read(&path).unwrap_or_default();
            eprintln!("{target}: {}", path.display());
            let result = run(&data);
            if dir == "seeds" {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                results.push((name.into_owned(), result));
            }
        }
    }
    results
}

/// The seeds that hold valid traffic must get through to billing, or the
/// fuzzer starts from nothing but rejections.
fn assert_reaches_engine(results: &[(String, u64)], valid: &[&str]) {
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
fn cloud_api() {
    let results = replay("cloud_api", |d| {
        wabill_fuzz::event_pipeline(d, wabill_ingest::Route::default())
    });
    assert_reaches_engine(
        &results,
        &["6.3", "6.4", "-filled", "6.5e", "6.6", "6.7", "gen-"],
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

#[test]
fn rate_card() {
    replay("rate_card", wabill_fuzz::rate_card);
}
