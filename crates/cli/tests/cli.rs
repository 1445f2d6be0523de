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
    insta::assert_snapshot!(out.stdout);
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
fn a_body_s_bad_items_are_reported_as_quarantined_and_its_good_ones_rated() {
    let dir = Dir::new();
    // A good delivered status, a payment (ignored), one with no time, and
    // one to a user whose number has no country (checked after reading).
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"P1"},"statuses":[{"id":"wamid.good","status":"delivered","timestamp":"1646647322","recipient_id":"2348031234567"},{"id":"pay1","from":"2348031234567","status":"captured","timestamp":"1646647323","type":"payment"},{"id":"wamid.bad","status":"delivered","timestamp":"soon","recipient_id":"2348031234567"},{"id":"wamid.nowhere","status":"delivered","timestamp":"1646647324","recipient_id":"999123"}]}},{"field":"calls","value":{"calls":[]}}]}]}"#;
    let mut text = String::from(EXAMPLE);
    text.push_str(body);
    text.push('\n');
    dir.file("bodies.ndjson", &text);
    let out = dir.run(&["invoice", "--format", "json", "bodies.ndjson"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for (path, reason) in [
        ("statuses[2]", "`timestamp` \"soon\""),
        (
            "statuses[3]",
            "user \"999123\" is not an international phone number",
        ),
    ] {
        let expected =
            format!("bodies.ndjson:4: entry[0].changes[0].value.{path}: quarantined: {reason}");
        assert!(
            out.stderr.lines().any(|l| l.starts_with(&expected)),
            "{expected}\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("ignored: calls 1, payment 1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("2 items of bodies quarantined"),
        "{}",
        out.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (doc["rejected"].as_u64(), doc["quarantined"].as_u64()),
        (Some(0), Some(2))
    );
    // The good status joined the example's conversation (a duplicate id
    // would have been counted): the body was not rejected whole.
    assert_eq!(doc["duplicates"], 0);
    let conversations = dir.run(&["conversations", "bodies.ndjson"]);
    assert_eq!(conversations.code, 1);
    assert!(
        conversations.stdout.contains(r#""opened_by":"wamid.good""#),
        "{}",
        conversations.stdout
    );
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
    assert_eq!(
        conv.stdout.lines().skip(1).collect::<Vec<_>>(),
        [
            "W1,P1,447400123456,2022-03-07T09:00:02Z,2022-03-08T09:00:02Z,cbp-2022,business_initiated,United Kingdom,free_tier,0.0647,wamid.t1,1",
            "W1,P1,5511999990001,2022-03-08T10:00:30Z,2022-03-09T10:00:30Z,cbp-2022,user_initiated,Brazil,free_tier,0.0300,wamid.o2,1",
        ]
    );
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
        ("[billing]\nbasis = \"ours\"\n", "billing.basis"),
        (
            "[[waba]]\nid = \"W1\"\nbusiness_country = \"India\"\n",
            "waba[0].business_country",
        ),
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

/// Issue 17 point 6: a configuration error names where it is, never the
/// text of a secret's line nor the secret itself.
#[test]
fn configuration_errors_never_print_a_secret() {
    let dir = Dir::new();
    dir.file("events.ndjson", EXAMPLE);
    for (config, at) in [
        (
            "[meta]\napp_secret = \"s3cr3t-9f2a\nverify_token = \"v\"\n",
            "line 2",
        ),
        ("[meta]\napp_secret = 93817361\n", "line 2"),
        ("[meta]\nverify_token = s3cr3t-9f2a\n", "line 2"),
        (
            "[[route]]\nname = \"r\"\nprovider = \"zendesk\"\nsecret = [\"93817361\", 1\n",
            "line 4",
        ),
    ] {
        dir.file("bad.toml", config);
        for command in [&["invoice", "events.ndjson"][..], &["serve"][..]] {
            let mut args = vec!["--config", "bad.toml"];
            args.extend_from_slice(command);
            let out = dir.run(&args);
            // The batch commands read the service's tables only as TOML.
            let refused = command == ["serve"] || out.code != 0;
            if refused {
                assert_eq!(out.code, 2, "{config}: {}", out.stderr);
                assert!(out.stderr.contains(at), "{config}: {}", out.stderr);
            }
            for secret in ["s3cr3t-9f2a", "93817361"] {
                assert!(!out.stderr.contains(secret), "{config}: {}", out.stderr);
            }
        }
    }
    // Elsewhere toml's words stay whole: they name what is wrong.
    dir.file("bad.toml", "[platform]\ncurrency = 5\n");
    let out = dir.run(&["--config", "bad.toml", "invoice", "events.ndjson"]);
    assert!(
        out.stderr.contains("line 2") && out.stderr.contains('5'),
        "{}",
        out.stderr
    );
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

/// A month that spans two eras (pmp-2025 moved to 2025-07-15): a cbp-2023
/// conversation, then messages priced one by one.
const TWO_ERAS: &str = r#"{"type":"outbound","id":"wamid.c1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-07-10T09:00:00Z","template":{"category":"marketing"}}
{"type":"status","id":"wamid.c1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-07-10T09:00:01Z","status":"delivered"}
{"type":"outbound","id":"wamid.m1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-07-20T09:00:00Z","template":{"category":"marketing"}}
{"type":"status","id":"wamid.m1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-07-20T09:00:01Z","status":"delivered"}
{"type":"inbound","id":"wamid.i1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-07-20T10:00:00Z"}
{"type":"status","id":"wamid.m2","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-07-20T10:05:00Z","status":"read"}
{"type":"outbound","id":"wamid.m3","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-07-20T10:10:00Z","template":{"category":"utility"}}
{"type":"status","id":"wamid.m3","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-07-20T10:10:01Z","status":"delivered"}
"#;

#[test]
fn an_invoice_month_spanning_two_eras_shows_conversations_and_messages() {
    let dir = Dir::new();
    dir.file("events.ndjson", TWO_ERAS);
    dir.file(
        "wabill.toml",
        r#"[eras]
timeline = [
  { era = "cbp-2022", from = "2022-02-01" },
  { era = "cbp-2023", from = "2023-06-01" },
  { era = "pmp-2025", from = "2025-07-15" },
  { era = "pmp-2026", from = "2026-10-01" },
]
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
    // Brazil: cbp-2023 card of 2025-04-01 (marketing 0.0625), pmp card of
    // 2025-07-01 (marketing 0.0625, utility 0.0068); service is free.
    // The fee (0 here) is counted on the paid conversation and message.
    insta::assert_snapshot!(out.stdout);

    let records = dir.run(&[
        "--config",
        "wabill.toml",
        "conversations",
        "--format",
        "ndjson",
        "events.ndjson",
    ]);
    assert_eq!(records.code, 0, "{}", records.stderr);
    let lines: Vec<&str> = records.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", records.stdout);
    assert!(lines[0].contains(r#""era":"cbp-2023","category":"marketing""#));
    assert!(lines[0].contains(r#""end":"2025-07-11T09:00:01Z""#));
    // Per-message records: end equals start, one message each.
    assert!(lines[3].contains(
        r#""start":"2025-07-20T10:10:01Z","end":"2025-07-20T10:10:01Z","era":"pmp-2025","category":"utility","market":"Brazil","free":"free_customer_service","unit_price":"0.0068","opened_by":"wamid.m3","messages":1"#
    ), "{}", lines[3]);
}

/// August 2025 (pmp-2025 by date): a marketing template, then a user
/// message answered free-form and with a utility template.
const AUGUST_2025: &str = r#"{"type":"outbound","id":"wamid.m1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-08-04T09:00:00Z","template":{"category":"marketing"}}
{"type":"status","id":"wamid.m1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-08-04T09:00:01Z","status":"delivered"}
{"type":"inbound","id":"wamid.i1","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-08-04T10:00:00Z"}
{"type":"status","id":"wamid.m2","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-08-04T10:05:00Z","status":"read"}
{"type":"outbound","id":"wamid.m3","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-08-04T10:10:00Z","template":{"category":"utility"}}
{"type":"status","id":"wamid.m3","waba":"W1","phone":"P1","user":"5511999990001","ts":"2025-08-04T10:10:01Z","status":"delivered"}
"#;

#[test]
fn whatif_rates_the_same_traffic_under_each_era_side_by_side() {
    let dir = Dir::new();
    dir.file("events.ndjson", AUGUST_2025);
    let out = dir.run(&[
        "whatif",
        "--era",
        "cbp-2023",
        "--era",
        "pmp-2026",
        "--format",
        "csv",
        "events.ndjson",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // cbp-2023 (card of 2025-04-01): a marketing conversation that the
    // free-form reply joins, then a utility one. pmp-2026 (its own card of
    // 2026-10-01, not the July one in force in August 2025, which has no
    // service rate): each message, the service one in the phone's monthly
    // allowance, utility charged inside the window.
    assert_eq!(
        out.stdout,
        "market,category,era,unit,quantity,free_tier,free_entry_point,free_customer_service,paid,meta_amount\n\
         Brazil,marketing,cbp-2023,conversations,1,0,0,0,1,0.0625\n\
         Brazil,marketing,pmp-2026,messages,1,0,0,0,1,0.0625\n\
         Brazil,service,pmp-2026,messages,1,1,0,0,0,0.0000\n\
         Brazil,utility,cbp-2023,conversations,1,0,0,0,1,0.0080\n\
         Brazil,utility,pmp-2026,messages,1,0,0,0,1,0.0068\n"
    );
    let table = dir.run(&[
        "whatif",
        "--era",
        "cbp-2023",
        "--era",
        "pmp-2026",
        "--format",
        "table",
        "events.ndjson",
    ]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let total = table
        .stdout
        .lines()
        .find(|l| l.contains("Meta total"))
        .unwrap_or_default()
        .split_whitespace()
        .filter(|w| w.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .collect::<Vec<_>>();
    assert_eq!(total, ["2", "0.0705", "3", "0.0693"], "{}", table.stdout);

    let bad = dir.run(&["whatif", "--era", "nbp-2021", "events.ndjson"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stdout.is_empty());
    assert!(bad.stderr.contains("unknown era"), "{}", bad.stderr);
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
    assert_eq!(cloud.code, 0, "{}", cloud.stderr);
    dir.file("cloud.ndjson", &cloud.stdout);
    let out = dir.run(&["invoice", "--format", "json", "cloud.ndjson"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(!doc["invoices"].as_array().unwrap().is_empty());
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

/// A shipped card, by absolute path (tests run in a temporary directory).
fn shipped_card(name: &str) -> String {
    format!("{}/../../data/rates/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The pmp card in force on `date`, rewritten in Meta's published layout:
/// human-written headers, a Currency column, `$` prices, and Rest of Africa
/// utility as three tier columns with thousands separators.
fn meta_layout_card(dir: &Dir, date: &str, drop_market: Option<&str>) -> String {
    let show = dir.run(&["rates", "show", "--at", date, "--format", "csv"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let columns = ["marketing", "utility", "authentication", "service"];
    let mut rows: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in show.stdout.lines().filter(|l| l.starts_with("pmp,")) {
        let f: Vec<&str> = line.split(',').collect();
        let (market, category, price, tier_from) = (f[3], f[4], f[5], f[6]);
        if Some(market) == drop_market || !tier_from.is_empty() {
            continue;
        }
        let row = rows
            .entry(market.to_owned())
            .or_insert_with(|| vec![String::new(); 7]);
        if let Some(i) = columns.iter().position(|c| *c == category) {
            row[i] = format!("${price}");
        }
    }
    if let Some(row) = rows.get_mut("Rest of Africa") {
        row[4] = "$0.0040".into();
        row[5] = "0.0038".into();
        row[6] = "0.0036".into();
    }
    let mut text = String::from(
        "Market,Currency,Marketing,Utility,Authentication,Service,\"Utility tier 0-100,000\",\"Utility tier 100,001:1,000,000\",\"Utility tier 1,000,001+\"\n",
    );
    for (market, cells) in rows {
        text.push_str(&format!("{market},USD,{}\n", cells.join(",")));
    }
    text
}

#[test]
fn rates_import_reports_a_shipped_card_with_its_volume_tiers() {
    let dir = Dir::new();
    let card = shipped_card("meta-pmp_USD_2026-10-01.csv");
    let out = dir.run(&["rates", "import", &card]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    for line in [
        "valid: yes",
        "layout: long",
        "family: pmp (from file name)",
        "currency: USD (from file name)",
        "effective_from: 2026-10-01 (from file name)",
        "next card: none",
        "market map: 2026-10-01 (meta-markets-2026-10-01.csv), 47 markets with Other",
        "markets priced: 47",
        "categories required: authentication, marketing, service, utility",
        "tiered: 1",
        "  Rest of Africa, utility: 0-100000 0.0040; 100001-1000000 0.0038; 1000001-4500000 0.0036; 4500001-40000000 0.0034; 40000001-80000000 0.0032; 80000001+ 0.0030",
        "replaces: meta-pmp_USD_2026-10-01.csv",
        "warnings: 1",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{line:?} in\n{}",
            out.stdout
        );
    }
    // An earlier card says until when it applies.
    let out = dir.run(&[
        "rates",
        "import",
        &shipped_card("meta-pmp_USD_2026-04-01.csv"),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("applies: from 2026-04-01 to 2026-06-30\nnext card: 2026-07-01 meta-pmp_USD_2026-07-01.csv\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn rates_import_names_the_market_and_category_a_meta_card_misses() {
    let dir = Dir::new();
    dir.file(
        "acme.csv",
        &meta_layout_card(&dir, "2026-10-01", Some("Kuwait")),
    );
    let out = dir.run(&[
        "rates",
        "import",
        "--family",
        "pmp",
        "--effective-from",
        "2026-10-01",
        "--out",
        "out.csv",
        "acme.csv",
    ]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    {
        let problem = "acme.csv: no rate for market \"Kuwait\", categories authentication, marketing, service, utility (market map of 2026-10-01)";
        assert!(
            out.stderr.contains(problem),
            "{problem:?} in\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .starts_with("wabill: acme.csv is not a valid rate card (1 problem)"),
        "{}",
        out.stderr
    );
    assert!(
        !dir.0.path().join("out.csv").exists(),
        "an invalid card is not written"
    );
    // The same card with Kuwait is valid.
    dir.file("acme.csv", &meta_layout_card(&dir, "2026-10-01", None));
    let out = dir.run(&[
        "rates",
        "import",
        "--family",
        "pmp",
        "--effective-from",
        "2026-10-01",
        "acme.csv",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("layout: meta\n"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("currency: USD (from Currency column)\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn rates_import_refuses_a_bad_tier_ladder() {
    let dir = Dir::new();
    let card = meta_layout_card(&dir, "2026-10-01", None).replace(
        "Utility tier 100,001:1,000,000",
        "Utility tier 100,002:1,000,000",
    );
    dir.file("ladder.csv", &card);
    let out = dir.run(&[
        "rates",
        "import",
        "--family",
        "pmp",
        "--effective-from",
        "2026-10-01",
        "ladder.csv",
    ]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("market \"Rest of Africa\", category utility: gap between bands 0-100000 and 100002-1000000 (the next band must start at 100001)"),
        "{}",
        out.stderr
    );
    // In the long layout, and through the configuration too.
    dir.file(
        "my-pmp_USD_2026-10-01.csv",
        "market,category,price,tier_from,tier_to\nBrazil,utility,0.0080,1,1000\nBrazil,utility,0.0070,900,\nBrazil,marketing,0.0600,1,\n",
    );
    let out = dir.run(&["rates", "import", "my-pmp_USD_2026-10-01.csv"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("my-pmp_USD_2026-10-01.csv, line 3: market \"Brazil\", category utility: bands 1-1000 and 900+ overlap"), "{}", out.stderr);
    assert!(out.stderr.contains("my-pmp_USD_2026-10-01.csv, line 4: market \"Brazil\", category marketing: volume tiers are only for utility and authentication (rules C4)"), "{}", out.stderr);
    dir.file(
        "wabill.toml",
        "[rates]\ncards = [\"my-pmp_USD_2026-10-01.csv\"]\n",
    );
    let out = dir.run(&["--config", "wabill.toml", "rates", "list"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("rates.cards[0]: ")
            && out.stderr.contains("bands 1-1000 and 900+ overlap"),
        "{}",
        out.stderr
    );
}

#[test]
fn rates_import_out_writes_a_card_the_configuration_reads_alike() {
    let dir = Dir::new();
    let card = meta_layout_card(&dir, "2026-10-01", None)
        .replace("Brazil,USD,$0.0625", "Brazil,USD,$0.07000");
    assert!(card.contains("$0.07000"));
    dir.file("acme.csv", &card);
    let out = dir.run(&[
        "rates",
        "import",
        "--family",
        "pmp",
        "--effective-from",
        "2026-10-01",
        "--out",
        "acme-long.csv",
        "acme.csv",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.ends_with("written: acme-long.csv\n"),
        "{}",
        out.stdout
    );
    let written = std::fs::read_to_string(dir.0.path().join("acme-long.csv")).unwrap();
    assert!(
        written.starts_with("# family: pmp\n# currency: USD\n# effective_from: 2026-10-01\nmarket,category,price,tier_from,tier_to\n"),
        "{written}"
    );
    assert!(
        written.contains("\nBrazil,marketing,0.07000,,\n"),
        "{written}"
    );
    // The original through the configuration (its Currency column says
    // USD), then the written card: the same rates.
    dir.file(
        "original.toml",
        "[rates]\ncards = [{ path = \"acme.csv\", family = \"pmp\", effective_from = \"2026-10-01\" }]\n",
    );
    dir.file("written.toml", "[rates]\ncards = [\"acme-long.csv\"]\n");
    let show = |config: &str| {
        let out = dir.run(&[
            "--config",
            config,
            "rates",
            "show",
            "--at",
            "2026-10-15",
            "--format",
            "csv",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        // Without the source column, which names the file.
        out.stdout
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.remove(2);
                f.join(",")
            })
            .collect::<Vec<_>>()
    };
    let (original, written) = (show("original.toml"), show("written.toml"));
    assert_eq!(original, written);
    assert!(original.contains(&"pmp,2026-10-01,Brazil,marketing,0.07000,,".to_owned()));
    assert!(
        original
            .contains(&"pmp,2026-10-01,Rest of Africa,utility,0.0038,100001,1000000".to_owned())
    );
    assert!(original.contains(&"pmp,2026-10-01,Rest of Africa,utility,0.0036,1000001,".to_owned()));
}

// ---- rates import agrees with what invoice can bill ----

/// A shipped card's text.
fn shipped(name: &str) -> String {
    std::fs::read_to_string(shipped_card(name)).unwrap()
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

#[test]
fn conversation_records_carry_meta_s_verdict_on_their_opening_message() {
    let dir = Dir::new();
    // 2026 real traffic (webhook-shapes-2026.md 4b), then the same status
    // as a normalized line with flat `meta` keys for another message.
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"W1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"P1"},"statuses":[{"id":"wamid.B","status":"delivered","timestamp":"1778239358","recipient_id":"5521987930121","conversation":{"id":"224f9f2cb8c7b19b80aba593aa84bdad","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular","cost":{"amount":0.0068,"currency":"USD"}}}]},"field":"messages"}]}]}"#;
    let line = r#"{"type":"status","id":"wamid.N","waba":"W1","phone":"P1","user":"5521987930121","ts":"2026-05-09T12:00:00Z","status":"delivered","meta":{"billable":false,"category":"service","pricing_model":"PMP","pricing_type":"free_customer_service"}}"#;
    dir.file("priced.ndjson", &format!("{body}\n{line}\n"));
    let out = dir.run(&["conversations", "--format", "ndjson", "priced.ndjson"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{}", out.stdout);
    assert_eq!(
        records[0]["meta"],
        serde_json::json!({"billable": true, "category": "utility", "conversation_id": "224f9f2cb8c7b19b80aba593aa84bdad", "cost": "0.0068 USD", "origin": "utility", "pricing_model": "PMP", "pricing_type": "regular"})
    );
    assert_eq!(
        records[1]["meta"],
        serde_json::json!({"billable": false, "category": "service", "pricing_model": "PMP", "pricing_type": "free_customer_service"})
    );
    // A record whose messages carried no verdict has no `meta`.
    dir.file("plain.ndjson", EXAMPLE);
    let plain = dir.run(&["conversations", "--format", "ndjson", "plain.ndjson"]);
    assert_eq!(plain.stdout.lines().count(), 1, "{}", plain.stdout);
    assert!(!plain.stdout.contains("meta"), "{}", plain.stdout);
}

/// Rules F3 (issue 16): with no outbound record, a delivered message takes
/// its category from Meta's verdict; without either it is a non-template
/// (free service) message, as before.
#[test]
fn a_delivery_without_an_outbound_record_takes_meta_s_category() {
    let dir = Dir::new();
    let status = |id: &str, pricing: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P1"}},"statuses":[{{"id":"{id}","status":"delivered","timestamp":"1756000000","recipient_id":"5511999990001"{pricing}}}]}}}}]}}]}}"#
        )
    };
    let priced = status(
        "wamid.mkt",
        r#","pricing":{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}"#,
    );
    let bare = status("wamid.bare", "");
    dir.file("webhooks.ndjson", &format!("{priced}\n{bare}\n"));
    let out = dir.run(&["invoice", "--format", "json", "webhooks.ndjson"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let invoice = &doc["invoices"][0];
    assert_eq!(invoice["messages"]["total"], 2, "{invoice}");
    let lines = invoice["lines"].as_array().unwrap();
    let marketing = lines.iter().find(|l| l["category"] == "marketing");
    assert_eq!(
        marketing.map(|l| (l["quantity"].as_u64(), l["market"].as_str())),
        Some((Some(1), Some("Brazil"))),
        "{invoice}"
    );
    assert!(
        marketing.is_some_and(|l| l["unit_price"] != "0"),
        "{invoice}"
    );
    let service = lines.iter().find(|l| l["category"] == "service");
    assert_eq!(
        service.map(|l| l["quantity"].as_u64()),
        Some(Some(1)),
        "{invoice}"
    );
}

#[test]
fn the_billing_basis_switch_bills_by_meta_s_verdict_and_business_country_prices_international() {
    let dir = Dir::new();
    // An outbound record says utility; Meta's status says it charged
    // marketing. An authentication template to India from a business in
    // the US (rules D6).
    let status = |id: &str, user: &str, pricing: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P1"}},"statuses":[{{"id":"{id}","status":"delivered","timestamp":"1756000000","recipient_id":"{user}"{pricing}}}]}}}}]}}]}}"#
        )
    };
    let outbound = |id: &str, user: &str, category: &str| {
        format!(
            r#"{{"type":"outbound","id":"{id}","waba":"W1","phone":"P1","user":"{user}","ts":1756000000,"template":{{"name":"t","category":"{category}"}}}}"#
        )
    };
    let events = [
        outbound("wamid.u", "5511999990001", "utility"),
        status(
            "wamid.u",
            "5511999990001",
            r#","pricing":{"billable":true,"pricing_model":"PMP","category":"marketing","type":"regular"}"#,
        ),
        outbound("wamid.otp", "919812345678", "authentication"),
        status("wamid.otp", "919812345678", ""),
    ];
    dir.file("events.ndjson", &(events.join("\n") + "\n"));
    let categories = |config: &str| -> Vec<String> {
        dir.file("c.toml", config);
        let out = dir.run(&[
            "--config",
            "c.toml",
            "invoice",
            "--format",
            "json",
            "events.ndjson",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let lines = doc["invoices"][0]["lines"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        lines
            .iter()
            .map(|l| format!("{} {} {}", l["category"], l["market"], l["unit_price"]))
            .collect()
    };
    assert_eq!(
        categories(""),
        [
            r#""utility" "Brazil" "0.0068""#,
            r#""authentication" "India" "0.0014""#
        ]
    );
    assert_eq!(
        categories(
            "[billing]\nbasis = \"meta\"\n[[waba]]\nid = \"W1\"\nbusiness_country = \"US\"\n"
        ),
        [
            r#""marketing" "Brazil" "0.0625""#,
            r#""authentication_international" "India" "0.0280""#
        ]
    );
}

/// Issue 16, rules F3 and V1–V3: a provider with only Meta's webhooks is
/// billed as one that also reports its outbound records, on either basis.
/// Each span crosses a switch: cbp-2022 to cbp-2023 (and the 72 h entry
/// point), cbp-2023 to per-message pricing, pmp-2025 to pmp-2026.
#[test]
fn a_webhooks_only_stream_bills_as_the_same_traffic_with_its_outbound_records() {
    let dir = Dir::new();
    dir.file("meta.toml", "[billing]\nbasis = \"meta\"\n");
    let invoices = |config: Option<&str>, file: &str| -> (serde_json::Value, String) {
        let mut args = Vec::new();
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        args.extend(["invoice", "--format", "json", file]);
        let out = dir.run(&args);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        (doc["invoices"].clone(), out.stderr)
    };
    for (start, format) in [
        ("2023-05-20", "cloud"),
        ("2025-06-20", "ndjson"),
        ("2025-06-20", "cloud"),
        ("2026-09-20", "cloud"),
    ] {
        let gen_args = [
            "gen", "--events", "12000", "--seed", "7", "--start", start, "--days", "20",
            "--format", format,
        ];
        let full = dir.run(&gen_args);
        let mut only = gen_args.to_vec();
        only.push("--webhooks-only");
        let only = dir.run(&only);
        assert_eq!((full.code, only.code), (0, 0), "{}", only.stderr);
        assert!(!only.stdout.contains("\"outbound\""), "{start} {format}");
        assert!(only.stdout.contains("\"pricing\""), "{start} {format}");
        dir.file("full.ndjson", &full.stdout);
        dir.file("only.ndjson", &only.stdout);
        let (expected, _) = invoices(None, "full.ndjson");
        assert!(expected.as_array().is_some_and(|a| !a.is_empty()));
        let (derived, stderr) = invoices(None, "only.ndjson");
        assert_eq!(
            derived, expected,
            "{start} {format}: derived from the verdicts"
        );
        let (meta, _) = invoices(Some("meta.toml"), "only.ndjson");
        assert_eq!(meta, expected, "{start} {format}: on Meta's basis");
        // Reconciled: Meta's verdicts say what wabill derives.
        let reconciled = dir.run(&["reconcile", "--format", "json", "only.ndjson"]);
        let doc: serde_json::Value = serde_json::from_str(&reconciled.stdout).unwrap();
        assert_eq!(doc["agree"], true, "{start} {format}");
        if format == "cloud" {
            // Payments and a group's sent statuses ignored; users whose
            // number is withheld stored (rules F9); nothing held.
            assert!(stderr.contains("group_status"), "{stderr}");
            assert!(stderr.contains("payment"), "{stderr}");
            assert!(!stderr.contains("quarantined"), "{stderr}");
        }
    }
}

/// Issue 16 point 6: `wabill reconcile`, message by message and against
/// an export of Meta's `pricing_analytics`.
#[test]
fn reconcile_lists_each_disagreement_and_compares_meta_s_analytics() {
    let dir = Dir::new();
    let status = |id: &str, user: &str, ts: i64, category: &str| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P1"}},"statuses":[{{"id":"{id}","status":"delivered","timestamp":"{ts}","recipient_id":"{user}","pricing":{{"billable":true,"pricing_model":"PMP","category":"{category}","type":"regular"}}}}]}}}}]}}]}}"#
        )
    };
    let outbound = |id: &str, user: &str, ts: i64, category: &str| {
        format!(
            r#"{{"type":"outbound","id":"{id}","waba":"W1","phone":"P1","user":"{user}","ts":{ts},"template":{{"name":"t","category":"{category}"}}}}"#
        )
    };
    // 2025-08-04: India, Meta agrees; Puerto Rico (+1 787), Meta agrees on
    // the message but its analytics count it in the US.
    let day = 1_754_265_600;
    let lines = [
        outbound("wamid.in", "919812345678", day + 3600, "marketing"),
        status("wamid.in", "919812345678", day + 3601, "marketing"),
        outbound("wamid.pr", "17875550100", day + 7200, "marketing"),
        status("wamid.pr", "17875550100", day + 7201, "marketing"),
    ];
    dir.file("events.ndjson", &(lines.join("\n") + "\n"));
    let agree = dir.run(&["reconcile", "--format", "json", "events.ndjson"]);
    assert_eq!(agree.code, 0, "{}", agree.stderr);
    let doc: serde_json::Value = serde_json::from_str(&agree.stdout).unwrap();
    assert_eq!(doc["agree"], true);
    assert_eq!(doc["reconciliations"][0]["messages"]["compared"], 2);

    let point = |country: &str, volume: u64| {
        format!(
            r#"{{"start":{day},"end":{},"country":"{country}","pricing_category":"MARKETING","pricing_type":"REGULAR","volume":{volume},"cost":0.01}}"#,
            day + 86_400
        )
    };
    let export = format!(
        r#"{{"pricing_analytics":{{"data":[{{"data_points":[{},{}]}}]}},"id":"W1"}}"#,
        point("IN", 1),
        point("US", 1)
    );
    dir.file("analytics.json", &export);
    let out = dir.run(&[
        "reconcile",
        "--format",
        "json",
        "--analytics",
        "analytics.json",
        "events.ndjson",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows: Vec<String> = doc["analytics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r["market"], r["category"], r["wabill"], r["meta"], r["class"]
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            r#""India" "marketing" 1 1 null"#,
            r#""North America" "marketing" 0 1 "plus1_plus7_market""#,
            r#""Rest of Latin America" "marketing" 1 0 "plus1_plus7_market""#,
        ]
    );
    let table = dir.run(&[
        "reconcile",
        "--format",
        "table",
        "--analytics",
        "analytics.json",
        "events.ndjson",
    ]);
    assert!(
        table.stdout.contains("Reconciliation W1 2025-08: agree"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("plus1_plus7_market"),
        "{}",
        table.stdout
    );

    // Meta recategorized the Indian template: listed with its rule.
    let recategorized = [
        outbound("wamid.in", "919812345678", day + 3600, "utility"),
        status("wamid.in", "919812345678", day + 3601, "marketing"),
    ];
    dir.file("recat.ndjson", &(recategorized.join("\n") + "\n"));
    let out = dir.run(&["reconcile", "--format", "table", "recat.ndjson"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("DIFFER"), "{}", out.stdout);
    assert!(out.stdout.contains("[recategorized]"), "{}", out.stdout);
    assert!(
        out.stdout.contains("C1: a message of its category"),
        "{}",
        out.stdout
    );

    // A broken export is a usage error naming the file and the point.
    dir.file("bad.json", r#"{"id":"W1","pricing_analytics":{"data":[{"data_points":[{"start":"soon","end":1,"volume":1}]}]}}"#);
    let bad = dir.run(&["reconcile", "--analytics", "bad.json", "events.ndjson"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("bad.json") && bad.stderr.contains("data_points[0]"),
        "{}",
        bad.stderr
    );
}
