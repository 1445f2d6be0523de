//! `wabill serve` (service.md): the imperative shell around the engine for
//! live traffic. Webhooks and the platform API come in over HTTP
//! ([`http`]); each request's events are made durable in the embedded event
//! log ([`store`]) by one writer thread with group commit, then folded into
//! the engine ([`state`]); reads answer from the engine.

pub mod cluster;
pub mod config;
#[doc(hidden)]
pub mod edge;
pub mod http;
pub mod import;
pub mod listen;
pub mod publish;
mod readers;
pub mod state;
pub mod store;

use std::sync::Arc;

use anyhow::Context;
use wabill_engine::{EngineConfig, RateBook};

pub use config::ServiceConfig;

/// Runs the service until SIGINT or SIGTERM, then finishes in-flight
/// requests, drains the writer and returns. A panic in the writer thread or
/// while the engine is folded or settled ends the process with status
/// [`state::EXIT_PANICKED`] after an error line naming what panicked: the
/// engine may be half-updated, and a restart rebuilds it from the log.
pub fn serve(service: ServiceConfig, engine: EngineConfig, book: RateBook) -> anyhow::Result<()> {
    let metrics = observe();
    let started = std::time::Instant::now();
    let (state, writer) = state::State::open(&service.store, engine, book)
        .with_context(|| format!("cannot open the store {}", service.store))?;
    {
        let engine = state.read();
        tracing::info!(
            events = engine.ledger().accepted(),
            millis = started.elapsed().as_millis() as u64,
            store = %service.store,
            "state rebuilt from the event log"
        );
    }
    let listen = service.listen.clone();
    let limits = listen::ConnectionLimits::of(&service);
    listen::raise_open_files(limits.max_connections);
    let every = service.publish_every;
    let app = Arc::new(http::App::new(Arc::clone(&state), service, metrics));
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr().context("listening address")?;
        // The first line on stdout says where to connect (tests bind port 0).
        println!("wabill listening on http://{local}");
        tracing::info!(%local, "listening");
        let published = Arc::new(publish::Published::default());
        let publisher = tokio::spawn(publish_every(
            Arc::clone(&state),
            Arc::clone(&published),
            every,
        ));
        listen::serve(listener, http::router(app), limits, shutdown_signal()).await;
        publisher.abort();
        // What the last requests billed reaches the tables before the end.
        if let Err(e) = published.publish(&state, false).await {
            tracing::error!(error = %e, "cannot publish invoices to the store");
        }
        anyhow::Ok(())
    })?;
    // In-flight requests are answered; no new job can come, so the writer
    // ends once it has committed what it holds.
    state.close();
    let _ = writer.join();
    tracing::info!("stopped");
    Ok(())
}

/// The service's async runtime: a worker thread per core.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// JSON logs on stderr (`WABILL_LOG` filters) and the metrics recorder.
fn observe() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WABILL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init()
        .ok();
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full("wabill_commit_requests".into()),
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            )
        })
        .ok()
        .and_then(|b| b.install_recorder().ok())
}

/// Publishes the months billed again, every `every` (the first time right
/// away: the tables catch up with the log the service started from).
pub(crate) async fn publish_every(
    state: Arc<state::State>,
    published: Arc<publish::Published>,
    every: std::time::Duration,
) {
    loop {
        match published.publish(&state, false).await {
            Ok(n) if n > 0 => tracing::info!(months = n, "invoices published to the store"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot publish invoices to the store"),
        }
        tokio::time::sleep(every).await;
    }
}

pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
