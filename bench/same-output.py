#!/usr/bin/env python3
"""The service half of bench/same-output.sh: feeds one workload to a running
`wabill serve` and writes every answer it asks for into OUT_DIR, one file
per kind of question, so that two builds' answers can be compared with cmp.

  same-output.py PORT EVENTS_FILE INVOICE_JSON OUT_DIR

EVENTS_FILE is the workload (normalized lines and Cloud API bodies);
INVOICE_JSON is `wabill invoice --format json` of it, which names the
(WABA, month) pairs to ask about. Every request goes to 127.0.0.1 over one
keep-alive connection, in a fixed order, so two runs ask the same questions
in the same order. Each answer is written as `status` and body, so error
answers are compared too.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import sys
import urllib.parse

# The secrets bench/same-output.sh writes into the configuration.
APP_SECRET = b"s3cret"
TOKEN_ALL = "tok-all"  # a key for every WABA
TOKEN_ONE = "tok-one"  # a key for the first WABA of the configuration only
MAX_EVENTS = 10_000  # service.md: at most 10 000 events per request
MAX_BYTES = 4 << 20  # well under the body_limit_bytes the script sets
MAX_ENTRIES = 1_000  # Cloud API entries merged into one webhook body
POINTS = 300  # (pair, time) points asked about /v1/window and /v1/quote
MAX_PAGES = 100_000  # bounds the conversation paging loop


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def ask(self, method, path, body=None, headers=None, token=TOKEN_ALL):
        head = dict(headers or {})
        if token:
            head["Authorization"] = "Bearer " + token
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=head)
                answer = self.conn.getresponse()
                return answer.status, answer.read()
            except (http.client.HTTPException, ConnectionError):
                # The server may close an idle keep-alive connection: reconnect once.
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        raise AssertionError("unreachable")


def record(out, method, path, status, body):
    out.write(f"{method} {path}\n{status}\n".encode())
    out.write(body)
    out.write(b"\n")


def unix_seconds(ts):
    """An event's `ts` (events.md: RFC 3339 or Unix seconds) as whole seconds."""
    if isinstance(ts, (int, float)):
        return int(ts)
    if re.fullmatch(r"[0-9]+", ts):
        return int(ts)
    if re.fullmatch(r"[0-9]+\.[0-9]*", ts):
        return int(float(ts))
    # Drop sub-second digits (fromisoformat takes at most six).
    text = re.sub(r"\.[0-9]+", "", ts).replace("Z", "+00:00")
    return int(datetime.datetime.fromisoformat(text).timestamp())


def rfc3339(seconds, offset_minutes=0):
    zone = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    text = datetime.datetime.fromtimestamp(seconds, zone).isoformat()
    return text.replace("+00:00", "Z")


def post_events(client, lines, out):
    """Normalized lines through POST /v1/events, in file order, in batches."""
    batch, size = [], 0

    def flush():
        nonlocal batch, size
        if batch:
            body = b"".join(batch)
            status, answer = client.ask(
                "POST", "/v1/events", body, {"Content-Type": "application/x-ndjson"}
            )
            record(out, "POST", f"/v1/events ({len(batch)} lines)", status, answer)
            if status != 200:
                sys.exit(f"POST /v1/events answered {status}: {answer[:300]!r}")
        batch, size = [], 0

    for line in lines:
        if len(batch) == MAX_EVENTS or size + len(line) > MAX_BYTES:
            flush()
        batch.append(line)
        size += len(line)
    flush()


def post_webhooks(client, bodies, out):
    """Cloud API bodies through POST /webhooks/meta, signed, their entries
    merged (in file order) into bodies of up to MAX_ENTRIES entries."""
    entries, size = [], 0

    def flush():
        nonlocal entries, size
        if entries:
            body = b'{"object":"whatsapp_business_account","entry":[' + b",".join(entries) + b"]}"
            sig = hmac.new(APP_SECRET, body, hashlib.sha256).hexdigest()
            status, answer = client.ask(
                "POST",
                "/webhooks/meta",
                body,
                {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + sig},
                token=None,
            )
            record(out, "POST", f"/webhooks/meta ({len(entries)} entries)", status, answer)
            if status != 200:
                sys.exit(f"POST /webhooks/meta answered {status}: {answer[:300]!r}")
        entries, size = [], 0

    for line in bodies:
        for entry in json.loads(line)["entry"]:
            raw = json.dumps(entry, separators=(",", ":")).encode()
            if len(entries) == MAX_ENTRIES or size + len(raw) > MAX_BYTES:
                flush()
            entries.append(raw)
            size += len(raw)
    flush()


def sample_points(lines):
    """About POINTS (waba, phone, user, ts) taken evenly from the normalized lines."""
    step = max(1, len(lines) // POINTS)
    points = []
    for line in lines[::step][:POINTS]:
        event = json.loads(line)
        points.append((event["waba"], event["phone"], str(event["user"]), unix_seconds(event["ts"])))
    return points


# `at` relative to the sampled event: before, at, just after, inside and past
# a 24-h window, and past a 72-h free entry point.
OFFSETS = [-60, 0, 1, 3600, 86_399, 86_401, 3 * 86_400 + 5, 40 * 86_400]
CATEGORIES = ["marketing", "utility", "authentication"]


def window_and_quote(client, points, out):
    for i, (waba, phone, user, ts) in enumerate(points):
        at_s = ts + OFFSETS[i % len(OFFSETS)]
        # `at` as Unix seconds, RFC 3339 UTC, or RFC 3339 with an offset.
        at = [str(at_s), rfc3339(at_s), rfc3339(at_s, 330)][i % 3]
        pair = urllib.parse.urlencode({"waba": waba, "phone": phone, "user": user, "at": at})
        path = f"/v1/window?{pair}"
        record(out, "GET", path, *client.ask("GET", path))
        path = f"/v1/quote?{pair}&kind=freeform"
        record(out, "GET", path, *client.ask("GET", path))
        path = f"/v1/quote?{pair}&kind=template&category={CATEGORIES[i % len(CATEGORIES)]}"
        record(out, "GET", path, *client.ask("GET", path))


def conversations(client, query, out):
    cursor = None
    for _ in range(MAX_PAGES):
        path = "/v1/conversations?" + urllib.parse.urlencode(query)
        if cursor:
            path += "&cursor=" + urllib.parse.quote(cursor, safe="")
        status, body = client.ask("GET", path)
        record(out, "GET", path, status, body)
        if status != 200:
            return
        cursor = json.loads(body).get("next_cursor")
        if not cursor:
            return
    sys.exit(f"more than {MAX_PAGES} pages for {query}")


def errors(client, months, points, out):
    """Answers that are errors, or about nothing: their codes and messages
    are part of the contract too."""
    waba, month = months[0]
    other = next((w for w, _ in months if w != waba), waba)
    w, p, u, ts = points[0]
    asks = [
        ("GET", f"/v1/invoices/{waba}/1999-01", TOKEN_ALL),
        ("GET", f"/v1/invoices/{waba}/2024-13", TOKEN_ALL),
        ("GET", f"/v1/invoices/{waba}/{month}", None),
        ("GET", f"/v1/invoices/{waba}/{month}", "wrong-token"),
        ("GET", f"/v1/invoices/{other}/{month}", TOKEN_ONE),
        ("GET", f"/v1/invoices/{waba}/{month}", TOKEN_ONE),
        ("GET", f"/v1/invoices/NOPE/{month}", TOKEN_ALL),
        ("GET", f"/v1/window?waba={w}&phone={p}&at={ts}", TOKEN_ALL),
        ("GET", f"/v1/window?waba={w}&phone={p}&user={u}&at=yesterday", TOKEN_ALL),
        ("GET", f"/v1/window?waba={w}&phone={p}&user={u}&user={u}", TOKEN_ALL),
        ("GET", f"/v1/window?waba={w}&phone={p}&user=12ab&at={ts}", TOKEN_ALL),
        ("GET", f"/v1/window?waba=NOPE&phone=P&user=1&at={ts}", TOKEN_ALL),
        ("GET", f"/v1/quote?waba={w}&phone={p}&user={u}&at={ts}", TOKEN_ALL),
        ("GET", f"/v1/quote?waba={w}&phone={p}&user={u}&at={ts}&kind=bogus", TOKEN_ALL),
        ("GET", f"/v1/quote?waba={w}&phone={p}&user={u}&at={ts}&kind=template", TOKEN_ALL),
        ("GET", f"/v1/quote?waba={w}&phone={p}&user={u}&at={ts}&kind=template&category=bogus", TOKEN_ALL),
        ("GET", f"/v1/quote?waba={w}&phone={p}&user={u}&at={ts}&kind=template&category=MARKETING", TOKEN_ALL),
        ("GET", f"/v1/quote?waba={w}&phone={p}&user={u}&at={ts}&kind=freeform&category=utility", TOKEN_ALL),
        ("GET", f"/v1/conversations?waba={waba}", TOKEN_ALL),
        ("GET", f"/v1/conversations?waba={waba}&month={month}&cursor=garbage", TOKEN_ALL),
        ("GET", f"/v1/conversations?waba={waba}&month={month}&limit=0", TOKEN_ALL),
        ("GET", f"/v1/conversations?waba={waba}&month={month}&limit=5000", TOKEN_ALL),
        ("GET", f"/v1/conversations?waba={waba}&month={month}&limit=x", TOKEN_ALL),
        ("GET", "/v1/nope", TOKEN_ALL),
        ("DELETE", "/v1/events", TOKEN_ALL),
        ("GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=v&hub.challenge=42", None),
        ("GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=x&hub.challenge=42", None),
        ("GET", "/healthz", None),
    ]
    for method, path, token in asks:
        record(out, method, f"{path} [{token}]", *client.ask(method, path, token=token))
    # Bad input: rejected lines with their reasons, bad bodies, bad signatures.
    good = json.dumps({"type": "inbound", "id": "wamid.same-output.1", "waba": w, "phone": p,
                       "user": u, "ts": ts})
    bad_lines = "\n".join([
        good,
        "not json",
        json.dumps({"type": "inbound", "id": "x2", "waba": w, "phone": p, "ts": ts}),
        json.dumps({"type": "inbound", "id": "x3", "waba": w, "phone": p, "user": u, "ts": "2024-01-01"}),
        json.dumps({"type": "inbound", "id": "x4", "waba": w, "phone": p, "user": "55-11", "ts": ts}),
        json.dumps({"type": "outbound", "id": "x5", "waba": w, "phone": p, "user": u, "ts": ts,
                    "template": {"name": "t", "category": "promo"}}),
        json.dumps({"type": "status", "id": "x6", "waba": w, "phone": p, "user": u, "ts": ts}),
        json.dumps({"type": "sideways", "id": "x7", "waba": w, "phone": p, "user": u, "ts": ts}),
        json.dumps({"object": "whatsapp_business_account", "entry": []}),
        good,
    ]).encode()
    asks = [
        ("/v1/events", bad_lines, {"Content-Type": "application/x-ndjson"}, TOKEN_ALL),
        ("/v1/events", b"[1, 2", {"Content-Type": "application/json"}, TOKEN_ALL),
        ("/v1/events", b"\n".join([good.encode()] * (MAX_EVENTS + 1)), {}, TOKEN_ALL),
        ("/v1/events", good.encode(), {}, None),
        ("/v1/events", good.replace(w, "OTHER").encode(), {}, TOKEN_ONE),
        ("/webhooks/meta", b'{"object":"whatsapp_business_account","entry":[]}',
         {"X-Hub-Signature-256": "sha256=00"}, None),
        ("/webhooks/meta", b"{}", {}, None),
        ("/webhooks/360dialog/none", b"{}", {}, None),
    ]
    for path, body, headers, token in asks:
        record(out, "POST", f"{path} [{token}] {hashlib.sha256(body).hexdigest()[:12]}",
               *client.ask("POST", path, body, headers, token=token))


def main():
    port, events_file, invoice_json, out_dir = sys.argv[1:5]
    client = Client(int(port))
    with open(events_file, "rb") as f:
        lines = [line if line.endswith(b"\n") else line + b"\n" for line in f if line.strip()]
    normalized = [line for line in lines if not line.startswith(b'{"object"')]
    bodies = [line for line in lines if line.startswith(b'{"object"')]
    with open(invoice_json) as f:
        months = [(i["waba"], i["month"]) for i in json.load(f)["invoices"]]
    points = sample_points(normalized)
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731

    # Normalized events first (outbound messages before the statuses about
    # them in the Cloud workload), then the Cloud API bodies.
    with open(path("svc-post.txt"), "wb") as out:
        post_events(client, normalized, out)
        post_webhooks(client, bodies, out)
    with open(path("svc-invoices.txt"), "wb") as out:
        for waba, month in months:
            p = f"/v1/invoices/{waba}/{month}"
            record(out, "GET", p, *client.ask("GET", p))
    with open(path("svc-conversations.txt"), "wb") as out:
        for waba, month in months:
            conversations(client, {"waba": waba, "month": month, "limit": 1000}, out)
        # The default page size, and the phone and user filters, on a few.
        for waba, month in months[:1]:
            conversations(client, {"waba": waba, "month": month}, out)
        for waba, phone, user, ts in points[:: max(1, len(points) // 10)]:
            month = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m")
            conversations(client, {"waba": waba, "month": month, "phone": phone}, out)
            conversations(client, {"waba": waba, "month": month, "phone": phone, "user": user}, out)
    with open(path("svc-window-quote.txt"), "wb") as out:
        window_and_quote(client, points, out)
    with open(path("svc-errors.txt"), "wb") as out:
        errors(client, months, points, out)
    # The document apart: it may grow (more schemas) while no answer changes.
    with open(path("svc-openapi.txt"), "wb") as out:
        record(out, "GET", "/openapi.json", *client.ask("GET", "/openapi.json"))


if __name__ == "__main__":
    main()
