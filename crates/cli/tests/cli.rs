//! End-to-end tests: the real `wabill` binary on files, standard input and
//! configuration, checking what a user sees (stdout, stderr, exit code).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wabill"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("wabill starts");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
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
        run_in(self.0.path(), args, None)
    }
}

/// events.md section 1's example: a Click to WhatsApp ad, a bot reply.
const EXAMPLE: &str = r#"{"type":"inbound","id":"wamid.in1","waba":"W1","phone":"P1","user":"2348031234567","ts":"2022-03-07T10:00:00Z","referral":{"source_type":"ad","source_id":"120226305854810726"}}
{"type":"outbound","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":"2022-03-07T10:02:00Z"}
{"type":"status","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":1646647322,"status":"delivered"}
"#;

/// A UK template outside any window, then a user-initiated session in Brazil.
const PAID: &str = r#"{"type":"outbound","id":"wamid.t1","waba":"W1","phone":"P1","user":"447400123456","ts":"2022-03-07T09:00:00Z","template":{"name":"delay","category":"utility"}}
{"type":"status","id":"wamid.t1","waba":"W1","phone":"P1","user":"447400123456","ts":"2022-03-07T09:00:02Z","status":"delivered"}
{"type":"inbound","id":"wamid.i2","waba":"W1","phone":"P1","user":"5511999990001","ts":"2022-03-08T10:00:00Z"}
{"type":"status","id":"wamid.o2","waba":"W1","phone":"P1","user":"5511999990001","ts":"2022-03-08T10:00:30Z","status":"read"}
"#;

#[test]
fn invoice_json_for_the_events_md_example() {
    let dir = Dir::new();
    dir.file("events.ndjson", EXAMPLE);
    let out = dir.run(&["invoice", "--format", "json", "events.ndjson"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = r#"{
  "invoices": [
    {
      "waba": "W1",
      "month": "2022-03",
      "timezone": "UTC",
      "currency": "USD",
      "conversations": {
        "total": 1,
        "free_tier": 0,
        "free_entry_point": 1,
        "free_customer_service": 0,
        "paid": 0
      },
      "messages": {
        "total": 0,
        "free_tier": 0,
        "free_entry_point": 0,
        "free_customer_service": 0,
        "paid": 0
      },
      "lines": [
        {
          "era": "cbp-2022",
          "market": "Nigeria",
          "category": "free_entry_point",
          "quantity": 1,
          "free_tier": 0,
          "free_entry_point": 1,
          "free_customer_service": 0,
          "paid": 0,
          "unit_price": "0",
          "meta_amount": "0"
        }
      ],
      "meta_total": "0",
      "platform_fee": {
        "unit": "0",
        "quantity": 0,
        "amount": "0"
      },
      "total": "0",
      "amount_due": "0.00"
    }
  ],
  "rejected": 0,
  "duplicates": 0
}
"#;
    assert_eq!(out.stdout, expected);
}

#[test]
fn json_is_the_default_when_stdout_is_not_a_terminal() {
    let dir = Dir::new();
    dir.file("events.ndjson", EXAMPLE);
    let out = dir.run(&["invoice", "events.ndjson"]);
    assert!(
        out.stdout.starts_with("{\n  \"invoices\""),
        "{}",
        out.stdout
    );
}

#[test]
fn platform_fee_plan_and_rounding_from_the_configuration() {
    let dir = Dir::new();
    dir.file("events.ndjson", PAID);
    dir.file(
        "wabill.toml",
        r#"
[platform]
currency = "USD"
fee_per_conversation = "0.0050"
fee_applies_to = "all"

[[waba]]
id = "W1"
timezone = "America/Sao_Paulo"
included_conversations = 1
plan = "yearly"

[eras]
pmp_2026_free_service_per_phone = 500
"#,
    );
    let out = dir.run(&[
        "--config",
        "wabill.toml",
        "invoice",
        "--format",
        "json",
        "events.ndjson",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let inv = &doc["invoices"][0];
    assert_eq!(inv["timezone"], "America/Sao_Paulo");
    assert_eq!(inv["conversations"]["free_tier"], 2);
    assert_eq!(inv["platform_fee"]["quantity"], 1);
    assert_eq!(inv["platform_fee"]["amount"], "0.0050");
    assert_eq!(inv["total"], "0.0050");
    assert_eq!(inv["amount_due"], "0.01");
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_the_rest_is_rated() {
    let dir = Dir::new();
    let mut text = String::from(EXAMPLE);
    text.push_str("\nnot json\n");
    text.push_str(r#"{"type":"inbound","id":"x","waba":"W1","phone":"P1","user":"55-11","ts":"2022-03-07T10:00:00Z"}"#);
    text.push('\n');
    text.push_str(r#"{"type":"inbound","id":"y","waba":"W1","phone":"P1","user":"5511999990001","ts":"2022-03-07"}"#);
    text.push('\n');
    text.push_str(r#"{"type":"inbound","id":"z","waba":"W1","phone":"P1","user":"999123","ts":"2022-03-07T10:00:00Z"}"#);
    text.push('\n');
    text.push_str(r#"{"type":"inbound","id":"old","waba":"W1","phone":"P1","user":"5511999990001","ts":"2021-12-31T10:00:00Z"}"#);
    text.push('\n');
    dir.file("mixed.ndjson", &text);
    let out = dir.run(&["invoice", "--format", "json", "mixed.ndjson"]);
    assert_eq!(out.code, 1);
    for (line, reason) in [
        (5, "not valid JSON"),
        (6, "`user` must be the user's number"),
        (7, "`ts` \"2022-03-07\" is not an RFC 3339 time"),
        (8, "user \"999123\" is not an international phone number"),
        (9, "no era applies"),
    ] {
        let expected = format!("mixed.ndjson:{line}: ");
        let found = out.stderr.lines().find(|l| l.starts_with(&expected));
        assert!(
            found.is_some_and(|l| l.contains(reason)),
            "line {line}: {}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("5 lines or bodies rejected"),
        "{}",
        out.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["rejected"], 5);
    assert_eq!(doc["invoices"][0]["conversations"]["free_entry_point"], 1);
}

#[test]
fn standard_input_and_mixed_shapes_with_on_premises_options() {
    let dir = Dir::new();
    let cloud = r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"P1"},"contacts":[{"profile":{"name":"Sheena"},"wa_id":"5511999990001"}],"messages":[{"from":"5511999990001","id":"wamid.c1","timestamp":"1646647200","type":"text","text":{"body":"hi"}}]},"field":"messages"}]}]}"#;
    let on_prem = r#"{"statuses":[{"id":"wamid.c2","recipient_id":"5511999990001","status":"delivered","timestamp":1646647260,"type":"message"}]}"#;
    let input = format!("{cloud}\n{on_prem}\n");
    let out = run_in(
        dir.0.path(),
        &["conversations", "--waba", "W1", "--phone", "P1", "-"],
        Some(&input),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "{\"waba\":\"W1\",\"phone\":\"P1\",\"user\":\"5511999990001\",\"start\":\"2022-03-07T10:01:00Z\",\"end\":\"2022-03-08T10:01:00Z\",\"era\":\"cbp-2022\",\"category\":\"user_initiated\",\"market\":\"Brazil\",\"free\":\"free_tier\",\"unit_price\":\"0.0300\",\"opened_by\":\"wamid.c2\",\"messages\":1}\n"
    );
    // Without --waba/--phone an On-Premises body cannot be placed.
    let out = run_in(
        dir.0.path(),
        &["invoice", "--format", "json", "-"],
        Some(&input),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("<stdin>:2: an On-Premises body carries no WABA or phone"),
        "{}",
        out.stderr
    );
}

#[test]
fn month_and_waba_filters_select_without_changing_the_free_tier() {
    let dir = Dir::new();
    let mut text = String::new();
    // Two March conversations for W1 and one for W2, one April for W1.
    for (i, (waba, ts)) in [
        ("W1", "2022-03-02T10:00:00Z"),
        ("W1", "2022-03-03T10:00:00Z"),
        ("W2", "2022-03-03T10:00:00Z"),
        ("W1", "2022-04-03T10:00:00Z"),
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&format!(
            "{{\"type\":\"status\",\"id\":\"m{i}\",\"waba\":\"{waba}\",\"phone\":\"P1\",\"user\":\"5511999990001\",\"ts\":\"{ts}\",\"status\":\"delivered\"}}\n"
        ));
    }
    dir.file("e.ndjson", &text);
    let all = dir.run(&["invoice", "--format", "json", "e.ndjson"]);
    let doc: serde_json::Value = serde_json::from_str(&all.stdout).unwrap();
    let keys: Vec<String> = doc["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["waba"].as_str().unwrap(),
                i["month"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(keys, ["W1 2022-03", "W1 2022-04", "W2 2022-03"]);
    let one = dir.run(&[
        "invoice", "--format", "json", "--month", "2022-03", "--waba", "W1", "e.ndjson",
    ]);
    let doc1: serde_json::Value = serde_json::from_str(&one.stdout).unwrap();
    assert_eq!(doc1["invoices"].as_array().unwrap().len(), 1);
    assert_eq!(doc1["invoices"][0], doc["invoices"][0]);
    let bad = dir.run(&["invoice", "--month", "2022-3", "e.ndjson"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stdout.is_empty());
}

#[test]
fn csv_and_table_formats() {
    let dir = Dir::new();
    dir.file("events.ndjson", PAID);
    let csv = dir.run(&["invoice", "--format", "csv", "events.ndjson"]);
    assert_eq!(csv.code, 0);
    let mut lines = csv.stdout.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("waba,month,timezone,currency,era,market,category")
    );
    assert_eq!(
        lines.next().unwrap(),
        "W1,2022-03,UTC,USD,cbp-2022,Brazil,user_initiated,,,1,1,0,0,0,0.0300,0.0000,0.0000,0.00"
    );
    let table = dir.run(&["invoice", "--format", "table", "events.ndjson"]);
    assert!(
        table.stdout.contains("Invoice W1 2022-03 (UTC, USD)"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("United Kingdom"));
    let conv = dir.run(&["conversations", "--format", "csv", "events.ndjson"]);
    assert!(conv.stdout.starts_with(
        "waba,phone,user,start,end,era,category,market,free,unit_price,opened_by,messages\n"
    ));
    assert_eq!(conv.stdout.lines().count(), 3);
}

#[test]
fn configuration_errors_exit_2_naming_the_key_with_nothing_on_stdout() {
    let dir = Dir::new();
    dir.file("events.ndjson", EXAMPLE);
    for (config, needle) in [
        (
            "[platform]\nfee_per_conversation = \"-0.01\"\n",
            "platform.fee_per_conversation",
        ),
        (
            "[platform]\nfee_per_conversation = 0.01\n",
            "platform.fee_per_conversation",
        ),
        (
            "[platform]\nfee_applies_to = \"some\"\n",
            "platform.fee_applies_to",
        ),
        ("[platform]\ncurrency = \"XYZ1\"\n", "platform.currency"),
        (
            "[[waba]]\nid = \"W1\"\ntimezone = \"Mars/Olympus\"\n",
            "waba[0].timezone",
        ),
        ("[[waba]]\nid = \"W1\"\nplan = \"weekly\"\n", "waba[0].plan"),
        (
            "[[waba]]\nid = \"W1\"\n[[waba]]\nid = \"W1\"\n",
            "waba[1].id",
        ),
        ("[platform]\nshoe_size = 42\n", "shoe_size"),
        (
            "[eras]\ntimeline = [{ era = \"cbp-2022\", from = \"2022-02-01\" }, { era = \"cbp-2023\", from = \"2022-01-01\" }]\n",
            "eras.timeline",
        ),
        (
            "[eras]\ntimeline = [{ era = \"nbp\", from = \"2021-01-01\" }]\n",
            "eras.timeline[0].era",
        ),
        ("[rates]\ncards = [\"missing.csv\"]\n", "rates.cards[0]"),
        (
            "[rates]\ncards = [{ path = \"x.csv\", famly = \"pmp\" }]\n",
            "rates.cards[0].famly: unknown key",
        ),
        (
            "[eras]\ntimeline = [{ era = \"cbp-2022\", from = \"2022-02-01\" }, { era = \"cbp-2022\", from = \"2022-03-01\" }]\n",
            "era cbp-2022 is listed twice",
        ),
    ] {
        dir.file("bad.toml", config);
        let out = dir.run(&[
            "--config",
            "bad.toml",
            "invoice",
            "--format",
            "json",
            "events.ndjson",
        ]);
        assert_eq!(out.code, 2, "{config}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{config}");
        assert!(out.stderr.contains(needle), "{config}: {}", out.stderr);
    }
    // The service's tables are ignored by the batch commands.
    dir.file(
        "service.toml",
        "[server]\nlisten = \"127.0.0.1:8080\"\n[meta]\napp_secret = \"x\"\n",
    );
    let out = dir.run(&[
        "--config",
        "service.toml",
        "invoice",
        "--format",
        "json",
        "events.ndjson",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_missing_rate_is_a_data_error_unless_outside_the_selection() {
    let dir = Dir::new();
    let april = "{\"type\":\"status\",\"id\":\"m9\",\"waba\":\"W1\",\"phone\":\"P1\",\"user\":\"5511999990001\",\"ts\":\"2022-04-07T09:00:00Z\",\"status\":\"delivered\"}\n";
    dir.file("events.ndjson", &format!("{PAID}{april}"));
    std::fs::create_dir_all(dir.0.path().join("cards")).unwrap();
    dir.file(
        "cards/thin-cbp-2022_USD_2022-03-01.csv",
        "market,business_initiated,user_initiated\nBrazil,0.0600,0.0350\n",
    );
    dir.file(
        "wabill.toml",
        "[rates]\ncards = [\"cards/thin-cbp-2022_USD_2022-03-01.csv\"]\n",
    );
    let out = dir.run(&[
        "--config",
        "wabill.toml",
        "invoice",
        "--format",
        "json",
        "events.ndjson",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("thin-cbp-2022_USD_2022-03-01.csv has no rate for market \"United Kingdom\", category business_initiated"),
        "{}",
        out.stderr
    );
    // April is priced (Brazil is on the card); March, outside the selection,
    // does not stop the run.
    let out = dir.run(&[
        "--config",
        "wabill.toml",
        "invoice",
        "--format",
        "json",
        "--month",
        "2022-04",
        "events.ndjson",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["invoices"][0]["lines"][0]["unit_price"], "0.0600");
}

#[test]
fn a_card_file_may_say_what_it_is_in_header_lines_and_zones_are_canonical() {
    let dir = Dir::new();
    dir.file("events.ndjson", PAID);
    std::fs::create_dir_all(dir.0.path().join("rates")).unwrap();
    dir.file(
        "rates/my-card.csv",
        "# family: cbp-2022\n# currency: USD\n# effective_from: 2022-03-01\nmarket,business_initiated,user_initiated\nBrazil,0.0600,0.0350\nUnited Kingdom,0.0700,0.0400\n",
    );
    dir.file(
        "wabill.toml",
        "[rates]\ncards = [\"rates/my-card.csv\"]\n[[waba]]\nid = \"W1\"\ntimezone = \"america/sao_paulo\"\n",
    );
    let out = dir.run(&[
        "--config",
        "wabill.toml",
        "conversations",
        "--format",
        "csv",
        "events.ndjson",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("United Kingdom,free_tier,0.0700"),
        "{}",
        out.stdout
    );
    let inv = dir.run(&[
        "--config",
        "wabill.toml",
        "invoice",
        "--format",
        "json",
        "events.ndjson",
    ]);
    assert!(
        inv.stdout.contains("\"timezone\": \"America/Sao_Paulo\""),
        "{}",
        inv.stdout
    );
}

#[test]
fn an_extra_market_map_and_card_from_the_configuration_apply() {
    let dir = Dir::new();
    dir.file(
        "events.ndjson",
        "{\"type\":\"status\",\"id\":\"m1\",\"waba\":\"W1\",\"phone\":\"P1\",\"user\":\"447911123456\",\"ts\":\"2022-03-07T09:00:00Z\",\"status\":\"delivered\"}\n",
    );
    dir.file("uk-map.csv", "region,market\n+44,United Kingdom\n");
    dir.file("wabill.toml", "[rates]\nmarkets = [\"uk-map.csv\"]\n");
    let out = dir.run(&[
        "--config",
        "wabill.toml",
        "conversations",
        "--format",
        "ndjson",
        "events.ndjson",
    ]);
    assert!(
        out.stdout.contains("\"market\":\"United Kingdom\""),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let plain = dir.run(&["conversations", "--format", "ndjson", "events.ndjson"]);
    assert!(
        plain.stdout.contains("\"market\":\"Other\""),
        "{}",
        plain.stdout
    );
}

#[test]
fn a_conversation_in_an_unsupported_era_is_an_error_not_a_price() {
    let dir = Dir::new();
    dir.file(
        "events.ndjson",
        "{\"type\":\"status\",\"id\":\"m1\",\"waba\":\"W1\",\"phone\":\"P1\",\"user\":\"5511999990001\",\"ts\":\"2023-07-01T09:00:00Z\",\"status\":\"delivered\"}\n",
    );
    let out = dir.run(&["invoice", "--format", "json", "events.ndjson"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("era cbp-2023 is not supported yet"),
        "{}",
        out.stderr
    );
}

#[test]
fn rates_list_and_show() {
    let dir = Dir::new();
    let list = dir.run(&["rates", "list"]);
    assert_eq!(list.code, 0);
    assert!(list.stdout.contains("meta-cbp-2022_USD_2022-02-01.csv"));
    // A card is in force until the day before the next card of its family.
    let june_2023 = list
        .stdout
        .lines()
        .find(|l| l.contains("meta-cbp-2023_USD_2023-06-01.csv"));
    assert!(
        june_2023.is_some_and(|l| l.contains("2024-06-30")),
        "{}",
        list.stdout
    );
    let show = dir.run(&["rates", "show", "--at", "2022-03-07", "--market", "Brazil"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.contains("cbp-2022 card in force on 2022-03-07"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("0.0500") && show.stdout.contains("0.0300"),
        "{}",
        show.stdout
    );
    let csv = dir.run(&[
        "rates",
        "show",
        "--at",
        "2022-03-07",
        "--market",
        "Brazil",
        "--format",
        "csv",
    ]);
    assert!(csv.stdout.contains("cbp-2022,2022-02-01,meta-cbp-2022_USD_2022-02-01.csv,Brazil,business_initiated,0.0500,,"), "{}", csv.stdout);
    let unknown = dir.run(&[
        "rates",
        "show",
        "--at",
        "2022-03-07",
        "--market",
        "Atlantis",
    ]);
    assert_eq!(unknown.code, 2);
}

#[test]
fn gen_is_deterministic_and_its_traffic_is_billable() {
    let dir = Dir::new();
    let a = dir.run(&["gen", "--events", "3000", "--seed", "7"]);
    let b = dir.run(&["gen", "--events", "3000", "--seed", "7"]);
    assert_eq!(a.code, 0);
    assert_eq!(a.stdout, b.stdout);
    dir.file("traffic.ndjson", &a.stdout);
    let out = dir.run(&["invoice", "--format", "json", "traffic.ndjson"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(!doc["invoices"].as_array().unwrap().is_empty());
    assert!(doc["duplicates"].as_u64().unwrap() > 0);
    let cloud = dir.run(&[
        "gen", "--events", "3000", "--seed", "7", "--format", "cloud",
    ]);
    dir.file("cloud.ndjson", &cloud.stdout);
    let out = dir.run(&["invoice", "--format", "json", "cloud.ndjson"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn demo_prints_a_month_of_invoices() {
    let dir = Dir::new();
    let out = dir.run(&["demo", "--events", "20000"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Invoice "), "{}", out.stdout);
    assert!(out.stdout.contains("Amount due:"));
}

#[test]
fn unreadable_input_is_an_error() {
    let dir = Dir::new();
    let out = dir.run(&["invoice", "nope.ndjson"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("cannot open nope.ndjson"),
        "{}",
        out.stderr
    );
}
