#!/bin/bash
# The cost of settling (docs/performance.md, Incremental billing): posts a
# generated month (EVENTS, default 1 000 000) through /v1/events, reads an
# invoice twice, posts one late event, reads it twice again, and prints what
# the batch CLI takes for the same events. Run from the repository root.
set -e
BIN=${BIN:-./target/release/wabill}
WORK=${WORK:-/tmp/wabill-settle}
mkdir -p "$WORK"
pkill -f "serve --listen 127.0.0.1:18081" || true; sleep 0.5
rm -rf $WORK/data $WORK/chunks; mkdir -p $WORK/chunks
cat > $WORK/settle.toml <<T
[server]
data_dir = "$WORK/data"
body_limit_bytes = 4194304
[[api_key]]
sha256 = "$(printf %s tok123 | sha256sum | cut -d' ' -f1)"
wabas = ["*"]
T
[ -f $WORK/gen.ndjson ] || $BIN gen --events ${EVENTS:-1000000} --seed 5 --wabas 3 -o $WORK/gen.ndjson
split -l 10000 $WORK/gen.ndjson $WORK/chunks/c.
WABILL_LOG=warn $BIN --config $WORK/settle.toml serve --listen 127.0.0.1:18081 > $WORK/settle.log 2>&1 &
sleep 1
start=$(date +%s.%N)
for f in $WORK/chunks/c.*; do
  curl -s -o /dev/null -w '' -H "Authorization: Bearer tok123" -H "Content-Type: application/x-ndjson" --data-binary @$f http://127.0.0.1:18081/v1/events
done
echo "posted in $(echo "$(date +%s.%N) - $start" | bc) s"
WABA=$(head -1 $WORK/gen.ndjson | sed 's/.*"waba":"\([^"]*\)".*/\1/')
MONTH=2022-03
for i in 1 2; do
  curl -s -o /dev/null -w "first reads: %{http_code} %{time_total}s\n" -H "Authorization: Bearer tok123" http://127.0.0.1:18081/v1/invoices/$WABA/$MONTH
done
# one late event: a delivery of an early message, two weeks back
LINE=$(grep '"type":"outbound"' $WORK/gen.ndjson | head -1 | sed 's/"type":"outbound"/"type":"status","status":"read"/; s/"id":"\([^"]*\)"/"id":"\1-late"/')
OUT=$(echo "$LINE" | sed 's/"type":"status","status":"read"/"type":"outbound"/')
printf '%s\n%s\n' "$OUT" "$LINE" | curl -s -H "Authorization: Bearer tok123" -H "Content-Type: application/x-ndjson" --data-binary @- http://127.0.0.1:18081/v1/events; echo
for i in 1 2; do
  curl -s -o /dev/null -w "after one late event: %{http_code} %{time_total}s\n" -H "Authorization: Bearer tok123" http://127.0.0.1:18081/v1/invoices/$WABA/$MONTH
done
$BIN invoice --stats --format json $WORK/gen.ndjson 2>&1 >/dev/null | grep stats
pkill -f "serve --listen 127.0.0.1:18081"
