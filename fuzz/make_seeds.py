#!/usr/bin/env python3
"""Regenerates the committed seed corpus under fuzz/seeds/ (see docs/fuzzing.md).

Usage (from the repository root):

    python3 fuzz/make_seeds.py [META_PRICING_MD] [EVENTS_MD] [WABILL_BINARY]

defaults: docs/reference/meta-pricing.md, docs/spec/events.md,
target/release/wabill. Every webhook example is written compact, one body per
line, as the CLI reads files.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
META = Path(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "docs" / "reference" / "meta-pricing.md"))
EVENTS = Path(sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "docs" / "spec" / "events.md"))
WABILL = Path(sys.argv[3] if len(sys.argv) > 3 else ROOT / "target" / "release" / "wabill")


def section(text, number):
    """The body of markdown section `### <number> ...` (up to the next heading)."""
    m = re.search(rf"^#+ {re.escape(number)} .*?$(.*?)(?=^#+ )", text, re.M | re.S)
    if not m:
        raise SystemExit(f"section {number} not found")
    return m.group(1)


def fences(body, lang="json"):
    return re.findall(rf"```{lang}\n(.*?)```", body, re.S)


def compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write(target, name, text, newline=True):
    path = SEEDS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if newline and not text.endswith("\n"):
        text += "\n"
    path.write_text(text, encoding="utf-8")


def envelope(statuses, waba="102290129340398", phone_id="106540352242922"):
    """The standard Cloud API envelope of 6.5(a), around a bare `statuses` array."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{
            "id": waba,
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_id},
                    "statuses": statuses,
                },
                "field": "messages",
            }],
        }],
    }


def filled(value):
    """Meta's placeholders (TIMESTAMP, PHONE_NUMBER, …) replaced by plausible
    values, so the fuzzer starts from bodies the engine accepts."""
    text = compact(value)
    for old, new in [
        ("\"TIMESTAMP\"", "\"1668595349\""),
        ("\"PHONE_NUMBER\"", "\"923036547188\""),
        ("\"PHONE_NUMBER_ID\"", "\"107287895522530\""),
        ("\"WHATSAPP_BUSINESS_ACCOUNT_ID\"", "\"102290129340398\""),
        ("\"<WABA_ID>\"", "\"102290129340398\""),
        ("\"CONVERSATION_ID\"", "\"2e889aa0c7d5d0c9e2626780cadb6554\""),
        ("\"wamid.ID\"", "\"wamid.HBgMOTIzMDM2NTQ3MTg4FQIAERgSODRBNEVBMDAwRDlBNThCNUJGAA==\""),
    ]:
        text = text.replace(old, new)
    return json.loads(text)


def main():
    meta = META.read_text(encoding="utf-8")

    # ---- Cloud API (6.3, 6.4, 6.5 a–f, 6.6, 6.7) ----
    (s63,) = fences(section(meta, "6.3"))
    (s64,) = fences(section(meta, "6.4"))
    s65 = fences(section(meta, "6.5"))
    (s66,) = fences(section(meta, "6.6"))
    (s67,) = fences(section(meta, "6.7"))
    assert len(s65) == 6, len(s65)
    cloud = {
        "6.3-inbound.json": json.loads(s63),
        "6.4-inbound-referral.json": json.loads(s64),
    }
    bare = {}  # bare `statuses` bodies: also valid On-Premises bodies
    for letter, raw in zip("abcdef", s65):
        name = {"a": "sent-user-initiated", "b": "delivered-user-initiated",
                "c": "sent-business-initiated", "d": "sent-referral-conversion",
                "e": "failed", "f": "read"}[letter]
        value = json.loads(raw)
        if "object" not in value:
            bare[f"6.5{letter}-{name}.json"] = value
            value = envelope(value["statuses"])
        cloud[f"6.5{letter}-{name}.json"] = value
    for name, raw in [("6.6-cbp2-delivered-service.json", s66), ("6.7-pmp-sent-marketing.json", s67)]:
        value = json.loads(raw)
        bare[name] = value
        cloud[name] = envelope(value["statuses"])
    for name, value in cloud.items():
        write("cloud_api", name, compact(value))
        if "TIMESTAMP" in compact(value) or "<WABA_ID>" in compact(value):
            write("cloud_api", name.replace(".json", "-filled.json"), compact(filled(value)))

    # ---- On-Premises (6.9, plus the bare statuses arrays above) ----
    s69 = fences(section(meta, "6.9"))
    assert len(s69) == 2, len(s69)
    inbound, status = (json.loads(x) for x in s69)
    write("on_premises", "6.9-inbound-referral.json", compact(inbound))
    write("on_premises", "6.9-status-sent.json", compact(status))
    # v2.45+: `message.recipient_id` instead of the top-level `recipient_id` (6.9).
    nested = json.loads(compact(status))
    item = nested["statuses"][0]
    item["message"] = {"recipient_id": item.pop("recipient_id")}
    item["status"] = "delivered"
    write("on_premises", "6.9-status-v2.45-message-recipient.json", compact(nested))
    for name, value in bare.items():
        write("on_premises", name, compact(value))
        if "TIMESTAMP" in compact(value):
            write("on_premises", name.replace(".json", "-filled.json"), compact(filled(value)))
    write("on_premises", "6.9-both.ndjson", compact(inbound) + "\n" + compact(status) + "\n")

    # ---- Normalized (events.md section 1) ----
    ev = EVENTS.read_text(encoding="utf-8")
    (example,) = fences(section(ev, "1."), lang="")
    write("normalized", "events-md-1-example.ndjson", example)
    for i, line in enumerate(example.strip().split("\n"), 1):
        write("normalized", f"events-md-1-line{i}.ndjson", line)

    # ---- wabill gen ----
    def gen(*args):
        out = subprocess.run([str(WABILL), "gen", *args], check=True, capture_output=True, text=True)
        return out.stdout

    # A few lines each (whole 50-event files would raise libFuzzer's default
    # -max_len to their size and slow every execution down).
    nd = gen("--events", "50", "--seed", "1").strip().split("\n")
    write("normalized", "gen-seed1-first12.ndjson", "\n".join(nd[:12]))
    write("normalized", "gen-seed1-last8.ndjson", "\n".join(nd[-8:]))
    lines = gen("--events", "50", "--seed", "1", "--format", "cloud").strip().split("\n")
    write("cloud_api", "gen-cloud-seed1-first8.ndjson", "\n".join(lines[:8]))
    for i, line in enumerate(l for l in lines if l.startswith('{"object"')):
        if i >= 4:
            break
        write("cloud_api", f"gen-cloud-line{i + 1}.json", line)

    # ---- Timestamps (events.md section 1 and the examples) ----
    for i, value in enumerate([
        '1646647322', '"1646647322"', '1646647322.5', '"2022-03-07T10:02:02Z"',
        '"2022-03-07T13:02:02+03:00"', '"2022-03-07T10:02:02.000000001Z"',
        '"2022-03-01T00:00:01.884000Z"', '"\\u0032022-03-07T10:02:02Z"', '1668676620',
        '"TIMESTAMP"', '"2022-03-07T10:02:02"', '"2022-03-07"', '-5', '1.6e9',
        '1646647322.', 'null', 'true', '99999999999999999999', '1646647322.1234567891',
        '"1969-12-31T23:59:59.999999999-00:30"', '"9999-12-31T23:59:59Z"',
    ], 1):
        write("timestamp", f"ts{i:02}.json", value, newline=False)

    # ---- Rate cards and market maps (data/) ----
    data = ROOT / "data"
    for rel in [
        "rates/meta-cbp-2022_USD_2022-02-01.csv",
        "rates/meta-cbp-2023_USD_2023-06-01.csv",
        "rates/meta-cbp-2023_USD_authentication-international.csv",
        "rates/meta-pmp_USD_2025-07-01.csv",
        "rates/meta-pmp_USD_2026-10-01.csv",
        "markets/meta-markets-2022-02-01.csv",
        "markets/meta-markets-2026-10-01.csv",
    ]:
        write("rate_card", Path(rel).name, (data / rel).read_text(encoding="utf-8"))
    write("rate_card", "constructed-prefix-map.csv",
          "# number prefixes override regions\nregion,market\n+1876,Rest of Latin America\n44,United Kingdom\nNG,Nigeria\n")
    write("rate_card", "constructed-long-tiers.csv",
          "market,category,price,tier_from,tier_to\n"
          "Brazil,marketing,0.0625,,\nBrazil,utility,0.0068,,\n"
          "Other,utility,0.0080,0,1000\nOther,utility,0.0070,1001,\n"
          "Other,marketing,0.0604,,\n")

    # ---- The HTTP edge (crates/server/src/edge.rs): method, path, flags,
    # then query, headers and body separated by NUL bytes. Flags: 1 signs
    # the body as Meta, 2 and 4 add the bearer keys for every WABA and for
    # W1, 8 the routes' secret headers. Paths are edge.rs's PATHS.
    def http(name, method, path, flags, query="", headers="", body=""):
        data = bytes([method, path, flags]) + query.encode() + b"\0" + headers.encode() + b"\0" + body.encode()
        out = SEEDS / "http" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)

    GET, POST = 0, 1
    cloud = (SEEDS / "cloud_api" / "2026-max_price_marketing_lite_cost.json").read_text(encoding="utf-8").strip()
    http("meta-signed-cloud-body", POST, 0, 1, body=cloud)
    http("meta-unsigned", POST, 0, 0, body=cloud)
    http("meta-handshake", GET, 0, 0, query="hub.mode=subscribe&hub.verify_token=edge-verify&hub.challenge=42")
    http("dialog-statuses", POST, 1, 8, body=compact(status))
    http("events-ndjson", POST, 3, 2, headers="Content-Type: application/x-ndjson", body=example)
    http("events-w1-key-w2-event", POST, 3, 4, body=example.replace('"W1"', '"W2"'))
    http("window", GET, 4, 4, query="waba=W1&phone=P1&user=2348031234567&at=2022-03-07T11:00:00Z")
    http("quote", GET, 5, 2, query="waba=W1&phone=P1&user=%2B2348031234567&kind=template&category=marketing&at=2022-03-08T11:00:00Z")
    http("invoice", GET, 6, 2)
    http("conversations", GET, 7, 2, query="waba=W1&month=2022-03&limit=1")
    http("readyz", GET, 10, 0)
    http("reprocess", POST, 14, 2, query="waba=W1")


if __name__ == "__main__":
    main()
