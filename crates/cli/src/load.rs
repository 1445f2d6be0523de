//! `wabill load`: a closed-loop load generator for `wabill serve` on
//! loopback. `webhooks` posts signed Cloud API bodies, each with fresh
//! message ids (so every event is new and must be made durable);
//! `window` asks `GET /v1/window` for random pairs. Reports requests/s,
//! events/s and latency percentiles (docs/performance.md).
// Timing statistics, not money: floating point is fine here.
#![allow(clippy::float_arithmetic)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::{Args, ValueEnum};

use crate::{Fatal, emit};

#[derive(Copy, Clone, ValueEnum)]
pub enum Mode {
    Webhooks,
    Window,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Base URL of the service, e.g. http://127.0.0.1:8080
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    mode: Mode,
    /// `[meta] app_secret` of the service (webhooks).
    #[arg(long, default_value = "")]
    app_secret: String,
    /// A bearer token whose key covers WABA `W1` (window).
    #[arg(long, default_value = "")]
    token: String,
    /// Requests in flight at once (one connection each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Messages in each webhook body (Meta batches up to 1 000).
    #[arg(long, default_value_t = 1)]
    events_per_body: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Distinct users the requests spread over.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
}

/// A Cloud API body with `n` inbound messages, ids unique to (`worker`, `seq`).
fn body(worker: usize, seq: u64, n: usize, users: u64) -> String {
    let messages: Vec<String> = (0..n)
        .map(|k| {
            let user = 5_511_900_000_000 + (seq * n as u64 + k as u64 + worker as u64 * 7919) % users;
            format!(
                r#"{{"from":"{user}","id":"wamid.load.{worker}.{seq}.{k}","timestamp":"{ts}","type":"text","text":{{"body":"hi"}}}}"#,
                ts = 1_750_000_000 + seq % 86_400
            )
        })
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001","phone_number_id":"P1"}},"messages":[{}]}}}}]}}]}}"#,
        messages.join(",")
    )
}

pub fn run(args: LoadArgs) -> Result<ExitCode, Fatal> {
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, args.app_secret.as_bytes());
    let started = Instant::now();
    let latencies: Vec<Vec<u32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.connections)
            .map(|worker| {
                let (stop, failures, key, args) =
                    (Arc::clone(&stop), Arc::clone(&failures), key.clone(), &args);
                s.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut latencies = Vec::new();
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        seq += 1;
                        let t = Instant::now();
                        let ok = match args.mode {
                            Mode::Webhooks => {
                                let body = body(worker, seq, args.events_per_body, args.users);
                                let signature =
                                    hex::encode(ring::hmac::sign(&key, body.as_bytes()));
                                agent
                                    .post(format!("{}/webhooks/meta", args.url))
                                    .header("X-Hub-Signature-256", format!("sha256={signature}"))
                                    .send(body)
                                    .is_ok_and(|r| r.status().is_success())
                            }
                            Mode::Window => {
                                let user =
                                    5_511_900_000_000 + (seq + worker as u64 * 7919) % args.users;
                                agent
                                    .get(format!(
                                        "{}/v1/window?waba=W1&phone=P1&user={user}&at=1750040000",
                                        args.url
                                    ))
                                    .header("Authorization", format!("Bearer {}", args.token))
                                    .call()
                                    .is_ok_and(|r| r.status().is_success())
                            }
                        };
                        if ok {
                            latencies
                                .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                        } else {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    latencies
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(args.seconds));
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut all: Vec<u32> = latencies.into_iter().flatten().collect();
    all.sort_unstable();
    if all.is_empty() {
        return Err(anyhow!(
            "no request succeeded ({} failed)",
            failures.load(Ordering::Relaxed)
        )
        .into());
    }
    let pct = |p: f64| all[((all.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let requests = all.len() as f64 / elapsed;
    let events = match args.mode {
        Mode::Webhooks => requests * args.events_per_body as f64,
        Mode::Window => requests,
    };
    emit(&format!(
        "requests: {} in {elapsed:.1} s ({requests:.0}/s), events/s: {events:.0}, failed: {}\nlatency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}\n",
        all.len(),
        failures.load(Ordering::Relaxed),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
    ))?;
    Ok(ExitCode::SUCCESS)
}
