//! `wabill load`: a load generator for `wabill serve` on loopback
//! (docs/performance.md). `webhooks` posts Cloud API bodies signed as Meta
//! signs them, each message with a fresh id (so every event is new and must
//! be made durable); `window` asks `GET /v1/window` over many pairs.
//!
//! Without `--rate` the load is a closed loop: each connection sends its
//! next request when the last one is answered, which finds the most the
//! service answers. With `--rate` it is an open loop: requests fall due on
//! a fixed schedule spread over the connections, and each latency counts
//! from when its request was due, so a stall shows in every request it held
//! up, not only in the one that met it (as wrk2 measures). One thread drives
//! every connection, to leave the other core to the service.
// Timing statistics, not money: floating point is fine here.
#![allow(clippy::float_arithmetic)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use crate::exit::Fatal;
use crate::output::emit;

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
    /// Connections, each with one request in flight at a time.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Requests per second on a fixed schedule (open loop); without it,
    /// as many as the service answers (closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Messages in each webhook body (Meta batches up to 1 000).
    #[arg(long, default_value_t = 1)]
    events_per_body: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Threads driving the connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Distinct users the requests spread over.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// WABAs the webhooks spread over (W1, W2, …): a cluster's partitions.
    #[arg(long, default_value_t = 1)]
    wabas: u64,
    /// Every Nth message (webhooks) is a `delivered` status of a business
    /// message instead of an inbound one: a new conversation record in its
    /// month, which the next read of that month re-bills. 0: none.
    #[arg(long, default_value_t = 0)]
    delivered_every: u64,
    /// `at` of the window checks (Unix seconds): just after the traffic
    /// the webhooks send, as an agent asks before it replies.
    #[arg(long, default_value_t = 1_750_090_000)]
    at: u64,
}

/// What every connection shares: where to connect and what to send.
struct Plan {
    authority: String,
    mode: Mode,
    key: ring::hmac::Key,
    token: String,
    events_per_body: usize,
    users: u64,
    wabas: u64,
    delivered_every: u64,
    at: u64,
    /// Ids unique to this run, so that a second run's events are new too.
    run: u64,
}

impl Plan {
    /// The `seq`-th request of connection `conn`.
    fn request(&self, conn: usize, seq: u64) -> anyhow::Result<Request<Full<Bytes>>> {
        let builder = Request::builder().header(header::HOST, &self.authority);
        let request = match self.mode {
            Mode::Webhooks => {
                let body = self.body(conn, seq);
                let signature = hex::encode(ring::hmac::sign(&self.key, body.as_bytes()));
                builder
                    .method("POST")
                    .uri("/webhooks/meta")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("X-Hub-Signature-256", format!("sha256={signature}"))
                    .body(Full::new(Bytes::from(body)))?
            }
            Mode::Window => {
                let user = 5_511_900_000_000 + (seq * 7919 + conn as u64) % self.users;
                builder
                    .uri(format!(
                        "/v1/window?waba=W1&phone=P1&user={user}&at={}",
                        self.at
                    ))
                    .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
                    .body(Full::new(Bytes::new()))?
            }
        };
        Ok(request)
    }

    /// A Cloud API body with `events_per_body` messages: inbound ones, and
    /// `delivered` statuses where `delivered_every` says.
    fn body(&self, conn: usize, seq: u64) -> String {
        let n = self.events_per_body as u64;
        let (mut messages, mut statuses) = (Vec::new(), Vec::new());
        for k in 0..n {
            let user = 5_511_900_000_000 + ((seq * n + k) * 7919 + conn as u64) % self.users;
            let id = format!("wamid.load.{}.{conn}.{seq}.{k}", self.run);
            let ts = 1_750_000_000 + (seq * n + k) % 86_400;
            let delivered = self.delivered_every > 0
                && (seq * n + k + conn as u64).is_multiple_of(self.delivered_every);
            if delivered {
                statuses.push(format!(
                    r#"{{"id":"{id}","status":"delivered","timestamp":"{ts}","recipient_id":"{user}"}}"#
                ));
            } else {
                messages.push(format!(
                    r#"{{"from":"{user}","id":"{id}","timestamp":"{ts}","type":"text","text":{{"body":"hi"}}}}"#
                ));
            }
        }
        let mut lists = Vec::new();
        if !messages.is_empty() {
            lists.push(format!(r#""messages":[{}]"#, messages.join(",")));
        }
        if !statuses.is_empty() {
            lists.push(format!(r#""statuses":[{}]"#, statuses.join(",")));
        }
        let waba = 1 + (seq + conn as u64) % self.wabas.max(1);
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W{waba}","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550001","phone_number_id":"P1"}},{}}}}}]}}]}}"#,
            lists.join(",")
        )
    }
}

/// When connection `conn` sends, and from when its latencies count.
struct Schedule {
    /// Between two requests of one connection; None in a closed loop.
    every: Option<Duration>,
    first: Instant,
    measure_from: Instant,
    end: Instant,
}

/// What one connection saw after the warm-up.
#[derive(Default)]
struct Seen {
    /// Microseconds from due (open loop) or sent (closed loop) to answered.
    latencies: Vec<u32>,
    failed: u64,
    /// Requests sent more than a millisecond after they fell due (the
    /// connection was still waiting for an earlier answer).
    late: u64,
}

async fn connection(plan: &Plan, conn: usize, schedule: Schedule) -> anyhow::Result<Seen> {
    let stream = tokio::net::TcpStream::connect(&plan.authority)
        .await
        .with_context(|| format!("cannot connect to {}", plan.authority))?;
    stream.set_nodelay(true)?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(driver);
    let mut seen = Seen::default();
    let mut due = schedule.first;
    for seq in 1.. {
        match schedule.every {
            Some(_) => tokio::time::sleep_until(due).await,
            None => due = Instant::now(),
        }
        if due >= schedule.end {
            break;
        }
        let counts = due >= schedule.measure_from;
        if counts && due.elapsed() > Duration::from_millis(1) {
            seen.late += 1;
        }
        sender.ready().await?;
        let response = sender.send_request(plan.request(conn, seq)?).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        if counts {
            if ok {
                let micros = due.elapsed().as_micros();
                seen.latencies
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            } else {
                seen.failed += 1;
            }
        }
        if let Some(every) = schedule.every {
            due += every;
        }
    }
    Ok(seen)
}

/// The arguments checked, and the time between two requests of one
/// connection (None: closed loop).
fn every(args: &LoadArgs) -> Result<Option<Duration>, Fatal> {
    if [args.connections, args.threads, args.events_per_body].contains(&0)
        || args.users == 0
        || args.wabas == 0
        || args.seconds == 0
    {
        return Err(anyhow!(
            "--connections, --threads, --users, --wabas, --events-per-body and --seconds must be at least 1"
        )
        .into());
    }
    Ok(match args.rate {
        None => None,
        Some(rate) => Some(
            Duration::try_from_secs_f64(args.connections as f64 / rate)
                .ok()
                .filter(|every| rate > 0.0 && !every.is_zero())
                .ok_or_else(|| {
                    anyhow!("--rate {rate:e} cannot be scheduled: give a positive number of requests per second, at most one per nanosecond per connection")
                })?,
        ),
    })
}

pub fn run(args: LoadArgs) -> Result<ExitCode, Fatal> {
    let uri: Uri = args
        .url
        .parse()
        .with_context(|| format!("--url {:?} is not a URL", args.url))?;
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow!("--url {:?} has no host", args.url))?
        .to_string();
    let every = every(&args)?;
    let plan = Plan {
        authority,
        mode: args.mode,
        key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, args.app_secret.as_bytes()),
        token: args.token.clone(),
        events_per_body: args.events_per_body,
        users: args.users,
        wabas: args.wabas,
        delivered_every: args.delivered_every,
        at: args.at,
        // Two loads started in one millisecond (one per receiver) differ too.
        run: jiff::Timestamp::now().as_millisecond().unsigned_abs() * 1000
            + u64::from(std::process::id() % 1000),
    };
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")?;
    let seen: Vec<Seen> = runtime.block_on(async {
        let plan = std::sync::Arc::new(plan);
        let start = Instant::now() + Duration::from_millis(100);
        let measure_from = start + Duration::from_secs(args.warmup);
        let end = measure_from + Duration::from_secs(args.seconds);
        // Open loop: connection `c` sends at start + c/rate + k·connections/rate.
        let tasks: Vec<_> = (0..args.connections)
            .map(|conn| {
                let plan = std::sync::Arc::clone(&plan);
                let offset = every.map_or(Duration::ZERO, |every| {
                    every.mul_f64(conn as f64 / args.connections as f64)
                });
                let schedule = Schedule {
                    every,
                    first: start + offset,
                    measure_from,
                    end,
                };
                tokio::spawn(async move { connection(&plan, conn, schedule).await })
            })
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.context("a connection's task failed")??);
        }
        anyhow::Ok(seen)
    })?;
    report(&args, seen)
}

fn report(args: &LoadArgs, seen: Vec<Seen>) -> Result<ExitCode, Fatal> {
    let failed: u64 = seen.iter().map(|s| s.failed).sum();
    let late: u64 = seen.iter().map(|s| s.late).sum();
    let mut all: Vec<u32> = seen.into_iter().flat_map(|s| s.latencies).collect();
    if all.is_empty() {
        return Err(anyhow!("no request succeeded ({failed} failed)").into());
    }
    all.sort_unstable();
    let pct = |p: f64| f64::from(all[((all.len() - 1) as f64 * p) as usize]) / 1000.0;
    let requests = all.len() as f64 / args.seconds as f64;
    let events = match args.mode {
        Mode::Webhooks => requests * args.events_per_body as f64,
        Mode::Window => requests,
    };
    let asked = args
        .rate
        .map_or("closed loop".to_owned(), |r| format!("rate asked {r:.0}/s"));
    emit(&format!(
        "{asked}, {} connections: {} answered in {} s ({requests:.0}/s, {events:.0} events/s), failed {failed}, sent late {late}\n\
         latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}\n",
        args.connections,
        all.len(),
        args.seconds,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0),
    ))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wabill_engine::event::{EventBody, Status};
    use wabill_ingest::{Parsed, Route, Shape, parse_line};

    fn plan(events_per_body: usize, delivered_every: u64) -> Plan {
        Plan {
            authority: "127.0.0.1:1".into(),
            mode: Mode::Webhooks,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s"),
            token: String::new(),
            events_per_body,
            users: 10,
            wabas: 1,
            delivered_every,
            at: 0,
            run: 7,
        }
    }

    /// (inbound messages, delivered statuses) of a body, as the service reads it.
    fn kinds(body: &str) -> (usize, usize) {
        let mut parsed = Parsed::default();
        let shape = parse_line(body, Route::default(), &mut parsed);
        assert!(matches!(shape, Ok(Shape::CloudApi)), "{shape:?}: {body}");
        assert!(parsed.is_clean(), "{body}");
        let events = parsed.events;
        let inbound = events
            .iter()
            .filter(|e| matches!(e.body, EventBody::Inbound { .. }))
            .count();
        let delivered = events
            .iter()
            .filter(|e| matches!(e.body, EventBody::Status(Status::Delivered)))
            .count();
        assert_eq!(inbound + delivered, events.len(), "{body}");
        (inbound, delivered)
    }

    #[test]
    fn webhook_bodies_carry_a_delivered_status_every_nth_message_as_asked() {
        let only_inbound = plan(10, 0);
        assert_eq!(kinds(&only_inbound.body(0, 3)), (10, 0));
        let mixed = plan(10, 5);
        assert_eq!(kinds(&mixed.body(0, 3)), (8, 2));
        let one = plan(1, 2);
        let seen: Vec<(usize, usize)> = (0..4).map(|seq| kinds(&one.body(0, seq))).collect();
        assert_eq!(seen, [(0, 1), (1, 0), (0, 1), (1, 0)]);
    }
}
