#!/bin/bash
# The cluster benchmark (docs/performance.md, issue 19): receivers and
# workers on this machine's PostgreSQL and NATS JetStream. For each count
# of workers in WORKERS, a fresh schema and stream: RECEIVERS receivers and
# that many workers started, the partitions owned, then `wabill load`
# sends signed Meta webhooks (one new event each, spread over 64 WABAs) to
# the receivers for SECS seconds (at RATE/s, open loop, or closed loop
# when RATE is empty). One line per count of workers:
#
#   webhooks   answered/s and latency at the receivers (the load's figures:
#              p99 is the webhook's answer, after JetStream's ack)
#   stored     events/s the workers committed to PostgreSQL while the load
#              ran (the log's growth between 2 s after the start and 1 s
#              before the end), and how long after the load the last
#              event was stored (the stream drained)
#
# First, for comparison, the same load against one `wabill serve` (role
# single) on the embedded store and on PostgreSQL (SINGLE=0 skips it):
# there the answer comes once the event is stored.
#
#   cargo build --release && bench/cluster.sh
#   WORKERS="1 3" RECEIVERS=2 RATE=5000 SECS=20 bench/cluster.sh
set -euo pipefail
BIN=${BIN:-./target/release/wabill}
WORKERS=${WORKERS:-"1 2 3"}
RECEIVERS=${RECEIVERS:-1}
RATE=${RATE:-}
SECS=${SECS:-15}
PARTITIONS=${PARTITIONS:-16}
PG="postgres://postgres@127.0.0.1:5432/test"
WORK=$(mktemp -d)
PIDS=()
SCHEMA=
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$SCHEMA" ] && drop_schemas "$SCHEMA"
  rm -rf "$WORK"
}
trap cleanup EXIT
sql() { psql -qAt "$PG" -c "SET client_min_messages = warning" -c "$1"; }
drop_schemas() {
  sql "SELECT nspname FROM pg_namespace WHERE nspname = '$1' OR nspname LIKE '$1\_p%'" |
    while read -r s; do sql "DROP SCHEMA \"$s\" CASCADE"; done
}
# JetStream's API over plain NATS: delete a stream (no nats CLI needed).
delete_stream() {
  (
    exec 3<>/dev/tcp/127.0.0.1/4222
    printf 'CONNECT {"verbose":false}\r\nPUB $JS.API.STREAM.DELETE.%s 0\r\n\r\nPING\r\n' "$1" >&3
    timeout 2 grep -q PONG <&3
  ) || true
}
# start ROLE: a process of the cluster; prints its URL.
start() {
  local out="$WORK/$1.$RANDOM"
  WABILL_LOG=warn "$BIN" --config "$WORK/wabill.toml" serve --role "$1" > "$out" 2>> "$WORK/log" &
  PIDS+=($!)
  for _ in $(seq 100); do
    [ -s "$out" ] && { sed -n 's/^wabill listening on //p' "$out" | head -1; return; }
    sleep 0.1
  done
  echo "a $1 did not start: $(tail -3 "$WORK/log")" >&2; exit 1
}
# The events stored in every partition's log.
stored() {
  local q="SELECT 0" p
  for p in $(seq 0 $((PARTITIONS - 1))); do
    q="$q + coalesce((SELECT max(seq) FROM ${SCHEMA}_p$p.log), 0)"
  done
  sql "$q"
}
now() { date +%s.%N; }

# load URL...: one `wabill load` per URL, in parallel, for SECS; prints
# "answered/s (latencies)".
load() {
  local pids=() i
  for i in $(seq 1 $#); do
    "$BIN" load --url "${!i}" --mode webhooks --app-secret s3cret --wabas 64 \
      --connections $((64 / $#)) --seconds "$SECS" ${RATE:+--rate $((RATE / $#))} \
      > "$WORK/load.$i.txt" &
    pids+=($!)
  done
  wait "${pids[@]}"
  local answered lat
  answered=$(cat "$WORK"/load.*.txt | awk '/answered in/ {gsub(/[(\/]/, " "); for (i = 1; i <= NF; i++) if ($i == "s") {s += $(i+1)}} END {print s}')
  lat=$(cat "$WORK"/load.*.txt | awk '/latency ms/ {print}' | sed 's/latency ms: //' | paste -sd'|')
  rm -f "$WORK"/load.*.txt
  echo "$answered/s ($lat)"
}

if [ "${SINGLE:-1}" = 1 ]; then
  for store in embedded postgres; do
    SCHEMA="bench_single_$$"
    sql "CREATE SCHEMA $SCHEMA"
    STORE="$WORK/data"
    [ $store = postgres ] && STORE="$PG?options=-csearch_path%3D$SCHEMA"
    cat > "$WORK/wabill.toml" <<T
[server]
listen = "127.0.0.1:0"
store = "$STORE"
[meta]
app_secret = "s3cret"
verify_token = "v"
T
    url=$(start single)
    printf 'single service, %s store: webhooks %s, each stored before its answer\n' "$store" "$(load "$url")"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
    rm -rf "$WORK/data"
    drop_schemas "$SCHEMA"; SCHEMA=
  done
fi

for W in $WORKERS; do
  SCHEMA="bench_cluster_$$_$W"
  STREAM="BENCH$$W$W"
  sql "CREATE SCHEMA $SCHEMA"
  cat > "$WORK/wabill.toml" <<T
[server]
listen = "127.0.0.1:0"
store = "$PG?options=-csearch_path%3D$SCHEMA"
[meta]
app_secret = "s3cret"
verify_token = "v"
[cluster]
stream = "$STREAM"
partitions = $PARTITIONS
T
  URLS=()
  for _ in $(seq "$RECEIVERS"); do URLS+=("$(start receiver)"); done
  for _ in $(seq "$W"); do start worker > /dev/null; done
  for _ in $(seq 300); do
    [ "$(sql "SELECT count(*) FROM $SCHEMA.wabill_owners" 2>/dev/null || echo 0)" = "$PARTITIONS" ] && break
    sleep 0.1
  done
  # Every partition's store exists before the first count.
  until stored > /dev/null 2>&1; do sleep 0.2; done
  load "${URLS[@]}" > "$WORK/answered" &
  LOADER=$!
  sleep 3; a=$(stored); ta=$(now)
  sleep $((SECS - 2)); b=$(stored); tb=$(now)
  wait $LOADER
  tend=$(now)
  # Drained: the log has not grown for 2 s.
  last=$(stored); tlast=$(now)
  while sleep 1; do
    c=$(stored)
    if [ "$c" = "$last" ]; then
      [ "$(echo "$(now) - $tlast > 2" | bc)" = 1 ] && break
    else
      last=$c; tlast=$(now)
    fi
  done
  printf 'workers %d, receivers %d: webhooks %s answered; stored %.0f events/s during the load, %d in all, the last %.1f s after the load\n' \
    "$W" "$RECEIVERS" "$(cat "$WORK/answered")" "$(echo "($b - $a) / ($tb - $ta)" | bc -l)" "$last" \
    "$(echo "$tlast - $tend" | bc -l)"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
  drop_schemas "$SCHEMA"; SCHEMA=
  delete_stream "$STREAM"
  sleep 1
done
