//! The scanner of plain normalized lines reads every line exactly as serde
//! does: the same event, or the same error. Each base line below, and every
//! line made from one by deleting one character or inserting one of the
//! characters JSON's grammar turns on, goes through `parse_line` (scanner
//! first) and `parse_line_with_serde`; the answers must be equal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use wabill_ingest::{Parsed, Route, parse_line, parse_line_with_serde};

const BASE: &[&str] = &[
    r#"{"provider":"zendesk","type":"inbound","id":"m10","waba":"W1","phone":"P1","user":"44","ts":1}"#,
    r#"{"type":"status","id":"m11","waba":"W1","phone":"P1","user":"44","ts":1,"status":"sent","provider":{"name":"meta"}}"#,
    r#"{"type":"inbound","id":"wamid.in1","waba":"W1","phone":"P1","user":"2348031234567","ts":"2022-03-07T10:00:00Z","referral":{"source_type":"ad","source_id":"120226305854810726"}}"#,
    r#"{"type":"outbound","id":"wamid.out1","waba":"W1","phone":"P1","user":"+2348031234567","ts":"2022-03-07T10:02:00.5Z","template":{"name":"promo","category":"marketing"}}"#,
    r#"{"type":"status","id":"wamid.out1","waba":"W1","phone":"P1","user":"2348031234567","ts":1646647322,"status":"delivered"}"#,
    r#"{"type":"status","id":"m2","waba":106211842197983,"phone":112844085033578,"user":27615902049,"ts":"1646092802","status":"sent","meta":{"conversation_id":"1ba9669b32fe70b12c4d0b3bd99873e9","origin":"user_initiated","expires":1646179203,"billable":true,"category":"user_initiated","pricing_model":"CBP"}}"#,
    r#"{"type":"status","id":"m3","waba":"W1","phone":"P1","user":"BR.1502576394655843","user_id":"BR.1502576394655843","group":"G1","ts":1646647322.25,"status":"read","meta":{"billable":false,"pricing_model":"PMP","category":"group_service","pricing_type":"free_group_customer_service","cost":"0.035 USD","expires":"2022-03-08T10:00:00Z","pricing":null,"conversation":null,"extra":"x"}}"#,
    r#" { "type" : "status" , "id" : "m4" , "waba" : "W1" , "phone" : "P1" , "user" : "44", "ts" : 1646647322 , "status" : "deleted" , "meta" : { } , "x" : -1.5e+3 , "y" : null , "z" : { "a" : true } } "#,
    r#"{"type":"inbound","id":"m5","waba":"W1","phone":"P1","user":"44","user_id":"US.ENT.1181","ts":0,"referral":null,"template":null,"meta":null,"status":null}"#,
    r#"{"type":"outbound","id":"m6","waba":"W1","phone":"P1","user":"44","ts":"2022-03-07T10:02:00+01:00","template":{"category":"utility","category":"marketing"}}"#,
    r#"{"type":"status","id":"m7","waba":"W1","phone":"P1","user":"44","ts":18446744073709551616,"status":"sent","meta":{"conversation_id":12345678901234567890,"origin":"","billable":"true"}}"#,
    r#"{"type":"inbound","id":"wamid.\u0041","waba":"W1","phone":"P1","user":"44","ts":"2022-03-07T10:00:00Z"}"#,
    r#"{"object":"whatsapp_business_account","type":"inbound","entry":[]}"#,
    r#"{"type":"inbound","id":"m9","waba":"W1","phone":"P1","user":"44","ts":1,"tags":["a"]}"#,
    r#"{"type":"other","id":"m8","waba":"W1","phone":"P1","user":"44","ts":1}"#,
];

/// The first lines of [`BASE`], which the scanner reads (the rest it
/// leaves to serde).
const PLAIN: usize = 10;

/// `pricing` and `conversation` objects of webhook statuses, as Meta sends
/// them and with the defects its samples have.
const OBJECTS: &[&str] = &[
    r#"{"billable":true,"pricing_model":"CBP","category":"user_initiated"}"#,
    r#"{"billable":false,"pricing_model":"PMP","category":"group_service","type":"free_group_customer_service","cost":{"amount":0.035,"currency":"USD"}}"#,
    r#"{"id":"902dd05035776d37a2bfcb42f6d16669","expiration_timestamp":"1646179205","origin":{"type":"user_initiated"}}"#,
    r#"{"id":12345,"expiration_timestamp":1646179205,"origin":{"type":"marketing","x":null},"type":"marketing","pricing":null}"#,
    r#" { "id" : "c1" , "origin" : null , "expiration_timestamp" : null , "billable" : "true" } "#,
    r#"{"id":"c2","origin":"referral_conversion","pricing":{"billable":false}}"#,
];

/// What each test inserts at every place of its base texts: the characters
/// JSON's grammar turns on, and a few whole tokens and keys.
const INSERTS: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\t",
    "\u{1}",
    "0",
    "1",
    "-",
    ".",
    "e",
    "n",
    "t",
    "f",
    "null",
    "é",
    "\"a\":1,",
    "\"id\":\"x\",",
    "\"type\":\"x\",",
    "\"id\":1,",
];

/// What reading `line` gives: the result and the events, as text.
fn read(line: &str, with_serde: bool) -> String {
    let mut out = Parsed::default();
    let result = if with_serde {
        parse_line_with_serde(line, Route::default(), &mut out)
    } else {
        parse_line(line, Route::default(), &mut out)
    };
    format!(
        "{result:?} {:?} {} {:?}",
        out.events,
        out.quarantined.len(),
        out.provider
    )
}

fn assert_same(line: &str) {
    assert_eq!(read(line, false), read(line, true), "line: {line}");
}

#[test]
fn the_scanner_reads_every_line_as_serde_does() {
    let mut lines = 0;
    for base in BASE {
        assert_same(base);
        let boundaries: Vec<usize> = (0..=base.len())
            .filter(|i| base.is_char_boundary(*i))
            .collect();
        for &i in &boundaries {
            for insert in INSERTS {
                let line = format!("{}{insert}{}", &base[..i], &base[i..]);
                assert_same(&line);
                lines += 1;
            }
            if let Some(&next) = boundaries.iter().find(|&&j| j > i) {
                let line = format!("{}{}", &base[..i], &base[next..]);
                assert_same(&line);
                lines += 1;
            }
        }
    }
    assert!(lines > 50_000, "only {lines} lines tried");
}

/// events.md section 1: a line's `provider` names the provider it came
/// through; any other value is no provider and never rejects the line.
#[test]
fn a_line_s_provider_is_read_and_an_unknown_one_is_no_provider() {
    let provider = |line: &str| {
        let mut out = Parsed::default();
        parse_line(line, Route::default(), &mut out).unwrap();
        assert_eq!(out.events.len(), 1, "{line}");
        out.provider.map(|p| p.as_str())
    };
    let line = |p: &str| {
        format!(
            r#"{{"type":"inbound","id":"m","waba":"W1","phone":"P1","user":"44","ts":1,"provider":{p}}}"#
        )
    };
    assert_eq!(provider(&line("\"zendesk\"")), Some("zendesk"));
    assert_eq!(provider(&line("\"360dialog\"")), Some("360dialog"));
    assert_eq!(provider(&line("\"carrier pigeon\"")), None);
    assert_eq!(provider(&line("7")), None);
    assert_eq!(provider(&line("null")), None);
}

#[test]
fn the_scanner_reads_pricing_and_conversation_objects_as_serde_does() {
    let read = |text: &str, scan: bool| {
        let as_pricing = wabill_ingest::verdict_of_objects(Some(text), None, scan);
        let as_conversation = wabill_ingest::verdict_of_objects(None, Some(text), scan);
        format!("{as_pricing:?} {as_conversation:?}")
    };
    let mut tried = 0;
    for base in OBJECTS {
        assert_eq!(read(base, true), read(base, false), "{base}");
        let boundaries: Vec<usize> = (0..=base.len())
            .filter(|i| base.is_char_boundary(*i))
            .collect();
        for &i in &boundaries {
            for insert in INSERTS {
                let text = format!("{}{insert}{}", &base[..i], &base[i..]);
                assert_eq!(read(&text, true), read(&text, false), "{text}");
                tried += 1;
            }
        }
    }
    assert!(tried > 10_000, "only {tried} objects tried");
}

/// The lines the scanner is for are read by it: a test of the scanner's
/// reach, so that it cannot silently leave everything to serde.
#[test]
fn plain_generated_lines_are_read_by_the_scanner() {
    for line in &BASE[..PLAIN] {
        assert!(
            wabill_ingest::is_plain_normalized(line),
            "left to serde: {line}"
        );
    }
    for line in &BASE[PLAIN..] {
        assert!(!wabill_ingest::is_plain_normalized(line), "scanned: {line}");
    }
}
