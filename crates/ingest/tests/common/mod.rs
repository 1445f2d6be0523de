//! What the golden tests share: the `.expected` format and the runner that
//! compares (or, with `UPDATE_GOLDEN=1`, rewrites) every body of a folder.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use wabill_engine::event::{Event, EventBody, TemplateCategory};
use wabill_ingest::{InputError, Parsed};

/// One line per event, e.g.
/// `status wamid.X waba=… phone=… user=… ts=2025-06-28T20:34:48Z status=failed`.
pub fn render_event(e: &Event<'_>) -> String {
    let mut line = format!(
        "{} {} waba={} phone={} user={} ts={}",
        e.kind_str(),
        e.id,
        e.waba,
        e.phone,
        e.user,
        e.ts.rfc3339()
    );
    if let Some(bsuid) = e.bsuid() {
        let _ = write!(line, " user_id={bsuid}");
    }
    if let Some(group) = e.group() {
        let _ = write!(line, " group={group}");
    }
    match &e.body {
        EventBody::Inbound { referral } => {
            let _ = write!(line, " referral={referral}");
        }
        EventBody::Outbound { template } => {
            let _ = write!(
                line,
                " template={}",
                template.map_or("none", TemplateCategory::as_str)
            );
        }
        EventBody::Status(status) => {
            let _ = write!(line, " status={}", status.as_str());
        }
    }
    if let Some(v) = &e.verdict {
        let _ = write!(line, " meta[{}]", render_verdict(v));
    }
    line
}

/// A verdict's fields, `key=value` for each one given.
pub fn render_verdict(v: &wabill_engine::Verdict<'_>) -> String {
    let mut parts = Vec::new();
    if let Some(b) = v.billable {
        parts.push(format!("billable={b}"));
    }
    for (key, value) in [
        ("model", &v.pricing_model),
        ("category", &v.category),
        ("type", &v.pricing_type),
        ("conversation", &v.conversation_id),
        ("origin", &v.origin),
        ("cost", &v.cost),
    ] {
        if let Some(value) = value {
            parts.push(format!("{key}={value}"));
        }
    }
    if let Some(e) = v.expires {
        parts.push(format!("expires={}", e.rfc3339()));
    }
    parts.join(" ")
}

/// What a `.expected` file holds: one line per event, then
/// `IGNORED <kind> <count>` per kind of ignored item and
/// `QUARANTINED <path>: <reason>` per quarantined item; `(no events)` for
/// an accepted body that yields none of these, or `REJECTED: <reason>` for
/// a body refused whole.
pub fn render<T>(result: &Result<T, InputError>, parsed: &Parsed<'_>) -> String {
    let mut text = String::new();
    match result {
        Ok(_) if parsed.events.is_empty() && parsed.is_clean() => text.push_str("(no events)\n"),
        Ok(_) => text.push_str(&render_items(parsed)),
        Err(e) => {
            let _ = writeln!(text, "REJECTED: {e}");
            // Parsers promise to add nothing on error; if one ever does,
            // the golden shows it.
            for line in render_items(parsed).lines() {
                let _ = writeln!(text, "LEAKED: {line}");
            }
        }
    }
    text
}

/// The events, ignored and quarantined items of `parsed`, a line each.
pub fn render_items(parsed: &Parsed<'_>) -> String {
    let mut text = String::new();
    for e in &parsed.events {
        text.push_str(&render_event(e));
        text.push('\n');
    }
    for (kind, n) in &parsed.ignored {
        let _ = writeln!(text, "IGNORED {kind} {n}");
    }
    for q in &parsed.quarantined {
        let _ = writeln!(text, "QUARANTINED {}: {}", q.path, q.reason);
    }
    text
}

/// Runs every `<name>.json` of `dir` (at least `min` of them) through
/// `parse(name, body, failures)`, which returns the rendered output, and
/// compares it with `<name>.expected`; each `.expected` must have its body.
/// Panics listing every failure.
pub fn check_goldens(
    dir: &Path,
    min: usize,
    mut parse: impl FnMut(&str, &str, &mut Vec<String>) -> String,
) {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut bodies: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the golden folder exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    bodies.sort();
    assert!(
        bodies.len() >= min,
        "expected the golden bodies, found {}",
        bodies.len()
    );
    let mut failures = Vec::new();
    for path in &bodies {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name")
            .to_owned();
        let body = std::fs::read_to_string(path).expect("readable golden body");
        // The stored body must itself be JSON: a rejection must come from
        // what the body says, not from a broken fixture.
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
            failures.push(format!("{name}: the .json file is not valid JSON: {e}"));
            continue;
        }
        let actual = parse(&name, &body, &mut failures);
        let expected_path = path.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual).expect("writable .expected");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}: output differs from {name}.expected\n--- expected\n{expected}--- actual\n{actual}"
            )),
            Err(e) => failures.push(format!(
                "{name}: cannot read {name}.expected ({e}); run with UPDATE_GOLDEN=1 and review it"
            )),
        }
    }
    // Every expectation belongs to a body.
    for entry in std::fs::read_dir(dir).expect("the golden folder exists") {
        let path = entry.expect("readable directory entry").path();
        if path.extension().is_some_and(|e| e == "expected")
            && !path.with_extension("json").exists()
        {
            failures.push(format!("{}: no matching .json", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
