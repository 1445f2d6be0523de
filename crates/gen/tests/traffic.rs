#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;
use wabill_gen::{Format, GenConfig, GenStats, generate};

fn run(cfg: &GenConfig) -> (Vec<u8>, GenStats) {
    let mut out = Vec::new();
    let stats = generate(cfg, &mut out).unwrap();
    (out, stats)
}

fn cfg(events: u64, seed: u64, format: Format) -> GenConfig {
    let mut c = GenConfig::new(events, seed);
    c.format = format;
    c
}

fn lines(out: &[u8]) -> Vec<&str> {
    std::str::from_utf8(out).unwrap().lines().collect()
}

/// Events carried by one line (normalized line: 1; Cloud body: its items).
fn events_in(v: &Value) -> u64 {
    if v.get("object").is_some() {
        let mut n = 0;
        for entry in v["entry"].as_array().unwrap() {
            for ch in entry["changes"].as_array().unwrap() {
                let val = &ch["value"];
                n += val
                    .get("messages")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                n += val
                    .get("statuses")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
            }
        }
        n as u64
    } else {
        1
    }
}

/// Seconds (with millis) of a `ts` / `timestamp` value in any accepted shape.
fn ts_ms(v: &Value) -> i64 {
    match v {
        Value::Number(n) => {
            let s = n.to_string();
            match s.split_once('.') {
                Some((a, b)) => {
                    a.parse::<i64>().unwrap() * 1000
                        + format!("{b:0<3}")[..3].parse::<i64>().unwrap()
                }
                None => s.parse::<i64>().unwrap() * 1000,
            }
        }
        Value::String(s) if s.bytes().all(|c| c.is_ascii_digit()) => {
            s.parse::<i64>().unwrap() * 1000
        }
        Value::String(s) => s.parse::<jiff::Timestamp>().unwrap().as_millisecond(),
        other => panic!("bad ts {other}"),
    }
}

#[test]
fn deterministic_for_a_seed() {
    for format in [Format::Ndjson, Format::Cloud] {
        let (a, sa) = run(&cfg(4000, 11, format));
        let (b, sb) = run(&cfg(4000, 11, format));
        let (c, _) = run(&cfg(4000, 12, format));
        assert_eq!(sa, sb);
        assert!(a == b, "same seed, different bytes ({format:?})");
        assert!(a != c, "different seeds, same bytes ({format:?})");
    }
}

#[test]
fn exact_event_count_and_valid_json() {
    for format in [Format::Ndjson, Format::Cloud] {
        for n in [0u64, 1, 2, 3, 17, 250, 3001] {
            let (out, stats) = run(&cfg(n, n + 5, format));
            let ls = lines(&out);
            let mut total = 0;
            for l in &ls {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                total += events_in(&v);
            }
            assert_eq!(total, n, "{format:?} {n}");
            assert_eq!(stats.events, n);
            assert_eq!(stats.lines, ls.len() as u64);
            assert_eq!(stats.bytes, out.len() as u64);
        }
    }
}

#[test]
fn dense_and_odd_configurations() {
    let mut c = cfg(20_000, 3, Format::Cloud);
    c.days = 1;
    c.wabas = 1;
    c.users = 1;
    let (out, stats) = run(&c);
    assert_eq!(stats.events, 20_000);
    let total: u64 = lines(&out)
        .iter()
        .map(|l| events_in(&serde_json::from_str(l).unwrap()))
        .sum();
    assert_eq!(total, 20_000);

    let mut c = cfg(5_000, 4, Format::Ndjson);
    c.wabas = 40;
    c.days = 365;
    c.start = jiff::civil::date(2023, 1, 15);
    let (out, _) = run(&c);
    let lo = jiff::civil::date(2023, 1, 15)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond();
    let hi = lo + 365 * 86_400_000;
    let mut wabas = BTreeSet::new();
    for l in lines(&out) {
        let v: Value = serde_json::from_str(l).unwrap();
        let t = ts_ms(&v["ts"]);
        assert!(t >= lo - 1000 && t < hi, "{l}");
        wabas.insert(v["waba"].as_str().unwrap().to_string());
    }
    assert!(wabas.len() > 20, "{}", wabas.len());
}

/// Parsed normalized events of an NDJSON file, per line.
struct Parsed {
    raw: Vec<String>,
    vals: Vec<Value>,
}

fn parse_ndjson(events: u64, seed: u64) -> Parsed {
    let (out, _) = run(&cfg(events, seed, Format::Ndjson));
    let raw: Vec<String> = lines(&out).into_iter().map(str::to_string).collect();
    let vals = raw
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Parsed { raw, vals }
}

#[test]
fn ndjson_traffic_has_every_feature() {
    let p = parse_ndjson(30_000, 2024);
    let start = 1_646_092_800_000i64; // 2022-03-01
    let end = start + 30 * 86_400_000;

    let mut referral = 0;
    let mut inbound = 0;
    let mut categories = BTreeMap::<String, u32>::new();
    let mut statuses = BTreeMap::<String, u32>::new();
    let mut ts_shapes = BTreeSet::new();
    let mut per_msg: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
    let mut first_outbound: BTreeMap<String, usize> = BTreeMap::new();
    let mut first_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut meta = 0;
    let mut seen = HashSet::new();
    let mut dups = 0;
    let mut message_ids = HashSet::new();
    for (i, (l, v)) in p.raw.iter().zip(&p.vals).enumerate() {
        let ts = &v["ts"];
        let t = ts_ms(ts);
        assert!((start..end).contains(&t), "{l}");
        ts_shapes.insert(match ts {
            Value::Number(n) if n.is_u64() => "int",
            Value::Number(_) => "decimal",
            Value::String(s) if s.bytes().all(|c| c.is_ascii_digit()) => "digits",
            Value::String(s) if s.ends_with('Z') && s.contains('.') => "rfc-z-frac",
            Value::String(s) if s.ends_with('Z') => "rfc-z",
            Value::String(_) => "rfc-offset",
            _ => "other",
        });
        let user = v["user"].as_str().unwrap();
        assert!(
            user.bytes().all(|c| c.is_ascii_digit()) && (9..=15).contains(&user.len()),
            "{l}"
        );
        let id = v["id"].as_str().unwrap().to_string();
        assert!(
            id.starts_with("wamid.") && (50..=66).contains(&id.len()),
            "{id}"
        );
        if !seen.insert(l.clone()) {
            dups += 1;
            continue;
        }
        match v["type"].as_str().unwrap() {
            "inbound" => {
                inbound += 1;
                if v.get("referral").is_some() {
                    referral += 1;
                }
                assert!(message_ids.insert(id), "reused id {l}");
            }
            "outbound" => {
                let cat = match v.get("template") {
                    Some(t) => t["category"].as_str().unwrap().to_lowercase(),
                    None => "none".to_string(),
                };
                *categories.entry(cat).or_default() += 1;
                first_outbound.entry(id.clone()).or_insert(i);
                assert!(message_ids.insert(id), "reused id {l}");
            }
            "status" => {
                let s = v["status"].as_str().unwrap().to_string();
                *statuses.entry(s.clone()).or_default() += 1;
                first_status.entry(id.clone()).or_insert(i);
                per_msg.entry(id).or_default().push((i, s));
                if v.get("meta").is_some() {
                    meta += 1;
                }
            }
            other => panic!("type {other}"),
        }
    }
    let n = p.raw.len();
    // duplicates: about 2%
    assert!(dups * 1000 > n * 8 && dups * 1000 < n * 40, "{dups} of {n}");
    // referral on ~5% of sessions, so a few percent of inbound messages
    assert!(
        referral > 0 && referral * 100 < inbound * 10,
        "{referral} / {inbound}"
    );
    for c in ["marketing", "utility", "authentication", "none"] {
        assert!(
            categories.get(c).copied().unwrap_or(0) > 0,
            "{c}: {categories:?}"
        );
    }
    for s in ["sent", "delivered", "read", "failed"] {
        assert!(
            statuses.get(s).copied().unwrap_or(0) > 0,
            "{s}: {statuses:?}"
        );
    }
    for shape in [
        "int",
        "decimal",
        "digits",
        "rfc-z",
        "rfc-z-frac",
        "rfc-offset",
    ] {
        assert!(ts_shapes.contains(shape), "{shape}: {ts_shapes:?}");
    }
    assert!(meta > 0);
    let mut read_without_delivered = 0;
    let mut read_before_delivered = 0;
    let mut only_sent = 0;
    let mut failed_only = 0;
    let mut failed_after_sent = 0;
    for v in per_msg.values() {
        let has = |s: &str| v.iter().any(|x| x.1 == s);
        let pos = |s: &str| v.iter().position(|x| x.1 == s);
        if has("read") && !has("delivered") {
            read_without_delivered += 1;
        }
        if let (Some(r), Some(d)) = (pos("read"), pos("delivered"))
            && r < d
        {
            read_before_delivered += 1;
        }
        if v.len() == 1 && v[0].1 == "sent" {
            only_sent += 1;
        }
        if v.len() == 1 && v[0].1 == "failed" {
            failed_only += 1;
        }
        if has("sent") && has("failed") {
            failed_after_sent += 1;
        }
    }
    let status_first = first_status
        .iter()
        .filter(|(id, i)| first_outbound.get(*id).is_some_and(|o| o > *i))
        .count();
    assert!(read_without_delivered > 0);
    assert!(read_before_delivered > 0);
    assert!(only_sent > 0);
    assert!(failed_only > 0);
    assert!(failed_after_sent > 0);
    assert!(status_first > 0, "no status before its outbound record");
}

#[test]
fn cloud_bodies_are_shaped_like_meta() {
    let (out, _) = run(&cfg(20_000, 99, Format::Cloud));
    let mut bodies = 0;
    let mut outbound_lines = 0;
    let mut batched = 0;
    let mut conversations = 0;
    let mut referral = 0;
    let mut errors = 0;
    for l in lines(&out) {
        let v: Value = serde_json::from_str(l).unwrap();
        if v.get("object").is_none() {
            assert_eq!(v["type"], "outbound", "{l}");
            outbound_lines += 1;
            continue;
        }
        bodies += 1;
        assert_eq!(v["object"], "whatsapp_business_account");
        let entry = &v["entry"][0];
        assert!(
            entry["id"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|c| c.is_ascii_digit())
        );
        let ch = &entry["changes"][0];
        assert_eq!(ch["field"], "messages");
        let val = &ch["value"];
        assert_eq!(val["messaging_product"], "whatsapp");
        assert!(val["metadata"]["phone_number_id"].is_string());
        assert!(val["metadata"]["display_phone_number"].is_string());
        if let Some(msgs) = val.get("messages") {
            assert_eq!(val["contacts"][0]["wa_id"], msgs[0]["from"]);
            assert!(msgs[0]["timestamp"].is_string() || msgs[0]["timestamp"].is_u64());
            if msgs[0].get("referral").is_some() {
                referral += 1;
            }
        } else {
            let sts = val["statuses"].as_array().unwrap();
            if sts.len() > 1 {
                batched += 1;
            }
            for s in sts {
                assert!(
                    s["recipient_id"].is_string() && s["id"].is_string() && s["status"].is_string()
                );
                if let Some(c) = s.get("conversation") {
                    conversations += 1;
                    assert!(c["origin"]["type"].is_string());
                    assert_eq!(s["pricing"]["pricing_model"], "CBP");
                }
                if s.get("errors").is_some() {
                    errors += 1;
                    assert_eq!(s["status"], "failed");
                }
            }
        }
    }
    assert!(bodies > 0 && outbound_lines > 0 && batched > 0);
    assert!(conversations > 0 && referral > 0 && errors > 0);
}

#[test]
fn every_user_has_a_region_and_markets_are_varied() {
    let mut c = cfg(40_000, 5, Format::Ndjson);
    c.users = 20_000;
    let (out, _) = run(&c);
    let mut users = BTreeSet::new();
    for l in lines(&out) {
        let v: Value = serde_json::from_str(l).unwrap();
        users.insert(v["user"].as_str().unwrap().to_string());
    }
    let mut regions = BTreeMap::<String, u32>::new();
    let lookup = wabill_engine::market::RegionLookup::new();
    for u in &users {
        let id = lookup
            .region_of(u)
            .unwrap_or_else(|| panic!("no region for {u}"));
        *regions.entry(id.as_str().to_owned()).or_default() += 1;
    }
    assert!(regions.len() >= 40, "{regions:?}");
    // the heavy markets lead
    let top: u32 = ["BR", "IN", "ID", "MX", "NG"]
        .iter()
        .map(|r| regions.get(*r).copied().unwrap_or(0))
        .sum();
    assert!(top * 2 > users.len() as u32, "{regions:?}");
    for r in ["US", "GB", "RU", "KZ", "PR", "DO", "CA", "KR"] {
        assert!(regions.contains_key(r), "{r} missing: {regions:?}");
    }
}
