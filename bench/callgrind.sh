#!/bin/bash
# Instructions per request (user space) of `wabill serve` under callgrind,
# which counts the same for the same binary whatever else the VM does
# (docs/performance.md). For each binary given: starts it under
# `valgrind --tool=callgrind`, warms it up with 5 s of webhooks, then counts
# 20 s of webhooks (bench/dialog.lua) and 20 s of window checks
# (bench/window.lua), wrk with one thread and 4 connections over 1 000 users,
# each bracketed by `callgrind_control -d`.
#
#   bench/callgrind.sh ./target/release/wabill [/tmp/other-build ...]
set -euo pipefail
source "$(dirname "$0")/config.sh"
PORT=${PORT:-18090}
command -v valgrind >/dev/null && command -v wrk >/dev/null ||
  { echo "valgrind and wrk are needed" >&2; exit 2; }
for BIN in "$@"; do
  WORK=$(mktemp -d)
  bench_config "$WORK"
  WABILL_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" --dump-instr=no \
    "$BIN" --config "$WORK/wabill.toml" serve --listen "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
  VG=$!
  for _ in $(seq 100); do grep -q listening "$WORK/serve.log" && break; sleep 0.2; done
  # load SCRIPT SECS: one run, then a dump; prints the requests answered
  load() {
    local n
    n=$(WABILL_USERS=1000 WABILL_TOKEN=tok123 wrk -t1 -c4 -d"$2"s -s "$1" "http://127.0.0.1:$PORT" |
      awk '/requests in/ {print $1}')
    callgrind_control -d $VG > /dev/null
    echo "$n"
  }
  # the instructions of the newest dump
  counted() { ls "$WORK"/cg.out.* | sort -t. -k3 -n | tail -1 | xargs grep -h '^summary' | awk '{print $2}'; }
  load bench/dialog.lua 5 > /dev/null
  hooks=$(load bench/dialog.lua 20); hook_ir=$(counted)
  checks=$(load bench/window.lua 20); check_ir=$(counted)
  echo "$BIN: webhook $((hook_ir / hooks)) instructions/request ($hooks), window check $((check_ir / checks)) ($checks)"
  kill $VG; wait $VG 2>/dev/null || true
  rm -rf "$WORK"
done
