#!/bin/bash
# Reading while writing (issue 15, point 7; docs/performance.md): for each
# round, each DELIVERED_EVERY value and each build given, alternated so
# that the VM's drift falls on all alike: a fresh `wabill serve`, a fill of
# 10 000 delivered templates in W1's month (as bench/serve.sh's READERS),
# then for SECS seconds one client reading that month in a closed loop
# (wrk, bench/read.lua) while `wabill load` sends Meta webhooks at RATE/s
# (open loop, latency from when each was due). One line per run: the
# webhooks' latency, and the reads per second.
#
#   bench/read-while-writing.sh OLD_BIN NEW_BIN      # builds to compare
#   RATE=12000 ROUNDS=3 SECS=20 DELIVERED_EVERY="0 10" READERS=1 bench/read-while-writing.sh BIN...
#
# READERS=0 runs the webhooks alone. The load tool is each build's own
# unless LOAD_BIN is set (for a build without --delivered-every).
set -euo pipefail
source "$(dirname "$0")/config.sh"
[ $# -gt 0 ] || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
RATE=${RATE:-12000} ROUNDS=${ROUNDS:-3} SECS=${SECS:-20} READERS=${READERS:-1}
PORT=${PORT:-18181}
WORK=$(mktemp -d)
SERVER=
READER=
trap '[ -n "$READER" ] && kill $READER 2>/dev/null; [ -n "$SERVER" ] && kill $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
bench_config "$WORK"
run() { # run BIN DELIVERED_EVERY
  rm -rf "$WORK/data"
  WABILL_LOG=warn "$1" --config "$WORK/wabill.toml" serve --listen "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 50); do grep -qs listening "$WORK/serve.log" && break; sleep 0.1; done
  grep -q listening "$WORK/serve.log" || { cat "$WORK/serve.log" >&2; exit 1; }
  if [ "$READERS" -gt 0 ]; then
    fill_for_readers "$WORK" "$PORT"
    # The load's warm-up second and its SECS seconds, all with a reader.
    WABILL_TOKEN=tok123 wrk -t1 -c"$READERS" -d"$((SECS + 1))s" -s bench/read.lua \
      "http://127.0.0.1:$PORT" --latency > "$WORK/read.txt" &
    READER=$!
  fi
  "${LOAD_BIN:-$1}" load --url "http://127.0.0.1:$PORT" --mode webhooks --app-secret s3cret \
    --connections 64 --rate "$RATE" --warmup 1 --seconds "$SECS" \
    ${2:+--delivered-every "$2"} > "$WORK/load.txt"
  local reads="no reader"
  if [ -n "$READER" ]; then
    wait $READER
    READER=
    reads="reads $(awk '/^Requests\/sec/ {r = $2} /Non-2xx/ {bad = ", NON-2XX " $NF}
      END {printf "%.0f/s%s", r, bad}' "$WORK/read.txt")"
  fi
  # "answered in ... failed N, sent late N", then the percentiles.
  printf '%-40s delivered-every %-3s %s  %s  (%s)\n' "$1" "${2:-0}" \
    "$(grep '^latency ms:' "$WORK/load.txt")" "$reads" \
    "$(grep -o 'failed [0-9]*, sent late [0-9]*' "$WORK/load.txt")"
  kill $SERVER 2>/dev/null || true
  wait $SERVER 2>/dev/null || true
  SERVER=
}
for _ in $(seq "$ROUNDS"); do
  for every in ${DELIVERED_EVERY:-0 10}; do
    for bin in "$@"; do run "$bin" "$every"; done
  done
done
