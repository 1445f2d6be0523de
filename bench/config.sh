# Sourced by the service benchmarks: bench_config DIR writes DIR/wabill.toml
# for a service keeping its log in DIR/data, with the secrets the wrk
# scripts and `wabill load` use: Meta app secret "s3cret", a 360dialog
# route "acme" (header D360-Secret, secret "d360", WABA W1, phone P1) and
# an API key "tok123" for W1.
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
