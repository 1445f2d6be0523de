//! What the end-to-end tests of `wabill serve` share: a configuration, the
//! real binary on a free port, HTTP calls.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub const APP_SECRET: &str = "app-secret-for-tests";
pub const TOKEN_ALL: &str = "token-all";
pub const TOKEN_W1: &str = "token-w1";
pub const DIALOG_SECRET: &str = "d360-secret";
pub const ZENDESK_SECRET: &str = "zendesk-secret";

pub fn sha256_hex(s: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, s.as_bytes()))
}

pub fn sign(body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, APP_SECRET.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body.as_bytes()))
    )
}

pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    write_config_with_limit(dir, extra, 65_536)
}

pub fn write_config_with_limit(dir: &Path, extra: &str, body_limit: usize) -> PathBuf {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
body_limit_bytes = {body_limit}

[meta]
app_secret = "{APP_SECRET}"
verify_token = "verify-me"

[[route]]
name = "acme"
provider = "360dialog"
header = "D360-Secret"
secret = "{DIALOG_SECRET}"
waba = "W1"
phone = "P1"

[[route]]
name = "zd"
provider = "zendesk"
secret = "{ZENDESK_SECRET}"
waba = "W1"
phone = "P1"
users = {{ "5963c0d619a30a2e00de36b8" = "+16505551234" }}

[[api_key]]
sha256 = "{all}"
wabas = ["*"]

[[api_key]]
sha256 = "{w1}"
wabas = ["W1"]
{extra}
"#,
        data = dir.join("data").display(),
        all = sha256_hex(TOKEN_ALL),
        w1 = sha256_hex(TOKEN_W1),
    );
    let path = dir.join("wabill.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `wabill serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(config: &Path) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wabill"));
        command.arg("--config").arg(config).arg("serve");
        Server::spawn(command)
    }

    /// Started by a shell that first sets the limit of open files (soft
    /// and hard) to `open_files`.
    pub fn start_with_open_files(config: &Path, open_files: u32) -> Server {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "ulimit -n {open_files} && exec \"$0\" --config \"$1\" serve"
            ))
            .arg(env!("CARGO_BIN_EXE_wabill"))
            .arg(config);
        Server::spawn(command)
    }

    /// At the default log level, its standard error written to `log`.
    pub fn start_logging(config: &Path, log: &Path) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_wabill"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env_remove("WABILL_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("wabill serve starts");
        Server::listening(child)
    }

    pub fn spawn(mut command: Command) -> Server {
        let child = command
            .env("WABILL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("wabill serve starts");
        Server::listening(child)
    }

    /// A started server, once it says where it listens.
    fn listening(mut child: Child) -> Server {
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("wabill listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) -> i32 {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(body).unwrap();
    Reply {
        status: resp.status().as_u16(),
        body: resp.body_mut().read_to_string().unwrap(),
    }
}

pub fn get(url: &str, token: Option<&str>) -> Reply {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    Reply {
        status: resp.status().as_u16(),
        body: resp.body_mut().read_to_string().unwrap(),
    }
}

pub fn post_events(server: &Server, token: &str, ndjson: &str) -> Reply {
    let auth = format!("Bearer {token}");
    post(
        &server.url("/v1/events"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-ndjson"),
        ],
        ndjson,
    )
}

pub fn cloud_body(waba: &str, id: &str, ts: i64) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001","phone_number_id":"P1"}},"contacts":[{{"wa_id":"5511999990001"}}],"messages":[{{"from":"5511999990001","id":"{id}","timestamp":"{ts}","type":"text","text":{{"body":"hi"}}}}]}}}}]}}]}}"#
    )
}

pub fn wabill(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c < 2), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A normalized event line of phone P1.
pub fn ev(kind: &str, id: &str, waba: &str, user: &str, ts: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"{kind}","id":"{id}","waba":"{waba}","phone":"P1","user":"{user}","ts":"{ts}"{extra}}}"#
    )
}
