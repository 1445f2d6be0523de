#!/bin/bash
# The service benchmark (docs/performance.md): starts `wabill serve` on a
# fresh data directory, posts webhooks with wrk (one event per body unless
# WABILL_EVENTS_PER_BODY says otherwise, every event new, so every request
# waits for its fsync), then checks windows over the pairs those filled.
# Prints one line per load: requests/s, latency percentiles, CPU time per
# request of the server and of wrk (they share the two cores), and the share
# of the machine the hypervisor took (steal) while it ran.
#
#   bench/serve.sh [ROUNDS]        # default 3; run from the repository root
#   BIN=... HOOK_CONNS=64 HOOK_SECS=10 WINDOW_CONNS=32 WINDOW_SECS=8 bench/serve.sh
set -euo pipefail
BIN=${BIN:-./target/release/wabill}
ROUNDS=${1:-3}
PORT=${PORT:-18080}
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
cat > "$WORK/wabill.toml" <<T
[server]
data_dir = "$WORK/data"
[[route]]
name = "acme"
provider = "360dialog"
header = "D360-Secret"
secret = "d360"
waba = "W1"
phone = "P1"
[[api_key]]
sha256 = "$(printf %s tok123 | sha256sum | cut -d' ' -f1)"
wabas = ["W1"]
T
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# load NAME SCRIPT CONNS SECS: one wrk run; its first and last second are
# left out of the CPU figures (ramp-up and drain).
load() {
  local out="$WORK/wrk.txt"
  wrk -t2 -c"$3" -d"$4"s -s "$2" "http://127.0.0.1:$PORT" --latency > "$out" &
  local wrk_pid=$!
  sleep 1
  local w0 s0 st0
  w0=$(ticks $wrk_pid)
  s0=$(ticks $SERVER); st0=($(head -1 /proc/stat))
  sleep $(($4 - 2))
  local w1 s1 st1
  w1=$(ticks $wrk_pid); s1=$(ticks $SERVER); st1=($(head -1 /proc/stat))
  wait $wrk_pid
  local all=0 i; for i in 1 2 3 4 5 6 7 8; do all=$((all + st1[i] - st0[i])); done
  awk -v name="$1" -v secs=$(($4 - 2)) -v srv=$((s1 - s0)) -v wrk=$((w1 - w0)) \
      -v steal=$((st1[8] - st0[8])) -v all=$all '
    /^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2} /^Requests\/sec/ {rate = $2}
    /Non-2xx/ {bad = $NF}
    END {
      n = rate * secs
      printf "%-8s %8.0f req/s  p50 %-8s p99 %-8s server %5.1f us/req  wrk %5.1f us/req  steal %4.1f%%%s\n",
        name, rate, p50, p99, srv * 10000 / n, wrk * 10000 / n, 100 * steal / all,
        (bad ? "  NON-2XX " bad : "")
    }' "$out"
}
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/data"
  WABILL_LOG=warn "$BIN" --config "$WORK/wabill.toml" serve --listen "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 50); do grep -q listening "$WORK/serve.log" && break; sleep 0.1; done
  grep -q listening "$WORK/serve.log" || { cat "$WORK/serve.log" >&2; exit 1; }
  WABILL_EVENTS_PER_BODY=${WABILL_EVENTS_PER_BODY:-1} load webhooks bench/dialog.lua "${HOOK_CONNS:-64}" "${HOOK_SECS:-10}"
  WABILL_TOKEN=tok123 load window bench/window.lua "${WINDOW_CONNS:-32}" "${WINDOW_SECS:-8}"
  kill $SERVER; wait $SERVER || true
done
