#!/bin/bash
# The service benchmark (docs/performance.md). Each round starts `wabill
# serve` on a fresh data directory and runs three loads, one event per
# webhook body, every event new (so every request waits for its fsync):
#
#   webhooks  wrk, closed loop: 360dialog bodies as fast as they are answered
#   at-rate   `wabill load --rate`, open loop: Meta webhooks, signed, due on a
#             fixed schedule (RATE, default 20 000/s); latency counts from
#             when each request was due, so stalls are not hidden
#   window    wrk, closed loop: GET /v1/window over the pairs the webhooks
#             filled
#
# One line per load: requests/s, latency percentiles, CPU time and bytes
# written (log, responses) per request of the server, CPU time per request
# of the load tool (they share the two cores), how busy the two cores were
# (everything but idle and steal; the rest is the headroom), and the share of the
# machine the hypervisor took meanwhile (steal), so that a slow run can be
# told from a slow server. A last line per round counts the
# writer's stalls (from /metrics): batches that held the engine or the log
# for over 50 ms; the server's peak resident memory; at-rate webhooks the
# server itself took over 50 ms to answer (a tail the server's own, not the
# queue's or the load tool's); and with READERS, how often reads re-rated a
# month and the mean time each took.
#
#   cargo build --release && bench/serve.sh [ROUNDS]      # default 3
#   BIN=... RATE=20000 HOOK_CONNS=64 WINDOW_CONNS=32 SECS=10 bench/serve.sh
#   RATE_SECS=60 bench/serve.sh 1     # the at-rate load for 60 s (default SECS)
#
# READERS=N (1-4) adds, while the at-rate load runs, a client reading the
# month it writes (wrk, closed loop, N connections, bench/read.lua: W1's
# invoice and conversations), after a fill of 10 000 delivered templates
# so that the month has conversations to read; its line `readers` follows
# the at-rate line, whose p99 then shows whether reading stalls writing
# (the at-rate line's CPU figures then include the reads).
#   READERS=2 RATE_SECS=30 bench/serve.sh 1
# DELIVERED_EVERY=N makes every Nth at-rate message a `delivered` status of
# a business message (a new record in the readers' month) instead of an
# inbound one, so that every read re-bills the month the webhooks write.
#   READERS=1 DELIVERED_EVERY=10 RATE_SECS=30 bench/serve.sh 1
#   BIN=OLD LOAD_BIN=./target/release/wabill READERS=1 DELIVERED_EVERY=10 bench/serve.sh 1
set -euo pipefail
source "$(dirname "$0")/config.sh"
BIN=${BIN:-./target/release/wabill}
# The build whose `wabill load` drives the at-rate load (default BIN): a
# newer one, to run DELIVERED_EVERY against an older service.
LOAD_BIN=${LOAD_BIN:-$BIN}
ROUNDS=${1:-3}
PORT=${PORT:-18080}
SECS=${SECS:-10}
RATE_SECS=${RATE_SECS:-$SECS}
WORK=$(mktemp -d)
SERVER=
READER=
trap '[ -n "$READER" ] && kill $READER 2>/dev/null; [ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
READERS=${READERS:-0}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
bench_config "$WORK"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
written() { awk '/^wchar/ {print $2}' "/proc/$1/io"; }
# measure NAME SECS COMMAND...: runs the load tool for SECS (+ 1 s); CPU
# figures cover its middle (from 1 s after the start to 1 s before the end).
measure() {
  local name=$1 secs=$2; shift 2
  "$@" > "$WORK/out.txt" &
  local tool=$!
  sleep 1.5
  local t0 s0 st0 w0 t1 s1 st1 w1
  t0=$(ticks $tool); s0=$(ticks $SERVER); st0=($(head -1 /proc/stat)); w0=$(written $SERVER)
  sleep $((secs - 2))
  t1=$(ticks $tool); s1=$(ticks $SERVER); st1=($(head -1 /proc/stat)); w1=$(written $SERVER)
  wait $tool
  local all=0 i; for i in 1 2 3 4 5 6 7 8; do all=$((all + st1[i] - st0[i])); done
  awk -v name="$name" -v secs=$((secs - 2)) -v srv=$((s1 - s0)) -v tool=$((t1 - t0)) \
      -v steal=$((st1[8] - st0[8])) -v all=$all -v bytes=$((w1 - w0)) \
      -v idle=$((st1[4] - st0[4] + st1[5] - st0[5])) '
    # wrk
    /^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2} /^Requests\/sec/ {rate = $2}
    /Non-2xx/ {bad = "  NON-2XX " $NF}
    # wabill load
    /answered in/ {rate = substr($0, index($0, "(") + 1) + 0; split($0, f, "failed "); if (f[2] + 0 > 0) bad = "  FAILED " f[2] + 0}
    /^latency ms:/ {gsub(",", ""); p50 = $4 "ms"; p99 = $8 "ms"}
    END {
      n = rate * secs
      printf "%-8s %8.0f req/s  p50 %-8s p99 %-8s server %5.1f us/req, writes %5.0f B/req  load tool %5.1f us/req  busy %3.0f%%  steal %4.1f%%%s\n",
        name, rate, p50, p99, srv * 10000 / n, bytes / n, tool * 10000 / n,
        100 * (all - idle - steal) / all, 100 * steal / all, bad
    }' "$WORK/out.txt"
}
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/data"
  WABILL_LOG=warn "$BIN" --config "$WORK/wabill.toml" serve --listen "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 50); do grep -qs listening "$WORK/serve.log" && break; sleep 0.1; done
  grep -q listening "$WORK/serve.log" || { cat "$WORK/serve.log" >&2; exit 1; }
  measure webhooks "$SECS" env WABILL_EVENTS_PER_BODY=1 \
    wrk -t2 -c"${HOOK_CONNS:-64}" -d"$((SECS + 1))s" -s bench/dialog.lua "http://127.0.0.1:$PORT" --latency
  if [ "$READERS" -gt 0 ]; then
    fill_for_readers "$WORK" "$PORT"
    env WABILL_TOKEN=tok123 wrk -t1 -c"$READERS" -d"$((RATE_SECS + 1))s" -s bench/read.lua \
      "http://127.0.0.1:$PORT" --latency > "$WORK/read.txt" &
    READER=$!
  fi
  measure at-rate "$RATE_SECS" "$LOAD_BIN" load --url "http://127.0.0.1:$PORT" --mode webhooks --app-secret s3cret \
    --connections "${HOOK_CONNS:-64}" --rate "${RATE:-20000}" --warmup 1 --seconds "$RATE_SECS" \
    ${DELIVERED_EVERY:+--delivered-every "$DELIVERED_EVERY"}
  if [ -n "$READER" ]; then
    wait $READER
    READER=
    awk -v c="$READERS" '/^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2} /^Requests\/sec/ {rate = $2}
      /Non-2xx/ {bad = "  NON-2XX " $NF}
      END {printf "readers  %8.0f req/s  p50 %-8s p99 %-8s (closed loop, %d connections, during at-rate)%s\n", rate, p50, p99, c, bad}' \
      "$WORK/read.txt"
  fi
  measure window "$SECS" env WABILL_TOKEN=tok123 \
    wrk -t2 -c"${WINDOW_CONNS:-32}" -d"$((SECS + 1))s" -s bench/window.lua "http://127.0.0.1:$PORT" --latency
  # The writer's own stalls over the round: batches that held the engine
  # (fold) or the log (commit) for over 50 ms; and the server's peak RSS.
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v rss="$(awk '/^VmHWM/ {print $2}' /proc/$SERVER/status)" '
    /^wabill_(fold|commit)_seconds_bucket/ && /le="0.05"/ {n = $0; sub(/_bucket.*/, "", n); under[n] = $NF}
    /^wabill_(fold|commit)_seconds_count/ {n = $1; sub(/_count.*/, "", n); all[n] = $NF}
    /^wabill_rate_seconds_sum/ {rate_sum = $NF} /^wabill_rate_seconds_count/ {rates = $NF}
    /^wabill_request_duration_seconds_bucket\{path="\/webhooks\/meta"/ && /le="0.05"/ {hooks_under = $NF}
    /^wabill_request_duration_seconds_count\{path="\/webhooks\/meta"/ {hooks = $NF}
    END {printf "writer   folds over 50 ms: %d of %d, commits over 50 ms: %d of %d  server peak RSS %.0f MB",
      all["wabill_fold_seconds"] - under["wabill_fold_seconds"], all["wabill_fold_seconds"],
      all["wabill_commit_seconds"] - under["wabill_commit_seconds"], all["wabill_commit_seconds"], rss / 1024
      printf "\nserver   at-rate webhooks handled in over 50 ms (from request to answer, queueing before it not counted): %d of %d", hooks - hooks_under, hooks
      if (rates > 0) printf "; reads rated a month %d times, %.2f ms each", rates, rate_sum * 1000 / rates
      printf "\n"}'
  kill $SERVER; wait $SERVER || true
  SERVER=
done
