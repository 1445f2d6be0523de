//! Customers, plans and currencies (rules section 8, cli.md "Customers"),
//! on the cases of a chatbot platform's billing FAQ: the real binary,
//! `wabill invoice --by customer --format json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn wabill(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("wabill starts");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Traffic as normalized NDJSON.
#[derive(Default)]
struct Traffic {
    lines: Vec<String>,
    n: u32,
}

impl Traffic {
    fn next_user(&mut self, prefix: &str) -> String {
        self.n += 1;
        format!("{prefix}{:06}", self.n)
    }

    /// A template of `category` delivered to a new user at `ts` (second
    /// `:SS` left at 00, delivery 5 s later).
    fn template(&mut self, waba: &str, ts: &str, category: &str, user_prefix: &str) {
        let user = self.next_user(user_prefix);
        let id = format!("t{}", self.n);
        self.push(
            json!({"type": "outbound", "id": id, "waba": waba, "phone": "P1",
            "user": user, "ts": ts, "template": {"category": category}}),
        );
        self.push(
            json!({"type": "status", "id": id, "waba": waba, "phone": "P1",
            "user": user, "ts": ts.replace(":00Z", ":05Z"), "status": "delivered"}),
        );
    }

    /// `n` marketing templates to new Nigerian users on `day`.
    fn marketing(&mut self, waba: &str, day: &str, n: u32) {
        for i in 0..n {
            let ts = format!("{day}T{:02}:{:02}:00Z", 8 + i / 60 % 12, i % 60);
            self.template(waba, &ts, "marketing", "2348031");
        }
    }

    fn push(&mut self, v: Value) {
        self.lines.push(v.to_string());
    }

    fn text(&self) -> String {
        self.lines.join("\n") + "\n"
    }
}

/// Runs `invoice --by customer` with `config` on `traffic`; the JSON
/// document's invoices by month.
fn customer_invoices(config: &str, traffic: &Traffic, extra: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wabill.toml"), config).unwrap();
    std::fs::write(dir.path().join("events.ndjson"), traffic.text()).unwrap();
    let mut args = vec!["--config", "wabill.toml", "invoice", "--by", "customer"];
    args.extend_from_slice(extra);
    args.extend(["--format", "json", "events.ndjson"]);
    let out = wabill(dir.path(), &args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    doc["customer_invoices"].as_array().unwrap().clone()
}

fn month<'a>(invoices: &'a [Value], customer: &str, month: &str) -> &'a Value {
    invoices
        .iter()
        .find(|i| i["customer"] == customer && i["month"] == month)
        .unwrap_or_else(|| panic!("no invoice for {customer} {month}"))
}

fn extra(invoice: &Value) -> Vec<(String, u64, String)> {
    invoice["extra"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["unit_price"].as_str().unwrap().to_owned(),
                e["quantity"].as_u64().unwrap(),
                e["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn yearly_customer_price_change_on_1_march_prices_extra_volume_by_the_version_in_force() {
    let config = r#"
[[plan]]
id = "pro-yearly"
period = "year"
  [[plan.version]]
  from = "2026-01-01"
  price = "1200.00"
  included = 2
  unit_price = "0.0100"
  [[plan.version]]
  from = "2026-03-01"
  price = "1500.00"
  included = 2
  unit_price = "0.0200"

[[customer]]
id = "C1"
wabas = ["W1"]
subscriptions = [{ plan = "pro-yearly", from = "2026-01-01" }]
"#;
    let mut t = Traffic::default();
    t.marketing("W1", "2026-02-27", 5);
    t.marketing("W1", "2026-03-02", 4);
    let invoices = customer_invoices(config, &t, &[]);
    let months: Vec<&str> = invoices
        .iter()
        .map(|i| i["month"].as_str().unwrap())
        .collect();
    assert_eq!(
        months,
        ["2026-01", "2026-02", "2026-03"],
        "invoiced monthly"
    );
    // The year's price falls due when the year starts, at January's version.
    let jan = month(&invoices, "C1", "2026-01");
    assert_eq!(jan["subscription"][0]["amount"], "1200.00");
    assert_eq!(jan["subscription"][0]["period_to"], "2027-01-01");
    assert_eq!(jan["amount_due"], "1200.00");
    let feb = month(&invoices, "C1", "2026-02");
    assert_eq!(feb["subscription"], json!([]));
    assert_eq!(
        extra(feb),
        [("0.0100".to_owned(), 3, "0.0300".to_owned())],
        "5 paid messages, 2 included: 3 extra at February's price"
    );
    let mar = month(&invoices, "C1", "2026-03");
    assert_eq!(mar["subscription"], json!([]));
    assert_eq!(
        extra(mar),
        [("0.0200".to_owned(), 2, "0.0400".to_owned())],
        "from 1 March the new version's price"
    );
    assert_eq!(mar["included"][0]["used"], 2);
    assert_eq!(mar["included"][0]["left"], 0);
}

#[test]
fn monthly_customer_over_its_included_volume_pays_the_platform_price_on_the_extra() {
    let config = r#"
[[plan]]
id = "starter"
period = "month"
  [[plan.version]]
  from = "2026-01-01"
  price = "49.00"
  included = 3
  unit_price = "0.0050"
  unit_price_by_category = { utility = "0.0020" }

[[customer]]
id = "C1"
name = "Padaria"
wabas = ["W1"]
subscriptions = [{ plan = "starter", from = "2026-01-01" }]
"#;
    let mut t = Traffic::default();
    t.marketing("W1", "2026-11-03", 4);
    t.template("W1", "2026-11-04T09:00:00Z", "utility", "2348031");
    t.template("W1", "2026-11-04T09:01:00Z", "utility", "2348031");
    let invoices = customer_invoices(config, &t, &["--month", "2026-11"]);
    assert_eq!(invoices.len(), 1, "--month selects one");
    let nov = &invoices[0];
    assert_eq!(nov["subscription"][0]["amount"], "49.00");
    // Six paid messages in start order: three included, then one marketing
    // and two utility beyond.
    assert_eq!(nov["included"][0]["allowance"], 3);
    assert_eq!(nov["included"][0]["used"], 3);
    assert_eq!(nov["included"][0]["left"], 0);
    let mut lines = extra(nov);
    lines.sort();
    assert_eq!(
        lines,
        [
            ("0.0020".to_owned(), 2, "0.0040".to_owned()),
            ("0.0050".to_owned(), 1, "0.0050".to_owned())
        ]
    );
    let w1 = &nov["wabas"][0];
    assert_eq!(w1["included_units"], 3);
    assert_eq!(w1["extra_units"], 3);
    let pass: rust_decimal::Decimal = nov["pass_through"].as_str().unwrap().parse().unwrap();
    let platform: rust_decimal::Decimal = nov["platform_total"].as_str().unwrap().parse().unwrap();
    assert_eq!(platform, "49.0090".parse().unwrap());
    let total: rust_decimal::Decimal = nov["total"].as_str().unwrap().parse().unwrap();
    assert_eq!(total, pass + platform);
}

#[test]
fn two_wabas_of_one_customer_each_get_their_own_1000_free_conversations() {
    let config = r#"
[[plan]]
id = "per-conversation"
period = "month"
  [[plan.version]]
  from = "2023-01-01"
  unit_price = "0.0100"

[[customer]]
id = "C1"
wabas = ["W1", "W2"]
subscriptions = [{ plan = "per-conversation", from = "2023-01-01" }]
"#;
    // Under cbp-2022 every conversation may be one of the 1 000 free
    // (rules A5).
    let mut t = Traffic::default();
    t.marketing("W1", "2023-03-05", 1003);
    t.marketing("W2", "2023-03-05", 1001);
    let invoices = customer_invoices(config, &t, &[]);
    let mar = month(&invoices, "C1", "2023-03");
    let wabas = mar["wabas"].as_array().unwrap();
    assert_eq!(wabas.len(), 2);
    for (w, paid) in [(&wabas[0], 3), (&wabas[1], 1)] {
        assert_eq!(w["conversations"]["free_tier"], 1000, "{w}");
        assert_eq!(w["conversations"]["paid"], paid, "{w}");
        assert_eq!(w["extra_units"], paid, "only Meta's paid ones bear the fee");
    }
    assert_eq!(extra(mar), [("0.0100".to_owned(), 4, "0.0400".to_owned())]);
}

#[test]
fn entry_point_conversations_do_not_use_the_included_volume() {
    let config = r#"
[[plan]]
id = "all-in"
period = "month"
  [[plan.version]]
  from = "2024-01-01"
  included = 2
  unit_price = "0.0100"
  applies_to = "all"

[[customer]]
id = "C1"
wabas = ["W1"]
subscriptions = [{ plan = "all-in", from = "2024-01-01" }]
"#;
    let mut t = Traffic::default();
    // A Click to WhatsApp ad: the user writes first, the business answers
    // within 24 h: a free entry point conversation (rules B6).
    t.push(
        json!({"type": "inbound", "id": "in1", "waba": "W1", "phone": "P1",
        "user": "2348039999999", "ts": "2024-03-04T10:00:00Z",
        "referral": {"source_type": "ad", "source_id": "1"}}),
    );
    t.push(
        json!({"type": "outbound", "id": "r1", "waba": "W1", "phone": "P1",
        "user": "2348039999999", "ts": "2024-03-04T10:01:00Z"}),
    );
    t.push(
        json!({"type": "status", "id": "r1", "waba": "W1", "phone": "P1",
        "user": "2348039999999", "ts": "2024-03-04T10:01:05Z", "status": "delivered"}),
    );
    t.marketing("W1", "2024-03-05", 3);
    let invoices = customer_invoices(config, &t, &[]);
    let mar = month(&invoices, "C1", "2024-03");
    assert_eq!(mar["wabas"][0]["conversations"]["free_entry_point"], 1);
    assert_eq!(mar["wabas"][0]["conversations"]["total"], 4);
    // "all" counts free-tier conversations too, never the entry point's:
    // 3 units, 2 included, 1 extra.
    assert_eq!(mar["included"][0]["used"], 2);
    assert_eq!(mar["wabas"][0]["included_units"], 2);
    assert_eq!(extra(mar), [("0.0100".to_owned(), 1, "0.0100".to_owned())]);
}

#[test]
fn subscription_changed_mid_month_is_prorated_by_day() {
    let config = r#"
[[plan]]
id = "basic"
period = "month"
  [[plan.version]]
  from = "2026-01-01"
  price = "31.00"
  included = 31

[[plan]]
id = "plus"
period = "month"
  [[plan.version]]
  from = "2026-01-01"
  price = "62.00"
  included = 62

[[customer]]
id = "C1"
wabas = ["W1"]
subscriptions = [
  { plan = "basic", from = "2026-01-01", to = "2026-03-17" },
  { plan = "plus", from = "2026-03-17" },
]
"#;
    let mut t = Traffic::default();
    t.marketing("W1", "2026-03-10", 1);
    let invoices = customer_invoices(config, &t, &["--month", "2026-03"]);
    let mar = &invoices[0];
    let charges: Vec<(String, i64, String)> = mar["subscription"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["plan"].as_str().unwrap().to_owned(),
                c["days"].as_i64().unwrap(),
                c["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // 16 of March's 31 days on basic, 15 on plus.
    assert_eq!(
        charges,
        [
            ("basic".to_owned(), 16, "16.00".to_owned()),
            ("plus".to_owned(), 15, "30.00".to_owned())
        ]
    );
    // Included volume prorated alike (rounded down).
    let allowances: Vec<u64> = mar["included"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["allowance"].as_u64().unwrap())
        .collect();
    assert_eq!(allowances, [16, 30]);
}

const INR_CARD: &str = "# family: pmp\n# currency: INR\n# effective_from: 2027-01-01\n\
market,category,price\nIndia,marketing,0.8600\nIndia,utility,0.1150\nIndia,authentication,0.1150\n\
India,service,0.1150\nOther,marketing,4.1000\nOther,utility,0.6000\nOther,authentication,0.6000\n\
Other,service,0.6000\n";

fn india_config(rates: &str) -> String {
    format!(
        r#"
[[waba]]
id = "W-IN"
timezone = "Asia/Kolkata"
currency = [{{ currency = "USD" }}, {{ currency = "INR", from = "2027-01-01" }}]

[rates]
cards = ["inr-card.csv"]

[[plan]]
id = "pass"
period = "month"
  [[plan.version]]
  from = "2026-01-01"

[[customer]]
id = "C-US"
currency = "USD"
wabas = ["W-IN"]
subscriptions = [{{ plan = "pass", from = "2026-01-01" }}]
{rates}
"#
    )
}

fn india_traffic() -> Traffic {
    let mut t = Traffic::default();
    for day in ["2026-12-30", "2027-01-05", "2027-01-20"] {
        for i in 0..2 {
            let ts = format!("{day}T0{i}:00:00Z");
            t.template("W-IN", &ts, "marketing", "919812");
        }
    }
    t
}

/// Runs `wabill` with [`india_config`] (`rates` added), the INR card and
/// [`india_traffic`]: `args` then the events file.
fn india_run(rates: &str, args: &[&str]) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("wabill.toml"), india_config(rates)).unwrap();
    std::fs::write(p.join("inr-card.csv"), INR_CARD).unwrap();
    std::fs::write(p.join("events.ndjson"), india_traffic().text()).unwrap();
    let mut all = vec!["--config", "wabill.toml"];
    all.extend_from_slice(args);
    all.push("events.ndjson");
    wabill(p, &all)
}

#[test]
fn indian_waba_switching_to_inr_on_2027_01_01_with_a_usd_customer() {
    let rates = r#"
[[exchange_rate]]
from = "INR"
to = "USD"
rate = "0.0118"
effective_from = "2027-01-01"

[[exchange_rate]]
from = "INR"
to = "USD"
rate = "0.0117"
effective_from = "2027-01-15"
"#;
    // The WABA invoices: December in USD, January in INR at the INR card.
    let out = india_run(rates, &["invoice", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let waba: Vec<(&str, &str, &str)> = doc["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["month"].as_str().unwrap(),
                i["currency"].as_str().unwrap(),
                i["meta_total"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        waba,
        [("2026-12", "USD", "0.0236"), ("2027-01", "INR", "3.4400")]
    );
    let out = india_run(rates, &["invoice", "--by", "customer", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let jan = month(
        doc["customer_invoices"].as_array().unwrap(),
        "C-US",
        "2027-01",
    );
    let w = &jan["wabas"][0];
    assert_eq!(w["currency"], "INR");
    assert_eq!(w["meta_amount"], "3.4400");
    // Two messages at each of the month's rates, each rate shown.
    let conversions = w["conversions"].as_array().unwrap();
    assert_eq!(conversions.len(), 2);
    assert_eq!(conversions[0]["rate"], "0.0118");
    assert_eq!(conversions[0]["amount"], "1.7200");
    assert_eq!(conversions[0]["converted"], "0.02029600");
    assert_eq!(conversions[1]["rate"], "0.0117");
    assert_eq!(conversions[1]["converted"], "0.02012400");
    assert_eq!(w["amount"], "0.04042000");
    assert_eq!(jan["currency"], "USD");
    assert_eq!(jan["amount_due"], "0.04");
    let dec = month(
        doc["customer_invoices"].as_array().unwrap(),
        "C-US",
        "2026-12",
    );
    assert_eq!(dec["wabas"][0]["conversions"], json!([]));
    assert_eq!(dec["pass_through"], "0.0236");
}

#[test]
fn a_conversion_without_a_rate_for_its_date_names_the_currencies_and_the_date() {
    let rates = r#"
[[exchange_rate]]
from = "INR"
to = "USD"
rate = "0.0117"
effective_from = "2027-01-15"
"#;
    let out = india_run(rates, &["invoice", "--by", "customer", "--format", "json"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("no exchange rate from INR to USD is in force on 2027-01-05 (WABA W-IN)"),
        "{}",
        out.stderr
    );
}

#[test]
fn customer_configuration_errors_name_the_key() {
    let cases = [
        (
            "[[phone]]\nid = \"P1\"\ncarriers = [{ provider = \"zendesk\", waba = \"W1\" }, { provider = \"360dialog\", waba = \"W2\", from = \"2026-03-16\" }]\n[[customer]]\nid = \"C1\"\nwabas = [\"W1\"]\n[[customer]]\nid = \"C2\"\nwabas = [\"W2\"]\n",
            "phone \"P1\": its WABAs belong to two customers",
        ),
        (
            "[[customer]]\nid = \"C1\"\nsubscriptions = [{ plan = \"nope\", from = \"2026-01-01\" }]\n",
            "customer[0].subscriptions[0].plan: no [[plan]] has id \"nope\"",
        ),
        (
            "[[customer]]\nid = \"C1\"\nwabas = [\"W1\"]\n[[customer]]\nid = \"C2\"\nwabas = [{ waba = \"W1\", from = \"2026-03-01\" }]\n",
            "customer[1].wabas: WABA \"W1\" would be billed to customer \"C1\" and \"C2\" on the same dates",
        ),
        (
            "[[waba]]\nid = \"W1\"\ncurrency = [{ currency = \"INR\", from = \"2027-01-15\" }]\n",
            "a WABA's currency changes on the first day of a month",
        ),
        (
            "[[plan]]\nid = \"p\"\nperiod = \"week\"\n",
            "plan[0].period: \"week\" is not \"month\" or \"year\"",
        ),
        (
            "[[exchange_rate]]\nfrom = \"INR\"\nto = \"USD\"\nrate = \"-1\"\neffective_from = \"2027-01-01\"\n",
            "exchange_rate[0].rate: must not be negative",
        ),
        (
            "[platform]\nfee_per_conversation = \"0.01\"\n[[customer]]\nid = \"C1\"\n",
            "platform.fee_per_conversation: with [[customer]] configured the platform's fee is in each customer's [[plan]]",
        ),
        (
            "[[waba]]\nid = \"W1\"\nincluded_conversations = 5\n[[customer]]\nid = \"C1\"\nwabas = [\"W1\"]\n",
            "included_conversations is the simple case's allowance",
        ),
        (
            "[platform]\nfee_per_conversation = \"0.01\"\n[[waba]]\nid = \"W1\"\ncurrency = \"INR\"\n",
            "platform.fee_per_conversation: the fee is in platform.currency USD but a WABA is billed in INR",
        ),
    ];
    for (config, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wabill.toml"), config).unwrap();
        std::fs::write(dir.path().join("e.ndjson"), "").unwrap();
        let out = wabill(
            dir.path(),
            &[
                "--config",
                "wabill.toml",
                "invoice",
                "--by",
                "customer",
                "e.ndjson",
            ],
        );
        assert_eq!(out.code, 2, "{config}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{config}: {}", out.stderr);
    }
}

mod common;

const TOKEN_C1: &str = "token-customer-c1";

/// Served: a key scoped to customer C1 (WABA W2) reads and writes W2 and
/// C1's invoice, and gets 403 on every endpoint for W1 and customer C2;
/// the served customer invoice is the command line's, and the quote adds
/// what C1 pays.
#[test]
fn a_customer_key_reads_its_wabas_and_invoice_and_gets_403_on_everything_else() {
    use common::{Server, get, post, post_events, write_config};
    let extra = format!(
        r#"
[[api_key]]
sha256 = "{c1}"
customers = ["C1"]

[[plan]]
id = "pro"
period = "month"
  [[plan.version]]
  from = "2025-01-01"
  price = "10.00"
  included = 1
  unit_price = "0.0100"
  markup = "0.5"

[[customer]]
id = "C1"
wabas = ["W2"]
subscriptions = [{{ plan = "pro", from = "2025-06-01" }}]

[[customer]]
id = "C2"
wabas = ["W1"]
"#,
        c1 = common::sha256_hex(TOKEN_C1)
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &extra);
    let server = Server::start(&config);
    let w1 = [
        common::ev(
            "outbound",
            "a1",
            "W1",
            "5511999990001",
            "2025-06-15T10:00:00Z",
            r#","template":{"category":"utility"}"#,
        ),
        common::ev(
            "status",
            "a1",
            "W1",
            "5511999990001",
            "2025-06-15T10:00:05Z",
            r#","status":"delivered""#,
        ),
    ]
    .join("\n");
    let mut t = Traffic::default();
    t.template("W2", "2025-06-10T10:00:00Z", "marketing", "5511988");
    t.template("W2", "2025-06-11T10:00:00Z", "marketing", "5511988");
    assert_eq!(post_events(&server, TOKEN_C1, &w1).status, 403);
    assert_eq!(post_events(&server, common::TOKEN_ALL, &w1).status, 200);
    let stored = post_events(&server, TOKEN_C1, &t.text());
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.json()["accepted"], 4);
    let auth = format!("Bearer {TOKEN_C1}");
    let reprocess_w1 = post(
        &server.url("/v1/quarantine/reprocess?waba=W1"),
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(reprocess_w1.status, 403, "{}", reprocess_w1.body);
    for path in [
        "/v1/window?waba=W1&phone=P1&user=5511999990001",
        "/v1/quote?waba=W1&phone=P1&user=5511999990001&kind=freeform",
        "/v1/invoices/W1/2025-06",
        "/v1/conversations?waba=W1&month=2025-06",
        "/v1/reconciliation/W1/2025-06",
        "/v1/quarantine?waba=W1",
        "/v1/customers/C2/invoices/2025-06",
        "/v1/customers/nobody/invoices/2025-06",
    ] {
        let denied = get(&server.url(path), Some(TOKEN_C1));
        assert_eq!(denied.status, 403, "{path}: {}", denied.body);
        assert_eq!(denied.json()["error"]["code"], "forbidden");
        assert_eq!(get(&server.url(path), None).status, 401, "{path}");
    }
    for path in [
        "/v1/window?waba=W2&phone=P1&user=5511988000001",
        "/v1/invoices/W2/2025-06",
        "/v1/conversations?waba=W2&month=2025-06",
        "/v1/reconciliation/W2/2025-06",
        "/v1/quarantine",
    ] {
        let allowed = get(&server.url(path), Some(TOKEN_C1));
        assert_eq!(allowed.status, 200, "{path}: {}", allowed.body);
    }
    // A key for every WABA reads every customer; an unknown one is 404.
    let c2 = get(
        &server.url("/v1/customers/C2/invoices/2025-06"),
        Some(common::TOKEN_ALL),
    );
    assert_eq!(c2.status, 200, "{}", c2.body);
    let none = get(
        &server.url("/v1/customers/nobody/invoices/2025-06"),
        Some(common::TOKEN_ALL),
    );
    assert_eq!(none.status, 404, "{}", none.body);

    // The served invoice is the command line's for the same events.
    let served = get(
        &server.url("/v1/customers/C1/invoices/2025-06"),
        Some(TOKEN_C1),
    );
    assert_eq!(served.status, 200, "{}", served.body);
    let events = dir.path().join("events.ndjson");
    std::fs::write(&events, format!("{w1}\n{}", t.text())).unwrap();
    let cli = wabill(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "invoice",
            "--by",
            "customer",
            "--customer",
            "C1",
            "--format",
            "json",
            events.to_str().unwrap(),
        ],
    );
    assert_eq!(cli.code, 0, "{}", cli.stderr);
    let cli: Value = serde_json::from_str(&cli.stdout).unwrap();
    assert_eq!(
        served.json(),
        *month(
            cli["customer_invoices"].as_array().unwrap(),
            "C1",
            "2025-06"
        )
    );
    assert_eq!(served.json()["extra"][0]["quantity"], 1);

    // One more marketing template: the included one is used, so C1 pays
    // Meta's price, the plan's 0.0100 and half of Meta's price as markup.
    let quote = get(
        &server.url("/v1/quote?waba=W2&phone=P1&user=5511988000009&kind=template&category=marketing&at=1750000000"),
        Some(TOKEN_C1),
    );
    assert_eq!(quote.status, 200, "{}", quote.body);
    let q = quote.json();
    let meta: rust_decimal::Decimal = q["meta_price"].as_str().unwrap().parse().unwrap();
    assert!(meta > rust_decimal::Decimal::ZERO);
    let c = &q["customer"];
    assert_eq!(c["id"], "C1");
    assert_eq!(c["included"], false);
    assert_eq!(c["platform_price"], "0.0100");
    let price: rust_decimal::Decimal = c["price"].as_str().unwrap().parse().unwrap();
    let half = meta * rust_decimal::Decimal::new(5, 1);
    assert_eq!(price, meta + rust_decimal::Decimal::new(100, 4) + half);
    // W1's customer has no plan: Meta's price only.
    let w1_quote = get(
        &server.url("/v1/quote?waba=W1&phone=P1&user=5511999990001&kind=template&category=marketing&at=1750000000"),
        Some(common::TOKEN_ALL),
    );
    assert_eq!(w1_quote.json()["customer"]["platform_price"], "0");
}

/// A Sunshine body with one event of `kind` at `at`.
fn sunshine(kind: &str, id: &str, at: &str) -> String {
    let payload = if kind == "conversation:message" {
        json!({"conversation": {"id": "c1", "type": "personal"},
            "message": {"id": id, "received": at, "content": {"type": "text", "text": "hi"},
                "author": {"type": "user", "userId": "5963c0d619a30a2e00de36b8"},
                "source": {"type": "whatsapp", "integrationId": "i1"}}})
    } else {
        json!({"user": {"id": "5963c0d619a30a2e00de36b8"},
            "conversation": {"id": "c1", "type": "personal"},
            "message": {"id": id}, "destination": {"type": "whatsapp", "integrationId": "i1"}})
    };
    json!({"app": {"id": "a1"}, "webhook": {"id": "w1", "version": "v2"},
        "events": [{"id": format!("e-{id}-{at}"), "type": kind, "createdAt": at, "payload": payload}]})
    .to_string()
}

/// An On-Premises body: a message from `user` or a delivered status.
fn on_premises(kind: &str, id: &str, user: &str, ts: i64) -> String {
    if kind == "message" {
        json!({"contacts": [{"wa_id": user}], "messages": [{"from": user, "id": id,
            "timestamp": ts.to_string(), "type": "text", "text": {"body": "hi"}}]})
    } else {
        json!({"statuses": [{"id": id, "recipient_id": user, "status": "delivered",
            "timestamp": ts.to_string()}]})
    }
    .to_string()
}

/// Rules P6 on the FAQ's case: customer C1's number P1 moves from Zendesk
/// (WABA W1) to 360dialog (WABA W2) on the agreed 16 March. The user's
/// window and open conversation go on across the move; conversations are
/// billed to the WABA that carried the number when they started, each
/// WABA with its own free tier; a Zendesk copy after the move is billed
/// and counted; March and April's invoices show it all.
#[test]
fn customer_moved_from_zendesk_to_360dialog_on_an_agreed_mid_month_date() {
    use common::{DIALOG_SECRET, Server, ZENDESK_SECRET, get, post, post_events};
    let extra = format!(
        r#"
[[route]]
name = "dialog-w2"
provider = "360dialog"
header = "D360-Secret"
secret = "{DIALOG_SECRET}"
waba = "W2"
phone = "P1"

[[waba]]
id = "W1"

[[waba]]
id = "W2"

[[phone]]
id = "P1"
carriers = [
  {{ provider = "zendesk", waba = "W1" }},
  {{ provider = "360dialog", waba = "W2", from = "2024-03-16" }},
]

[[plan]]
id = "flat"
period = "month"
  [[plan.version]]
  from = "2024-01-01"
  price = "20.00"

[[customer]]
id = "C1"
wabas = ["W1", "W2"]
subscriptions = [{{ plan = "flat", from = "2024-01-01" }}]
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &extra);
    let log_path = dir.path().join("stderr.log");
    let server = Server::start_logging(&config, &log_path);
    let user = "16505551234";
    let zendesk = |body: String| {
        let r = post(
            &server.url("/webhooks/zendesk/zd"),
            &[("X-API-Key", ZENDESK_SECRET)],
            &body,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    let dialog = |body: String| {
        let r = post(
            &server.url("/webhooks/360dialog/dialog-w2"),
            &[("D360-Secret", DIALOG_SECRET)],
            &body,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    };
    let outbound = |id: &str, waba: &str, to: &str, ts: &str, extra: &str| {
        let line = common::ev("outbound", id, waba, to, ts, extra);
        let r = post_events(&server, common::TOKEN_ALL, &line);
        assert_eq!(r.json()["accepted"], 1, "{}", r.body);
    };
    // Before the move, through Zendesk (W1): the user writes, the business
    // answers: a service conversation from 20:05:05.
    zendesk(sunshine(
        "conversation:message",
        "in1",
        "2024-03-15T20:00:00Z",
    ));
    outbound("r1", "W1", user, "2024-03-15T20:05:00Z", "");
    zendesk(sunshine(
        "conversation:message:delivery:user",
        "r1",
        "2024-03-15T20:05:05Z",
    ));
    // After the move, through 360dialog (W2): an answer within the same
    // conversation, then the next day a new one and a template to another user.
    outbound("r2", "W2", user, "2024-03-16T10:00:00Z", "");
    dialog(on_premises("status", "r2", user, 1_710_583_205)); // 2024-03-16T10:00:05Z
    let window = get(
        &server.url(&format!(
            "/v1/window?waba=W2&phone=P1&user={user}&at=2024-03-16T10:30:00Z"
        )),
        Some(common::TOKEN_ALL),
    )
    .json();
    assert_eq!(window["csw_open"], true, "{window}");
    assert_eq!(window["csw_expires_at"], "2024-03-16T20:00:00Z");
    assert_eq!(
        window["open_conversations"][0]["started_at"], "2024-03-15T20:05:05Z",
        "the conversation opened through Zendesk is still open through 360dialog"
    );
    dialog(on_premises("message", "in2", user, 1_710_666_000)); // 2024-03-17T09:00:00Z
    outbound("r3", "W2", user, "2024-03-17T09:05:00Z", "");
    dialog(on_premises("status", "r3", user, 1_710_666_305));
    // Zendesk's own copy of that delivery, after its period: billed once,
    // counted.
    let late = zendesk(sunshine(
        "conversation:message:delivery:user",
        "r3",
        "2024-03-17T09:05:06Z",
    ));
    assert_eq!(late["duplicates"], 1, "{late}");
    outbound(
        "t1",
        "W2",
        "5511999990001",
        "2024-03-17T12:00:00Z",
        r#","template":{"category":"marketing"}"#,
    );
    dialog(on_premises("status", "t1", "5511999990001", 1_710_676_805));
    outbound(
        "t2",
        "W2",
        "5511999990002",
        "2024-04-02T12:00:00Z",
        r#","template":{"category":"marketing"}"#,
    );
    dialog(on_premises("status", "t2", "5511999990002", 1_712_059_205));

    let invoice = |waba: &str, month: &str| {
        let r = get(
            &server.url(&format!("/v1/invoices/{waba}/{month}")),
            Some(common::TOKEN_ALL),
        );
        assert_eq!(r.status, 200, "{waba} {month}: {}", r.body);
        r.json()
    };
    let w1 = invoice("W1", "2024-03");
    assert_eq!(w1["conversations"]["total"], 1, "{w1}");
    assert_eq!(w1["conversations"]["free_tier"], 1, "W1's own free tier");
    assert_eq!(w1["lines"][0]["provider"], "zendesk");
    assert_eq!(w1["off_period_events"], 0);
    let w2 = invoice("W2", "2024-03");
    assert_eq!(w2["conversations"]["total"], 2, "{w2}");
    assert_eq!(w2["conversations"]["free_tier"], 1, "W2's own free tier");
    assert_eq!(w2["conversations"]["paid"], 1);
    assert!(
        w2["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["provider"] == "360dialog")
    );
    assert_eq!(w2["off_period_events"], 1, "Zendesk's copy after the move");
    let april = invoice("W2", "2024-04");
    assert_eq!(april["conversations"]["total"], 1);
    assert_eq!(
        get(
            &server.url("/v1/invoices/W1/2024-04"),
            Some(common::TOKEN_ALL)
        )
        .status,
        404,
        "nothing carried by W1 in April"
    );
    // The conversation that went on across the move is W1's, with both answers.
    let conversations = |waba: &str| {
        get(
            &server.url(&format!("/v1/conversations?waba={waba}&month=2024-03")),
            Some(common::TOKEN_ALL),
        )
        .json()["conversations"]
            .as_array()
            .unwrap()
            .clone()
    };
    let on_w1 = conversations("W1");
    assert_eq!(on_w1.len(), 1);
    assert_eq!(
        (&on_w1[0]["waba"], &on_w1[0]["messages"]),
        (&json!("W1"), &json!(2))
    );
    let on_w2 = conversations("W2");
    assert_eq!(on_w2.len(), 2);
    assert!(on_w2.iter().all(|c| c["waba"] == "W2"), "{on_w2:?}");
    // Reconciliation finds W2's conversations, kept under the number's first WABA.
    let rec = get(
        &server.url("/v1/reconciliation/W2/2024-03"),
        Some(common::TOKEN_ALL),
    );
    assert_eq!(rec.status, 200, "{}", rec.body);
    assert_eq!(rec.json()["waba"], "W2");
    // The customer's March: both WABAs, each with its provider.
    let march = get(
        &server.url("/v1/customers/C1/invoices/2024-03"),
        Some(common::TOKEN_ALL),
    )
    .json();
    let parts: Vec<(&str, &str)> = march["wabas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["waba"].as_str().unwrap(), w["provider"].as_str().unwrap()))
        .collect();
    assert_eq!(parts, [("W1", "zendesk"), ("W2", "360dialog")]);
    // Nor read the number's window once W2 carries it.
    let w1_window = get(
        &server.url(&format!(
            "/v1/window?waba=W1&phone=P1&user={user}&at=2024-03-16T10:30:00Z"
        )),
        Some(common::TOKEN_W1),
    );
    assert_eq!(w1_window.status, 403, "{}", w1_window.body);
    // The number's WABAs share its events: a key for W1 alone writes none
    // of them, whatever the date.
    let before = common::ev("outbound", "x0", "W1", user, "2024-03-15T21:00:00Z", "");
    assert_eq!(post_events(&server, common::TOKEN_W1, &before).status, 403);
    // No month past what a date can hold.
    let far = get(
        &server.url("/v1/invoices/W1/9999-12"),
        Some(common::TOKEN_ALL),
    );
    assert_eq!(far.status, 400, "{}", far.body);
    // A key for W1 alone may not write what W2 is billed for; a WABA no
    // period names keeps its own events, even of the same phone id.
    let after = common::ev("outbound", "x1", "W1", user, "2024-03-18T10:00:00Z", "");
    assert_eq!(post_events(&server, common::TOKEN_W1, &after).status, 403);
    outbound(
        "w9",
        "W9",
        "5511999990003",
        "2024-03-18T12:00:00Z",
        r#","template":{"category":"marketing"}"#,
    );
    let w9_delivered = common::ev(
        "status",
        "w9",
        "W9",
        "5511999990003",
        "2024-03-18T12:00:05Z",
        r#","status":"delivered""#,
    );
    assert_eq!(
        post_events(&server, common::TOKEN_ALL, &w9_delivered).json()["accepted"],
        1
    );
    assert_eq!(invoice("W9", "2024-03")["conversations"]["total"], 1);
    assert_eq!(invoice("W2", "2024-03")["conversations"]["total"], 2);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        log.matches("outside its phone's period").count(),
        1,
        "one warning, for Zendesk's late copy: {log}"
    );
    assert!(!log.contains(user), "no user number in the log");
    // A restart replays the log: the same invoices, the late copy still counted.
    server.kill();
    let server = Server::start(&config);
    let again = get(
        &server.url("/v1/invoices/W2/2024-03"),
        Some(common::TOKEN_ALL),
    )
    .json();
    assert_eq!(again, w2);
}

#[test]
fn whatif_refuses_to_add_up_invoices_in_two_currencies() {
    let rates = "[[exchange_rate]]\nfrom = \"INR\"\nto = \"USD\"\nrate = \"0.0118\"\neffective_from = \"2027-01-01\"\n";
    let out = india_run(rates, &["whatif", "--era", "pmp-2026", "--format", "json"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("INR and USD"), "{}", out.stderr);
    let one = india_run(
        rates,
        &[
            "whatif", "--era", "pmp-2026", "--month", "2027-01", "--format", "json",
        ],
    );
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(one.stdout.contains("\"INR\""), "{}", one.stdout);
}

#[test]
fn customer_invoices_by_waba_read_on_premises_bodies_and_print_as_csv_and_table() {
    let config = r#"
[[plan]]
id = "flat"
period = "month"
  [[plan.version]]
  from = "2025-01-01"
  price = "10.00"

[[customer]]
id = "C1"
wabas = ["W1"]
subscriptions = [{ plan = "flat", from = "2025-06-01" }]
"#;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("wabill.toml"), config).unwrap();
    // The user writes (an On-Premises body), the business answers (its own
    // record), 360dialog reports the delivery (On-Premises).
    let lines = [
        on_premises("message", "in1", "5511999990001", 1_750_000_000),
        common::ev(
            "outbound",
            "r1",
            "W1",
            "5511999990001",
            "2025-06-15T15:10:00Z",
            "",
        ),
        on_premises("status", "r1", "5511999990001", 1_750_000_205),
    ];
    std::fs::write(p.join("bodies.ndjson"), lines.join("\n") + "\n").unwrap();
    let base = ["--config", "wabill.toml", "invoice", "--by", "customer"];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args.extend(["--waba", "W1", "--phone", "P1", "bodies.ndjson"]);
        wabill(p, &args)
    };
    let csv = run(&["--format", "csv"]);
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    let mut lines = csv.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(
            "customer,month,currency,kind,waba,provider,plan,version_from,category,quantity,unit_price,amount,invoice_total,amount_due"
        )
    );
    assert_eq!(
        lines.next(),
        Some("C1,2025-06,USD,subscription,,,flat,2025-01-01,,30,10.00,10.00,10.00,10.00")
    );
    let table = run(&["--format", "table"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("Customer C1 2025-06 (USD)"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("Amount due 10.00 USD"),
        "{}",
        table.stdout
    );
}

/// A customer's key reads and writes a WABA on the dates it was the
/// customer's, and a month's invoice only when the whole month was.
#[test]
fn a_customer_key_reads_a_waba_only_on_the_dates_it_was_the_customer_s() {
    use common::{Server, get, post_events, write_config};
    let extra = format!(
        r#"
[[api_key]]
sha256 = "{c1}"
customers = ["C1"]

[[customer]]
id = "C1"
wabas = [{{ waba = "W2", to = "2025-06-20" }}]

[[customer]]
id = "C3"
wabas = [{{ waba = "W2", from = "2025-06-20" }}]
"#,
        c1 = common::sha256_hex(TOKEN_C1)
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path(), &extra));
    let mut t = Traffic::default();
    t.template("W2", "2025-05-10T10:00:00Z", "marketing", "5511988");
    t.template("W2", "2025-06-10T10:00:00Z", "marketing", "5511988");
    t.template("W2", "2025-06-25T10:00:00Z", "marketing", "5511988");
    assert_eq!(
        post_events(&server, common::TOKEN_ALL, &t.text()).json()["accepted"],
        6
    );
    let late = common::ev(
        "inbound",
        "in9",
        "W2",
        "5511999990001",
        "2025-06-25T10:00:00Z",
        "",
    );
    assert_eq!(
        post_events(&server, TOKEN_C1, &late).status,
        403,
        "C3's dates"
    );
    let early = common::ev(
        "inbound",
        "in8",
        "W2",
        "5511999990001",
        "2025-06-11T10:00:00Z",
        "",
    );
    // W2 was C3's too: C1's key may not write it at all (an outbound
    // record on C1's dates could set the category of a message C3 is
    // billed for).
    let refused = post_events(&server, TOKEN_C1, &early);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("writing WABA"), "{}", refused.body);
    let status = |path: &str| get(&server.url(path), Some(TOKEN_C1)).status;
    assert_eq!(status("/v1/invoices/W2/2025-05"), 200, "May was all C1's");
    assert_eq!(
        status("/v1/invoices/W2/2025-06"),
        403,
        "June was C3's from the 20th"
    );
    assert_eq!(status("/v1/reconciliation/W2/2025-06"), 403);
    let user = "user=5511999990001";
    assert_eq!(
        status(&format!(
            "/v1/window?waba=W2&phone=P1&{user}&at=2025-06-12T00:00:00Z"
        )),
        200
    );
    assert_eq!(
        status(&format!(
            "/v1/window?waba=W2&phone=P1&{user}&at=2025-06-21T00:00:00Z"
        )),
        403
    );
    let june = get(
        &server.url("/v1/conversations?waba=W2&month=2025-06"),
        Some(TOKEN_C1),
    )
    .json();
    let starts: Vec<&str> = june["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["start"].as_str().unwrap())
        .collect();
    assert_eq!(starts, ["2025-06-10T10:00:05Z"], "only C1's days of June");
    assert_eq!(status("/v1/customers/C3/invoices/2025-06"), 403);
}

/// Rules P6 on the command line: `--provider` says where the input came
/// from; events outside the phone's period are billed, counted on the
/// invoice and named on standard error; a WABA no `[[phone]]` names
/// shows neither key.
#[test]
fn events_from_a_provider_outside_the_phone_s_period_are_billed_counted_and_told() {
    let config = r#"
[[phone]]
id = "P1"
carriers = [{ provider = "meta", waba = "W1" }]
"#;
    let mut t = Traffic::default();
    t.marketing("W1", "2025-08-10", 2);
    t.marketing("W3", "2025-08-10", 1);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("wabill.toml"), config).unwrap();
    std::fs::write(p.join("events.ndjson"), t.text()).unwrap();
    let args = ["--config", "wabill.toml", "invoice", "--format", "json"];
    let run = |provider: &str| {
        let mut all = args.to_vec();
        all.extend(["--provider", provider, "events.ndjson"]);
        wabill(p, &all)
    };
    let through_360 = run("360dialog");
    assert_eq!(through_360.code, 0, "{}", through_360.stderr);
    assert!(
        through_360
            .stderr
            .contains("phone P1: 4 events came through 360dialog outside the periods"),
        "{}",
        through_360.stderr
    );
    let doc: Value = serde_json::from_str(&through_360.stdout).unwrap();
    let w1 = &doc["invoices"][0];
    assert_eq!(
        (&w1["waba"], &w1["off_period_events"]),
        (&json!("W1"), &json!(4))
    );
    assert_eq!(w1["lines"][0]["provider"], "meta");
    assert_eq!(w1["messages"]["paid"], 2, "billed all the same");
    let w3 = &doc["invoices"][1];
    assert_eq!(w3["waba"], "W3");
    assert!(w3.get("off_period_events").is_none() && w3["lines"][0].get("provider").is_none());
    let through_meta = run("meta");
    assert_eq!(through_meta.stderr, "");
    let doc: Value = serde_json::from_str(&through_meta.stdout).unwrap();
    assert_eq!(doc["invoices"][0]["off_period_events"], 0);
}

/// Rules P1: a WABA that is the customer's twice in one month shows as two
/// entries, each saying its days; another customer's days are on neither.
#[test]
fn a_waba_that_is_a_customer_s_twice_in_a_month_shows_each_part_with_its_days() {
    let config = r#"
[[customer]]
id = "C1"
wabas = [{ waba = "W1", from = "2026-03-05", to = "2026-03-10" }, { waba = "W1", from = "2026-03-20" }]
"#;
    let mut t = Traffic::default();
    t.marketing("W1", "2026-03-06", 1);
    t.marketing("W1", "2026-03-15", 2);
    t.marketing("W1", "2026-03-25", 3);
    let invoices = customer_invoices(config, &t, &[]);
    let parts: Vec<(Value, Value, Value)> = invoices[0]["wabas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["from"].clone(),
                w["to"].clone(),
                w["messages"]["total"].clone(),
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            (json!("2026-03-05"), json!("2026-03-10"), json!(1)),
            (json!("2026-03-20"), Value::Null, json!(3)),
        ]
    );
}

#[test]
fn two_api_keys_with_one_token_are_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "\n[[api_key]]\nsha256 = \"{}\"\nwabas = [\"W2\"]\n",
        common::sha256_hex(common::TOKEN_W1)
    );
    let config = common::write_config(dir.path(), &extra);
    let out = wabill(dir.path(), &["--config", config.to_str().unwrap(), "serve"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("api_key[2].sha256: the same token"),
        "{}",
        out.stderr
    );
}
