//! The service's state: the engine's ledger and per-pair logs behind one
//! lock, fed only by the writer thread, which makes each batch of requests
//! durable in one commit (group commit) before it folds their events in and
//! answers them. Readers bill from a cache keyed by the ledger's version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use wabill_engine::billing::WabaMonth;
use wabill_engine::event::Event;
use wabill_engine::live::PairLog;
use wabill_engine::{EngineConfig, Ledger, RateBook, bill};
use wabill_ingest::{Route, parse_line};

use crate::store::{LogRow, Store, StoreError};

pub type PairNames = (String, String, String);

/// Everything derived from the log.
pub struct Engine {
    pub ledger: Ledger,
    pub pairs: HashMap<PairNames, PairLog>,
    /// Bumped by every batch that changed the ledger.
    pub version: u64,
}

impl Engine {
    fn fold(&mut self, events: &[Event<'_>]) -> (u64, u64) {
        let Ok(outcome) = self.ledger.ingest(events) else {
            // Validated before logging; a log written by an older
            // configuration may hold what this one refuses.
            return (0, 0);
        };
        for e in events {
            let key = (e.waba.to_string(), e.phone.to_string(), e.user.to_string());
            self.pairs.entry(key).or_default().add(e);
        }
        (outcome.accepted, outcome.duplicates)
    }
}

/// A request's events, validated, waiting to be logged.
pub struct Job {
    pub rows: Vec<LogRow>,
    pub source: &'static str,
    pub reply: tokio::sync::oneshot::Sender<Result<Applied, String>>,
}

/// What folding a request's events did.
#[derive(Copy, Clone, Debug, Default)]
pub struct Applied {
    pub accepted: u64,
    pub duplicates: u64,
}

/// Bills of every WABA-month at one ledger version.
pub struct Billed {
    pub version: u64,
    pub months: Vec<WabaMonth>,
}

pub struct State {
    pub engine: RwLock<Engine>,
    pub config: EngineConfig,
    pub book: RateBook,
    writer: Mutex<Option<tokio::sync::mpsc::Sender<Job>>>,
    billed: Mutex<Option<Arc<Billed>>>,
    pub store_bytes: std::sync::atomic::AtomicU64,
    pub store_writable: std::sync::atomic::AtomicBool,
}

/// Requests waiting for the writer; more wait in their handlers.
const QUEUE: usize = 1024;

impl State {
    /// Opens the log under `data_dir`, rebuilds the engine from it, and
    /// starts the writer thread.
    pub fn open(
        data_dir: &std::path::Path,
        config: EngineConfig,
        book: RateBook,
    ) -> Result<(Arc<State>, std::thread::JoinHandle<()>), StoreError> {
        let store = Store::open(data_dir)?;
        let mut engine = Engine {
            ledger: Ledger::new(config.clone()),
            pairs: HashMap::new(),
            version: 0,
        };
        store.replay(|line| {
            let mut events = Vec::new();
            if parse_line(line, Route::default(), &mut events).is_ok() {
                engine.fold(&events);
            }
        })?;
        engine.version = 1;
        let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUE);
        let state = Arc::new(State {
            engine: RwLock::new(engine),
            config,
            book,
            writer: Mutex::new(Some(tx)),
            billed: Mutex::new(None),
            store_bytes: store.size_bytes().into(),
            store_writable: true.into(),
        });
        let writer_state = Arc::clone(&state);
        let handle = std::thread::Builder::new()
            .name("wabill-writer".into())
            .spawn(move || write_loop(&writer_state, store, &mut rx))
            .map_err(|e| StoreError::Dir {
                path: data_dir.to_owned(),
                source: e,
            })?;
        Ok((state, handle))
    }

    /// Sends a job to the writer, waiting while its queue is full; false
    /// when the service is shutting down.
    pub async fn submit(&self, job: Job) -> bool {
        let sender = self.writer.lock().ok().and_then(|w| w.clone());
        match sender {
            Some(s) => s.send(job).await.is_ok(),
            None => false,
        }
    }

    /// Stops accepting writes; the writer ends once the queue is drained.
    pub fn close(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Engine> {
        self.engine
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every WABA-month billed at the current version (recomputed only
    /// after the ledger changed).
    pub fn billed(&self) -> Arc<Billed> {
        let engine = self.read();
        let mut cache = self
            .billed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = cache.as_ref().filter(|b| b.version == engine.version) {
            return Arc::clone(b);
        }
        let billing = bill(&engine.ledger, &self.book);
        let billed = Arc::new(Billed {
            version: engine.version,
            months: billing.months,
        });
        *cache = Some(Arc::clone(&billed));
        billed
    }
}

/// Most requests one commit covers.
const GROUP: usize = 256;

fn write_loop(state: &State, mut store: Store, rx: &mut tokio::sync::mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let rows = jobs
            .iter()
            .flat_map(|j| j.rows.iter().map(move |r| (r, j.source)));
        if let Err(e) = store.append(rows) {
            tracing::error!(error = %e, "event log write failed");
            state
                .store_writable
                .store(false, std::sync::atomic::Ordering::Relaxed);
            for job in jobs {
                let _ = job.reply.send(Err(e.to_string()));
            }
            continue;
        }
        state
            .store_bytes
            .store(store.size_bytes(), std::sync::atomic::Ordering::Relaxed);
        state
            .store_writable
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut engine = state
            .engine
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs {
            let mut applied = Applied::default();
            for row in &job.rows {
                let mut events = Vec::new();
                if parse_line(&row.line, Route::default(), &mut events).is_ok() {
                    let (accepted, duplicates) = engine.fold(&events);
                    applied.accepted += accepted;
                    applied.duplicates += duplicates;
                }
            }
            replies.push((job.reply, applied));
        }
        engine.version += 1;
        drop(engine);
        for (reply, applied) in replies {
            let _ = reply.send(Ok(applied));
        }
    }
}
