//! `wabill rates import` agrees with what `wabill invoice` can bill: a card
//! it calls valid prices everything the eras need while it is in force, and
//! it refuses what billing could not use exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("wabill starts");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn run(&self, args: &[&str]) -> Run {
        run_in(self.0.path(), args)
    }
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../data/rates/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// D3: money is exact. `rust_decimal` rounds a rate with more than 28
/// decimal places as it parses it (to 0 here), so import refuses such a
/// rate and writes nothing.
#[test]
fn rates_import_refuses_a_rate_it_cannot_hold_exactly() {
    let dir = Dir::new();
    let card = shipped("meta-pmp_USD_2025-07-01.csv").replace(
        "Brazil,marketing,0.0625,,",
        "Brazil,marketing,0.00000000000000000000000000001,,",
    );
    assert!(card.contains("0.00000000000000000000000000001"));
    dir.file("my-pmp_USD_2025-08-01.csv", &card);
    let out = dir.run(&[
        "rates",
        "import",
        "--out",
        "written.csv",
        "my-pmp_USD_2025-08-01.csv",
    ]);
    let written = std::fs::read_to_string(dir.0.path().join("written.csv")).unwrap_or_default();
    let brazil_marketing = written
        .lines()
        .find(|l| l.starts_with("Brazil,marketing,"))
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        out.code, 2,
        "a rate that cannot be held exactly must be refused; got exit {} and the card written with {brazil_marketing:?}\n{}",
        out.code, out.stdout
    );
    assert!(
        out.stderr.contains(
            "rate \"0.00000000000000000000000000001\" has more decimal places than wabill can hold exactly (28)"
        ),
        "{}",
        out.stderr
    );
    assert!(written.is_empty());
}

/// D2 and B7: from 2024-11-01 every cbp-2023 service conversation is free
/// by rule and needs no rate, so a cbp-2023 card from that date without a
/// service column is valid, and `invoice` bills with it.
#[test]
fn rates_import_needs_no_service_rate_on_a_cbp2023_card_from_2024_11_01() {
    let dir = Dir::new();
    let card: String = shipped("meta-cbp-2023_USD_2025-04-01.csv")
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            assert_eq!(
                f.last(),
                Some(&if f[0] == "market" { "service" } else { f[4] })
            );
            f.truncate(4);
            format!("{}\n", f.join(","))
        })
        .collect();
    assert!(card.starts_with("market,marketing,utility,authentication\n"));
    dir.file("my-cbp-2023_USD_2025-04-01.csv", &card);

    // What the configuration does with it: a service conversation in May
    // 2025 is billed, free, at unit price 0, without error.
    dir.file(
        "wabill.toml",
        "[rates]\ncards = [\"my-cbp-2023_USD_2025-04-01.csv\"]\n",
    );
    dir.file(
        "events.ndjson",
        r#"{"type":"inbound","id":"wamid.i1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-05-07T10:00:00Z"}
{"type":"outbound","id":"wamid.o1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-05-07T10:01:00Z"}
{"type":"status","id":"wamid.o1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-05-07T10:01:00Z","status":"delivered"}
"#,
    );
    let billed = dir.run(&[
        "--config",
        "wabill.toml",
        "invoice",
        "--format",
        "json",
        "events.ndjson",
    ]);
    assert_eq!(billed.code, 0, "{}", billed.stderr);
    assert!(
        billed.stdout.contains("\"free_customer_service\": 1"),
        "{}",
        billed.stdout
    );

    // What import says about the same card.
    let out = dir.run(&["rates", "import", "my-cbp-2023_USD_2025-04-01.csv"]);
    assert_eq!(
        out.code,
        0,
        "import refuses a card that invoice bills without error:\n{}",
        out.stderr.lines().take(4).collect::<Vec<_>>().join("\n")
    );
}

/// C4 is a per-message rule: volume tiers in a cbp card would never be used,
/// and a cbp card priced only by bands could not bill. Import refuses it.
#[test]
fn rates_import_does_not_accept_tier_bands_as_the_only_price_of_a_cbp_card() {
    let dir = Dir::new();
    let shipped_card = shipped("meta-cbp-2023_USD_2025-04-01.csv");
    let mut card = String::from(
        "Market,Marketing,Utility tier 1-1000,Utility tier 1001+,Authentication,Service\n",
    );
    for row in shipped_card.lines().skip(1) {
        let f: Vec<&str> = row.split(',').collect();
        card.push_str(&format!(
            "{},{},{},{},{},{}\n",
            f[0], f[1], f[2], f[2], f[3], f[4]
        ));
    }
    dir.file("acme-cbp-2023_USD_2025-04-01.csv", &card);
    dir.file(
        "wabill.toml",
        "[rates]\ncards = [\"acme-cbp-2023_USD_2025-04-01.csv\"]\n",
    );
    dir.file(
        "events.ndjson",
        r#"{"type":"outbound","id":"wamid.o1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-05-07T10:01:00Z","template":{"name":"t","category":"utility"}}
{"type":"status","id":"wamid.o1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-05-07T10:01:00Z","status":"delivered"}
"#,
    );
    let import = dir.run(&["rates", "import", "acme-cbp-2023_USD_2025-04-01.csv"]);
    let billed = dir.run(&[
        "--config",
        "wabill.toml",
        "invoice",
        "--format",
        "json",
        "events.ndjson",
    ]);
    // Both refuse the card, naming why.
    let why = "volume tiers are only for per-message (pmp) cards (rules C4); this cbp-2023 card would never use them";
    assert_eq!(import.code, 2, "{}", import.stdout);
    assert!(import.stdout.is_empty());
    assert!(import.stderr.contains(why), "{}", import.stderr);
    assert_eq!(billed.code, 2);
    assert!(billed.stdout.is_empty());
    assert!(billed.stderr.contains(why), "{}", billed.stderr);
}

/// Section 1 lets a deployment move `pmp-2026`; section 5 charges service
/// at the card's rate. A pmp card must price service when pmp-2026 applies
/// on any day the card is in force, not only on its first day.
#[test]
fn rates_import_requires_service_when_pmp_2026_starts_while_the_card_is_in_force() {
    let dir = Dir::new();
    dir.file(
        "my-pmp_USD_2026-07-01.csv",
        &shipped("meta-pmp_USD_2026-07-01.csv"),
    );
    let timeline = "[eras]\ntimeline = [\n  { era = \"cbp-2022\", from = \"2022-02-01\" },\n  { era = \"cbp-2023\", from = \"2023-06-01\" },\n  { era = \"pmp-2025\", from = \"2025-07-01\" },\n  { era = \"pmp-2026\", from = \"2026-08-01\" },\n]\npmp_2026_free_service_per_phone = 0\n";
    dir.file("wabill.toml", timeline);
    dir.file(
        "events.ndjson",
        r#"{"type":"outbound","id":"wamid.o1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2026-08-10T10:01:00Z"}
{"type":"status","id":"wamid.o1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2026-08-10T10:01:00Z","status":"delivered"}
"#,
    );
    let billed = dir.run(&[
        "--config",
        "wabill.toml",
        "invoice",
        "--format",
        "json",
        "events.ndjson",
    ]);
    assert_eq!(billed.code, 2, "{}", billed.stdout);
    assert!(
        billed.stderr.contains("category service"),
        "{}",
        billed.stderr
    );
    let import = dir.run(&[
        "--config",
        "wabill.toml",
        "rates",
        "import",
        "my-pmp_USD_2026-07-01.csv",
    ]);
    assert_eq!(
        import.code,
        2,
        "import calls valid a card that cannot bill pmp-2026 service:\n{}",
        import
            .stdout
            .lines()
            .take(13)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        import.stderr.contains("category service"),
        "{}",
        import.stderr
    );
}
