//! The service's tables of the configuration file (service.md): `[server]`,
//! `[meta]`, `[[route]]`, `[[api_key]]`, with secrets optionally taken from
//! environment variables and `WABILL_LISTEN` / `WABILL_DATA_DIR` overriding
//! `[server]`. The engine's tables are read by the command line's loader.

use jiff::civil::Date;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wabill_engine::customers::Span;
use wabill_engine::time::Month;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;

/// A secret: never printed.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub listen: String,
    /// The event log and published tables: a data directory (embedded) or
    /// a PostgreSQL URL (`[server] store`, `data_dir`).
    pub store: wabill_store::Location,
    /// Webhooks and every route but `POST /v1/events`.
    pub body_limit_bytes: usize,
    /// `POST /v1/events`: room for [`crate::http::MAX_EVENTS_PER_REQUEST`]
    /// events.
    pub api_body_limit_bytes: usize,
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub max_connections: usize,
    /// Readiness needs this much free on the data directory's disk.
    pub min_free_bytes: u64,
    /// How often the months billed again are written to the store's
    /// published tables (and once more on shutdown).
    pub publish_every: std::time::Duration,
    pub meta: Option<MetaConfig>,
    pub routes: BTreeMap<String, RouteConfig>,
    pub api_keys: Vec<ApiKey>,
    /// `[cluster]`: receivers and workers (`wabill serve --role`).
    pub cluster: crate::cluster::ClusterConfig,
}

#[derive(Clone, Debug)]
pub struct MetaConfig {
    pub app_secret: Secret,
    pub verify_token: Secret,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Provider {
    Dialog360,
    Zendesk,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Dialog360 => "360dialog",
            Provider::Zendesk => "zendesk",
        }
    }
}

#[derive(Clone, Debug)]
pub struct RouteConfig {
    pub name: String,
    pub provider: Provider,
    /// The header that carries the secret (`X-API-Key` for Zendesk).
    pub header: String,
    pub secret: Secret,
    pub waba: String,
    pub phone: String,
    /// Zendesk: Sunshine user id → WhatsApp number.
    pub users: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct ApiKey {
    /// SHA-256 of the bearer token.
    pub sha256: [u8; 32],
    /// WABAs the key may read and write on every date; None = all
    /// (`["*"]`).
    pub wabas: Option<Vec<String>>,
    /// Customers whose invoices the key may read (a key for every WABA:
    /// all).
    pub customers: Vec<String>,
    /// The WABAs of those customers, each on the dates it was theirs
    /// ([`ServiceConfig::resolve_customers`]).
    pub spans: Vec<(String, Span)>,
    /// Those of them another customer had too: read only (a message's
    /// events on one customer's dates can change how another's bill).
    pub shared: Vec<String>,
}

impl ApiKey {
    /// The key may read or write `waba` on some date (the quarantine,
    /// whose items have none yet).
    pub fn allows(&self, waba: &str) -> bool {
        self.all_dates(waba) || self.spans.iter().any(|(w, _)| w == waba)
    }

    /// On every date: a key for all WABAs, or one that names it.
    pub fn all_dates(&self, waba: &str) -> bool {
        self.wabas
            .as_ref()
            .is_none_or(|list| list.iter().any(|w| w == waba))
    }

    /// The key may read or write `waba` on its local date `date`.
    pub fn allows_on(&self, waba: &str, date: Date) -> bool {
        self.all_dates(waba)
            || self
                .spans
                .iter()
                .any(|(w, span)| w == waba && span.contains(date))
    }

    /// The key may write events of `waba` dated `date`: a key for the
    /// WABA, or a customer's whose it was then and no other customer's
    /// ever.
    pub fn allows_write_on(&self, waba: &str, date: Date) -> bool {
        self.all_dates(waba)
            || (self.allows_on(waba, date) && !self.shared.iter().any(|w| w == waba))
    }

    /// The key may read the whole of `waba`'s `month` (its invoice, its
    /// reconciliation): a customer's key only a month that was all its.
    pub fn allows_month(&self, waba: &str, month: Month) -> bool {
        if self.all_dates(waba) {
            return true;
        }
        // The key's spans of the WABA, one after another, must cover it.
        let (mut at, next) = (month.first_day(), month.next().first_day());
        let mut spans: Vec<&Span> = self
            .spans
            .iter()
            .filter(|(w, _)| w == waba)
            .map(|(_, s)| s)
            .collect();
        spans.sort_by_key(|s| s.from);
        for span in spans {
            if span.contains(at) {
                match span.to {
                    None => return true,
                    Some(to) => at = at.max(to),
                }
            }
        }
        at >= next
    }

    /// The dates of `waba` a customer's key may read, when it may not read
    /// them all (a month's conversations are filtered by them).
    pub fn dates_of(&self, waba: &str) -> Option<Vec<Span>> {
        (!self.all_dates(waba)).then(|| {
            self.spans
                .iter()
                .filter(|(w, _)| w == waba)
                .map(|(_, s)| *s)
                .collect()
        })
    }

    pub fn allows_customer(&self, id: &str) -> bool {
        self.wabas.is_none() || self.customers.iter().any(|c| c == id)
    }
}

impl ServiceConfig {
    /// Gives each key scoped to customers those customers' WABAs, each on
    /// its dates; an id no `[[customer]]` has is an error naming the key.
    pub fn resolve_customers(
        &mut self,
        engine: &wabill_engine::EngineConfig,
    ) -> anyhow::Result<()> {
        let customers = &engine.customers;
        // A WABA is shared when another customer had it, or a WABA of its
        // portfolio (links and volume tiers cross the portfolio).
        let same_portfolio = |a: &str, b: &str| engine.portfolio_key(a) == engine.portfolio_key(b);
        for (i, key) in self.api_keys.iter_mut().enumerate() {
            for id in &key.customers {
                let Some(customer) = customers.customer(id) else {
                    bail!("api_key[{i}].customers: no [[customer]] has id {id:?}");
                };
                key.spans
                    .extend(customer.wabas.iter().map(|m| (m.waba.clone(), m.span)));
                for m in &customer.wabas {
                    let others = customers
                        .customers
                        .iter()
                        .filter(|c| !key.customers.contains(&c.id));
                    if others
                        .flat_map(|c| &c.wabas)
                        .any(|o| same_portfolio(&o.waba, &m.waba))
                        && !key.shared.contains(&m.waba)
                    {
                        key.shared.push(m.waba.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
struct File {
    #[serde(default)]
    server: Server,
    meta: Option<Meta>,
    #[serde(default)]
    cluster: Option<crate::cluster::ClusterTable>,
    #[serde(default)]
    route: Vec<Route>,
    #[serde(default)]
    api_key: Vec<Key>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    #[serde(default = "default_listen")]
    listen: String,
    /// None: `./wabill-data` under the working directory (service.md).
    #[serde(default)]
    data_dir: Option<PathBuf>,
    /// A PostgreSQL URL (or a data directory): instead of `data_dir`.
    #[serde(default)]
    store: Option<String>,
    #[serde(default = "default_body_limit")]
    body_limit_bytes: usize,
    #[serde(default = "default_api_body_limit")]
    api_body_limit_bytes: usize,
    #[serde(default = "default_header_timeout")]
    header_timeout_secs: u64,
    #[serde(default = "default_body_timeout")]
    body_timeout_secs: u64,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_min_free")]
    min_free_bytes: u64,
    #[serde(default = "default_publish_every")]
    publish_every_secs: u64,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: default_listen(),
            data_dir: None,
            store: None,
            body_limit_bytes: default_body_limit(),
            api_body_limit_bytes: default_api_body_limit(),
            header_timeout_secs: default_header_timeout(),
            body_timeout_secs: default_body_timeout(),
            max_connections: default_max_connections(),
            min_free_bytes: default_min_free(),
            publish_every_secs: default_publish_every(),
        }
    }
}

fn default_publish_every() -> u64 {
    60
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}

fn default_body_limit() -> usize {
    1 << 20
}

/// 16 MiB: 10 000 events of 1.6 KiB on average (generated traffic averages
/// 260 bytes, and an event's strings are limited, events.md section 1).
fn default_api_body_limit() -> usize {
    16 << 20
}

fn default_header_timeout() -> u64 {
    10
}

fn default_body_timeout() -> u64 {
    30
}

/// 64 MiB: room for minutes of traffic, so that readiness fails before
/// commits do.
fn default_min_free() -> u64 {
    64 << 20
}

/// Below the usual limit of 1 024 open files, with room for the store.
fn default_max_connections() -> usize {
    768
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    app_secret: Option<String>,
    app_secret_env: Option<String>,
    verify_token: Option<String>,
    verify_token_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    name: String,
    provider: String,
    header: Option<String>,
    secret: Option<String>,
    secret_env: Option<String>,
    waba: String,
    phone: String,
    #[serde(default)]
    users: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    sha256: String,
    #[serde(default)]
    wabas: Vec<String>,
    #[serde(default)]
    customers: Vec<String>,
}

/// Reads a secret given inline or through the environment variable named in
/// `<key>_env`; exactly one of the two.
fn secret(
    inline: Option<&String>,
    env: Option<&String>,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Secret> {
    match (inline, env) {
        (Some(_), Some(_)) => bail!("{key}: give either `{key}` or `{key}_env`, not both"),
        (Some(s), None) => Ok(Secret(s.clone())),
        (None, Some(var)) => lookup(var)
            .map(Secret)
            .ok_or_else(|| anyhow!("{key}_env: environment variable {var} is not set")),
        (None, None) => bail!("{key}: missing (or `{key}_env` naming an environment variable)"),
    }
}

/// The keys whose values are secrets (their `_env` forms name variables).
const SECRET_KEYS: [&str; 3] = ["app_secret", "verify_token", "secret"];

/// A TOML error as a line and column and toml's message, without the text
/// of the line (toml shows it, and it may hold a secret); on a secret's
/// line, the values the message quotes are left out too.
pub fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let Some(start) = e.span().map(|s| s.start) else {
        return e.message().to_owned();
    };
    let before = text.get(..start).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - line_start + 1;
    let this_line = text
        .get(line_start..)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_default();
    let key = this_line.split('=').next().unwrap_or_default().trim();
    let message = if SECRET_KEYS.contains(&key) {
        redact_quoted(e.message())
    } else {
        e.message().to_owned()
    };
    format!("line {line}, column {column}: {}", message.trim_end())
}

/// `text` with what it quotes (in backticks or double quotes) replaced by
/// `…`.
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '`' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    out
}

/// Parses the service tables of `text` (the whole configuration file); a
/// relative `data_dir` given in it is taken relative to `base`, the file's
/// folder; `env` reads environment variables (a parameter so tests need no
/// globals).
pub fn parse(
    text: &str,
    base: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ServiceConfig> {
    // The engine's tables are checked by the command line's loader.
    let file: File = toml::from_str(text).map_err(|e| anyhow!("{}", toml_error(&e, text)))?;
    let meta = match &file.meta {
        None => None,
        Some(m) => Some(MetaConfig {
            app_secret: secret(
                m.app_secret.as_ref(),
                m.app_secret_env.as_ref(),
                "meta.app_secret",
                env,
            )?,
            verify_token: secret(
                m.verify_token.as_ref(),
                m.verify_token_env.as_ref(),
                "meta.verify_token",
                env,
            )?,
        }),
    };
    let mut routes = BTreeMap::new();
    for (i, r) in file.route.iter().enumerate() {
        let route = route(i, r, env)?;
        if routes.insert(r.name.clone(), route).is_some() {
            bail!("route[{i}].name: route {:?} is configured twice", r.name);
        }
    }
    let api_keys = api_keys(&file.api_key)?;
    let listen = env("WABILL_LISTEN").unwrap_or_else(|| file.server.listen.clone());
    // cli.md: relative paths in the file are relative to the file, so the
    // service finds its log wherever it is started from; the default and
    // the overrides are not in the file.
    let store = wabill_store::Location::named(wabill_store::Named {
        env_store: env("WABILL_STORE"),
        env_data_dir: env("WABILL_DATA_DIR"),
        store: file.server.store.as_deref(),
        data_dir: file.server.data_dir.clone(),
        base,
    })
    .map_err(|e| anyhow!("{e}"))?;
    let server = &file.server;
    for (key, positive) in [
        ("body_limit_bytes", server.body_limit_bytes > 0),
        ("api_body_limit_bytes", server.api_body_limit_bytes > 0),
        ("max_connections", server.max_connections > 0),
        ("header_timeout_secs", server.header_timeout_secs > 0),
        ("body_timeout_secs", server.body_timeout_secs > 0),
        ("publish_every_secs", server.publish_every_secs > 0),
    ] {
        if !positive {
            bail!("server.{key}: must be positive");
        }
    }
    let cluster = crate::cluster::ClusterConfig::read(file.cluster.as_ref(), env)?;
    Ok(ServiceConfig {
        listen,
        store,
        body_limit_bytes: server.body_limit_bytes,
        api_body_limit_bytes: server.api_body_limit_bytes,
        header_timeout: std::time::Duration::from_secs(server.header_timeout_secs),
        body_timeout: std::time::Duration::from_secs(server.body_timeout_secs),
        max_connections: server.max_connections,
        min_free_bytes: server.min_free_bytes,
        publish_every: std::time::Duration::from_secs(server.publish_every_secs),
        meta,
        routes,
        api_keys,
        cluster,
    })
}

/// The `i`-th `[[route]]` table, checked.
fn route(i: usize, r: &Route, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<RouteConfig> {
    let key = format!("route[{i}]");
    if r.name.is_empty()
        || !r
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!(
            "{key}.name: {:?} must be letters, digits, `-` or `_`",
            r.name
        );
    }
    let provider = match r.provider.as_str() {
        "360dialog" => Provider::Dialog360,
        "zendesk" => Provider::Zendesk,
        other => bail!("{key}.provider: {other:?} is not \"360dialog\" or \"zendesk\""),
    };
    let header = match (provider, &r.header) {
        (_, Some(h)) => h.clone(),
        (Provider::Zendesk, None) => "X-API-Key".to_owned(),
        (Provider::Dialog360, None) => {
            bail!("{key}.header: missing (the static header 360dialog echoes)")
        }
    };
    if axum::http::HeaderName::try_from(header.as_str()).is_err() {
        bail!("{key}.header: {header:?} is not a valid header name");
    }
    if r.waba.is_empty() || r.phone.is_empty() {
        bail!(
            "{key}: `waba` and `phone` must not be empty (they are the WABA and phone of the route's events)"
        );
    }
    Ok(RouteConfig {
        name: r.name.clone(),
        provider,
        header,
        secret: secret(
            r.secret.as_ref(),
            r.secret_env.as_ref(),
            &format!("{key}.secret"),
            env,
        )?,
        waba: r.waba.clone(),
        phone: r.phone.clone(),
        users: r.users.clone(),
    })
}

/// Every `[[api_key]]`, checked; no two of one token (only one would apply).
fn api_keys(keys: &[Key]) -> anyhow::Result<Vec<ApiKey>> {
    let mut out: Vec<ApiKey> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let key = api_key(i, k)?;
        if out.iter().any(|k| k.sha256 == key.sha256) {
            bail!(
                "api_key[{i}].sha256: the same token as an earlier [[api_key]] (only one would apply)"
            );
        }
        out.push(key);
    }
    Ok(out)
}

/// The `i`-th `[[api_key]]` table, checked.
fn api_key(i: usize, k: &Key) -> anyhow::Result<ApiKey> {
    let key = format!("api_key[{i}]");
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(&k.sha256, &mut sha256)
        .map_err(|_| anyhow!("{key}.sha256: must be 64 hex digits (the SHA-256 of the token)"))?;
    if k.wabas.is_empty() && k.customers.is_empty() {
        bail!(
            "{key}.wabas: must name at least one WABA (or \"*\"), unless `customers` names a customer"
        );
    }
    let wabas = if k.wabas.iter().any(|w| w == "*") {
        None
    } else {
        Some(k.wabas.clone())
    };
    Ok(ApiKey {
        sha256,
        wabas,
        customers: k.customers.clone(),
        spans: Vec::new(),
        shared: Vec::new(),
    })
}

/// Reads the configuration file (or none: the defaults).
pub fn read_service_config(path: Option<&std::path::Path>) -> anyhow::Result<ServiceConfig> {
    let text = match path {
        None => String::new(),
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read configuration {}", p.display()))?,
    };
    let env = |name: &str| std::env::var(name).ok();
    parse(&text, path.and_then(Path::parent), &env).map_err(|e| match path {
        Some(p) => anyhow!("configuration {}: {e}", p.display()),
        None => e,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn a_customer_key_reads_a_month_its_spans_cover_one_after_another() {
        let d = |s: &str| s.parse().unwrap_or_else(|e| panic!("{e}"));
        let span = |from: &str, to: Option<&str>| Span {
            from: Some(d(from)),
            to: to.map(d),
        };
        let key = ApiKey {
            sha256: [0; 32],
            wabas: Some(Vec::new()),
            customers: vec!["C1".into()],
            spans: vec![
                ("W1".into(), span("2026-03-10", None)),
                ("W1".into(), span("2026-02-20", Some("2026-03-10"))),
            ],
            shared: Vec::new(),
        };
        let month = |m: &str| Month::parse(m).unwrap_or_else(|| panic!("{m}"));
        assert!(key.allows_month("W1", month("2026-03")));
        assert!(!key.allows_month("W1", month("2026-02")));
        assert!(!key.allows_month("W2", month("2026-03")));
        assert!(key.allows_on("W1", d("2026-02-20")) && !key.allows_on("W1", d("2026-02-19")));
    }

    use super::*;

    #[test]
    fn secrets_come_from_the_environment_and_env_overrides_server() {
        let text = r#"
            [server]
            listen = "127.0.0.1:1"
            [meta]
            app_secret_env = "S"
            verify_token = "t"
            [[route]]
            name = "acme"
            provider = "360dialog"
            header = "D360-Secret"
            secret = "x"
            waba = "W1"
            phone = "P1"
            [[api_key]]
            sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
            wabas = ["W1"]
            [platform]
            currency = "USD"
        "#;
        let env = |k: &str| match k {
            "S" => Some("from-env".to_owned()),
            "WABILL_LISTEN" => Some("127.0.0.1:2".to_owned()),
            _ => None,
        };
        let c = parse(text, None, &env).unwrap();
        assert_eq!(c.meta.unwrap().app_secret.0, "from-env");
        assert_eq!(c.listen, "127.0.0.1:2");
        assert!(c.api_keys[0].allows("W1") && !c.api_keys[0].allows("W2"));
        let missing = parse(text, None, &|_| None).unwrap_err().to_string();
        assert!(
            missing.contains("meta.app_secret_env: environment variable S"),
            "{missing}"
        );
    }

    #[test]
    fn a_relative_data_dir_in_the_file_is_relative_to_it_and_the_default_to_the_working_directory()
    {
        let base = Path::new("/etc/wabill");
        let dir = |c: ServiceConfig| c.store.data_dir().map(Path::to_path_buf);
        let given = parse("[server]\ndata_dir = \"log\"\n", Some(base), &|_| None).unwrap();
        assert_eq!(dir(given), Some(base.join("log")));
        let absolute = parse("[server]\ndata_dir = \"/var/log\"\n", Some(base), &|_| None);
        assert_eq!(dir(absolute.unwrap()), Some("/var/log".into()));
        let default = parse("[server]\n", Some(base), &|_| None).unwrap();
        assert_eq!(dir(default), Some("./wabill-data".into()));
        let env = |k: &str| (k == "WABILL_DATA_DIR").then(|| "here".to_owned());
        let overridden = parse("[server]\ndata_dir = \"log\"\n", Some(base), &env).unwrap();
        assert_eq!(dir(overridden), Some("here".into()));
    }

    #[test]
    fn the_store_is_a_postgresql_url_or_a_directory_and_not_both_with_data_dir() {
        let base = Path::new("/etc/wabill");
        let url = "postgres://wabill@db/wabill";
        let pg = parse(
            &format!("[server]\nstore = \"{url}\"\n"),
            Some(base),
            &|_| None,
        );
        assert_eq!(
            pg.unwrap().store,
            wabill_store::Location::Postgres(url.into())
        );
        let dir = parse("[server]\nstore = \"data\"\n", Some(base), &|_| None).unwrap();
        assert_eq!(
            dir.store,
            wabill_store::Location::Embedded(base.join("data"))
        );
        let both = parse(
            "[server]\nstore = \"data\"\ndata_dir = \"log\"\n",
            Some(base),
            &|_| None,
        );
        let e = both.unwrap_err().to_string();
        assert!(e.contains("give one of them"), "{e}");
        let env = |k: &str| (k == "WABILL_STORE").then(|| url.to_owned());
        let from_env = parse("[server]\ndata_dir = \"log\"\n", Some(base), &env).unwrap();
        assert_eq!(from_env.store, wabill_store::Location::Postgres(url.into()));
    }

    #[test]
    fn a_route_must_name_its_waba_and_phone() {
        let text = "[[route]]\nname = \"r\"\nprovider = \"zendesk\"\nsecret = \"s\"\nwaba = \"\"\nphone = \"P1\"\n";
        let e = parse(text, None, &|_| None).unwrap_err().to_string();
        assert!(
            e.contains("route[0]: `waba` and `phone` must not be empty"),
            "{e}"
        );
    }
}
