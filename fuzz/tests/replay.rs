//! Replays the committed seeds and reproducers through the harnesses without
//! libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml`. A reproducer
//! under regressions/<target>/ fails this test until the bug is fixed.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths {
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            let data = std::fs::read(&path).unwrap_or_default();
            eprintln!("{target}: {}", path.display());
            run(&data);
        }
    }
}

#[test]
fn normalized() {
    replay("normalized", |d| {
        wabill_fuzz::event_pipeline(d, wabill_ingest::Route::default())
    });
}

#[test]
fn cloud_api() {
    replay("cloud_api", |d| {
        wabill_fuzz::event_pipeline(d, wabill_ingest::Route::default())
    });
}

#[test]
fn on_premises() {
    replay("on_premises", |d| {
        wabill_fuzz::event_pipeline(d, wabill_fuzz::ON_PREMISES_ROUTE)
    });
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
