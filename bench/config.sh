# Sourced by the service benchmarks. bench_config DIR writes DIR/wabill.toml
# for a service keeping its log in DIR/data, with the secrets the wrk
# scripts and `wabill load` use: Meta app secret "s3cret", a 360dialog
# route "acme" (header D360-Secret, secret "d360", WABA W1, phone P1) and
# an API key "tok123" for W1. fill_for_readers (below) fills the month
# the readers read.
bench_config() {
  cat > "$1/wabill.toml" <<T
[server]
data_dir = "$1/data"
[meta]
app_secret = "s3cret"
verify_token = "v"
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
}

# fill_for_readers DIR PORT: a delivered marketing template to each of the
# users the webhooks write as (W1, P1, in the at-rate load's day), through POST
# /v1/events in requests under the default body limit, so that the
# readers' month has conversations, each with a growing timeline.
fill_for_readers() {
  local dir=$1 port=$2
  awk -v n="${WABILL_USERS:-10000}" 'BEGIN {
    for (k = 0; k < n; k++) {
      head = sprintf("{\"id\":\"wamid.fill.%d\",\"waba\":\"W1\",\"phone\":\"P1\",\"user\":\"%.0f\",\"ts\":%d,", k, 5511900000000 + k, 1750000000 + k * 8)
      print head "\"type\":\"outbound\",\"template\":{\"name\":\"promo\",\"category\":\"marketing\"}}"
      print head "\"type\":\"status\",\"status\":\"delivered\"}"
    }
  }' | split -l 4000 - "$dir/fill."
  local f
  for f in "$dir"/fill.*; do
    curl -sf -H "Authorization: Bearer tok123" -H "Content-Type: application/x-ndjson" \
      --data-binary @"$f" "http://127.0.0.1:$port/v1/events" > /dev/null \
      || { echo "the readers' fill was refused" >&2; exit 1; }
  done
  rm -f "$dir"/fill.*
}
