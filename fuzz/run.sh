#!/usr/bin/env bash
# Runs one fuzz target from its committed seeds (see docs/fuzzing.md).
#   fuzz/run.sh <target> [seconds] [extra libFuzzer flags...]
# New inputs go to fuzz/corpus/<target>/ (not committed), crashes to
# fuzz/artifacts/<target>/, the log to fuzz/logs/<target>.log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${1:?usage: fuzz/run.sh <normalized|cloud_api|on_premises|timestamp|rate_card|analytics|scan|http> [seconds] [flags...]}"
seconds="${2:-300}"
shift $(( $# >= 2 ? 2 : 1 ))
case "$target" in
  normalized|cloud_api|on_premises|analytics|scan) dict=events.dict ;;
  timestamp) dict=timestamp.dict ;;
  rate_card) dict=rate_card.dict ;;
  http) dict=http.dict ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
mkdir -p "$here/corpus/$target" "$here/logs"
cd "$here/.."
cargo +nightly fuzz run "$target" "$here/corpus/$target" "$here/seeds/$target" -- \
  -max_total_time="$seconds" -timeout=30 -dict="$here/dicts/$dict" \
  -print_final_stats=1 "$@" 2>&1 | tee "$here/logs/$target.log"
