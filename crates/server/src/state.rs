//! The service's state: the engine's events side ([`Incremental`]) and its
//! billing side ([`Billed`]) behind two locks. Only the writer thread
//! folds events: it makes each batch of requests durable in one commit
//! (group commit) before it folds their events in and answers them. A
//! reader that needs invoices while folds are not yet billed settles them
//! itself: it takes the pairs the writer's folds changed and derives them
//! a few at a time under the engine's read lock, then rates the months
//! they changed under the billing lock alone, on a reading thread of lower
//! priority ([`Readers`]), so that the writer folds on meanwhile. Readers
//! never take the engine's write lock, and no thread of lower priority
//! holds its read lock.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use wabill_engine::{Billed, EngineConfig, Incremental, Ledger, RateBook};
use wabill_ingest::{Parsed, Route, parse_line};

use crate::readers::Readers;
use crate::store::{Held, Identity, Location, LogRow, Store, StoreError};

mod quarantine;
mod reads;
mod stop;
pub use quarantine::Quarantine;
pub use reads::Settled;
pub(crate) use stop::stop_on_panic;
pub use stop::{EXIT_PANICKED, EXIT_STORE_UNREACHABLE};
use stop::{poisoned, stop_if_lost};

/// Which WABAs a request may write events of.
#[derive(Clone, Debug)]
pub enum Scope {
    All,
    Wabas(Vec<String>),
}

impl Scope {
    pub fn allows(&self, waba: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Wabas(list) => list.iter().any(|w| w == waba),
        }
    }
}

/// Why the service cannot start on its store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Replay is all or nothing: billed history never silently leaves.
    #[error(
        "{refused} of the {logged} logged events are refused by this configuration, so the service does not start (it would no longer bill them); the first: {first}. Start it again with the configuration that stored them, or change the configuration back"
    )]
    Replay {
        refused: u64,
        logged: u64,
        first: String,
    },
    #[error("cannot start the service's threads: {0}")]
    Threads(std::io::Error),
}

/// Why a job was not applied: the log refused the write.
#[derive(Clone, Debug)]
pub enum JobError {
    Store(String),
}

/// What a request writes: its validated events, the items it quarantines
/// and the quarantined items it re-processed (released).
#[derive(Default)]
pub struct Write {
    pub rows: Vec<LogRow>,
    pub held: Vec<Held>,
    pub released: Vec<i64>,
    /// Readiness: the log must take a write now, even with nothing to
    /// write ([`Store::probe`]).
    pub probe: bool,
    /// WABA-months billed again, for the published tables
    /// ([`crate::publish`]); a job of its own.
    pub publish: Vec<wabill_store::PublishedMonth>,
    /// The months whose published rows stay (a full pass of
    /// [`crate::publish`]): the others' are withdrawn. A job of its own.
    pub keep_published: Option<Vec<(String, String)>>,
}

impl Write {
    /// Events only.
    pub fn rows(rows: Vec<LogRow>) -> Write {
        Write {
            rows,
            ..Write::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.held.is_empty()
            && self.released.is_empty()
            && !self.probe
            && self.publish.is_empty()
            && self.keep_published.is_none()
    }
}

/// A request's write, waiting for the writer.
pub struct Job {
    pub write: Write,
    pub source: &'static str,
    pub reply: Reply,
}

/// What folding a request's events did (a webhook's answer).
#[derive(Copy, Clone, Debug, Default, serde::Serialize)]
pub struct Applied {
    pub accepted: u64,
    pub duplicates: u64,
}

pub struct State {
    engine: RwLock<Incremental>,
    billed: RwLock<Billed>,
    /// The pairs the writer's folds changed since the last settle took
    /// them: kept outside the engine, so that settling never takes the
    /// engine's write lock.
    changed: Mutex<BTreeSet<u32>>,
    /// The threads, at a lower priority, that answer reads that need
    /// billing.
    readers: Readers,
    /// Turns on those threads: at most half the cores read at once, so
    /// that clients reading in a loop leave the other half to the webhooks.
    reading: Arc<tokio::sync::Semaphore>,
    /// Batches the writer has folded: a read that sees it move yields to
    /// the writes ([`State::yield_to_writes`]).
    folds: AtomicU64,
    pub config: EngineConfig,
    pub book: Arc<RateBook>,
    /// The key of the engine's tables, for the private ledgers reads build
    /// (drawing another would keep 48 bytes per read).
    pub key: wabill_engine::HashKey,
    /// Items of bodies that gave no event, until re-processed.
    pub quarantine: Quarantine,
    writer: Mutex<Option<tokio::sync::mpsc::Sender<Job>>>,
    /// In a cluster, the latest month any partition has billed (its
    /// worker sets it): customers' invoices run to it, as on one service
    /// they run to every WABA's latest month.
    pub cluster_horizon: Mutex<Option<wabill_engine::time::Month>>,
    /// When the writer last committed something, and whether it could:
    /// a commit just made tells readiness what a probe would.
    pub last_commit: Mutex<Option<(std::time::Instant, bool)>>,
}

/// Requests waiting for the writer; more wait in their handlers.
const QUEUE: usize = 1024;

impl State {
    /// Opens the store at `location`, rebuilds the engine from its log,
    /// and starts the writer thread.
    pub fn open(
        location: &Location,
        config: EngineConfig,
        book: RateBook,
    ) -> Result<(Arc<State>, std::thread::JoinHandle<()>), OpenError> {
        // A secret key drawn for this process: ids sent to the service cannot
        // be crafted to collide in its tables.
        let key = wabill_engine::HashKey::drawn_from(&std::hash::RandomState::new());
        State::open_keyed(location, config, book, key)
    }

    /// [`State::open`] with the tables' key given (a key keeps 48 bytes for
    /// the rest of the process: one per process, copied).
    pub fn open_keyed(
        location: &Location,
        config: EngineConfig,
        book: RateBook,
        key: wabill_engine::HashKey,
    ) -> Result<(Arc<State>, std::thread::JoinHandle<()>), OpenError> {
        State::open_shared(location, config, Arc::new(book), key)
    }

    /// [`State::open_keyed`] with a rate book shared (a worker's partitions
    /// share one).
    pub fn open_shared(
        location: &Location,
        config: EngineConfig,
        book: Arc<RateBook>,
        key: wabill_engine::HashKey,
    ) -> Result<(Arc<State>, std::thread::JoinHandle<()>), OpenError> {
        State::open_checked(location, config, book, key, &|_| None)
    }

    /// [`State::open_shared`] whose replay also refuses a logged event of
    /// a WABA for which `foreign` gives a reason (a cluster's partition:
    /// an event this configuration bills elsewhere).
    pub fn open_checked(
        location: &Location,
        config: EngineConfig,
        book: Arc<RateBook>,
        key: wabill_engine::HashKey,
        foreign: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Arc<State>, std::thread::JoinHandle<()>), OpenError> {
        let mut store = wabill_store::open(location)?;
        let mut engine = Incremental::new(Ledger::new(config.clone(), key));
        let mut refused = 0u64;
        let mut first = None;
        // What was acknowledged replays, even past limits added since.
        engine.set_length_limits(false);
        let logged = store.replay(&mut |source, line| {
            engine.set_provider(wabill_engine::carriers::Provider::parse(source));
            let mut parsed = Parsed::default();
            let folded = match parse_line(line, Route::default(), &mut parsed) {
                Err(e) => Err(format!(
                    "a logged line cannot be read ({e}); is the store damaged?"
                )),
                Ok(_) => match parsed.events.iter().find_map(|e| foreign(&e.waba)) {
                    Some(reason) => Err(reason),
                    None => engine
                        .ingest(&parsed.events)
                        .map_err(|e| replay_refusal(&e)),
                },
            };
            if let Err(reason) = folded {
                refused += 1;
                first.get_or_insert(reason);
            }
        })?;
        engine.set_length_limits(true);
        if let Some(first) = first {
            return Err(OpenError::Replay {
                refused,
                logged,
                first,
            });
        }
        let quarantine = Quarantine::new(store.held()?);
        let (state, mut rx) = State::assemble(engine, quarantine, config, book, key)?;
        let writer_state = Arc::clone(&state);
        let handle = std::thread::Builder::new()
            .name("wabill-writer".into())
            .spawn(move || {
                stop_on_panic("the writer thread", || {
                    write_loop(&writer_state, store, &mut rx);
                });
            })
            .map_err(OpenError::Threads)?;
        Ok((state, handle))
    }

    /// A state with no store and no history, whose jobs go to the returned
    /// queue: a receiver's, which validates requests as the service does
    /// and hands their events on ([`crate::cluster`]).
    pub fn relay(
        config: EngineConfig,
        book: RateBook,
    ) -> Result<(Arc<State>, tokio::sync::mpsc::Receiver<Job>), OpenError> {
        let key = wabill_engine::HashKey::drawn_from(&std::hash::RandomState::new());
        let engine = Incremental::new(Ledger::new(config.clone(), key));
        State::assemble(
            engine,
            Quarantine::new(Vec::new()),
            config,
            Arc::new(book),
            key,
        )
    }

    fn assemble(
        mut engine: Incremental,
        quarantine: Quarantine,
        config: EngineConfig,
        book: Arc<RateBook>,
        key: wabill_engine::HashKey,
    ) -> Result<(Arc<State>, tokio::sync::mpsc::Receiver<Job>), OpenError> {
        let mut billed = Billed::new(config.clone(), Arc::clone(&book));
        billed.settle(&mut engine);
        let reading = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        let readers = Readers::start(reading).map_err(OpenError::Threads)?;
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let state = Arc::new(State {
            engine: RwLock::new(engine),
            billed: RwLock::new(billed),
            changed: Mutex::default(),
            readers,
            reading: Arc::new(tokio::sync::Semaphore::new(reading)),
            folds: AtomicU64::new(0),
            config,
            book,
            key,
            quarantine,
            writer: Mutex::new(Some(tx)),
            cluster_horizon: Mutex::new(None),
            last_commit: Mutex::new(None),
        });
        Ok((state, rx))
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

    /// Hands `write` to the writer (as source `api`) and waits until it
    /// is applied; the reason when it was not (the writer stopped, the
    /// store refused it).
    pub async fn apply(&self, write: Write) -> Result<Applied, String> {
        let (reply, done) = tokio::sync::oneshot::channel();
        let job = Job {
            write,
            source: "api",
            reply,
        };
        if !self.submit(job).await {
            return Err("the writer stopped".into());
        }
        done.await
            .map_err(|_| "the writer stopped".to_owned())?
            .map_err(|JobError::Store(e)| e)
    }

    /// Stops accepting writes; the writer ends once the queue is drained.
    pub fn close(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
    }

    /// The engine, to read. A poisoned lock means a panic while it was
    /// being changed: the service stops rather than serve what was left.
    pub fn read(&self) -> RwLockReadGuard<'_, Incremental> {
        self.engine.read().unwrap_or_else(|_| poisoned())
    }

    /// Runs `change` on the engine under the write lock and keeps the lock.
    /// A panic in `change` (a fold or a settle) would leave the engine
    /// half-updated: the service logs what panicked and stops instead (the
    /// event log rebuilds the state on restart).
    fn change(
        &self,
        what: &'static str,
        change: impl FnOnce(&mut Incremental),
    ) -> RwLockWriteGuard<'_, Incremental> {
        let mut engine = self.engine.write().unwrap_or_else(|_| poisoned());
        stop_on_panic(what, || change(&mut engine));
        engine
    }

    /// The pairs changed since the last settle.
    fn changed(&self) -> std::sync::MutexGuard<'_, BTreeSet<u32>> {
        self.changed.lock().unwrap_or_else(|_| poisoned())
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<Applied, JobError>>;

/// The rows of `jobs` that change the ledger, each event once: a copy of
/// an event the ledger holds only when F6 prefers it to the kept one, and
/// of two copies in one batch only the one F6 prefers.
fn rows_to_log<'j>(ledger: &Ledger, jobs: &'j [Job]) -> Vec<(&'j LogRow, &'static str)> {
    let mut rows: Vec<(&LogRow, &'static str)> = Vec::new();
    let mut batch: HashMap<Identity<'j>, usize> = HashMap::new();
    for job in jobs {
        for row in &job.write.rows {
            if !ledger.would_change(row.event())
                && !ledger.would_flag(row.event(), row.checked.off_period)
            {
                continue;
            }
            // A copy with Meta's verdict may change the message's verdict,
            // one naming a business-scoped id or a group may link a user or
            // put the message in a group (rules F9, G1), where F6's order of
            // copies keeps the other: log it too.
            // So may a copy that came from a provider outside its phone's
            // period (rules P6): the flag is kept per event, whichever copy.
            let source = row.source.unwrap_or(job.source);
            if row.event().verdict.is_some()
                || row.event().also.is_some()
                || row.checked.off_period.is_some()
            {
                rows.push((row, source));
                continue;
            }
            match batch.entry(row.identity()) {
                Entry::Vacant(v) => {
                    v.insert(rows.len());
                    rows.push((row, source));
                }
                Entry::Occupied(o) => {
                    let kept = &mut rows[*o.get()];
                    if row.precedes(kept.0) {
                        *kept = (row, source);
                    }
                }
            }
        }
    }
    rows
}

/// Makes a batch's new rows, held items and releases durable in one
/// commit, then shows the quarantine's change; the error when the log
/// refused the write.
fn commit(
    state: &State,
    store: &mut dyn Store,
    jobs: &[Job],
    rows: Vec<(&LogRow, &str)>,
) -> Result<(), String> {
    let held: Vec<&Held> = jobs.iter().flat_map(|j| &j.write.held).collect();
    let released: Vec<i64> = jobs
        .iter()
        .flat_map(|j| j.write.released.iter().copied())
        .collect();
    // Nothing new: every event is in the log already, durable. A probe
    // alone writes its row; one beside other writes is answered by theirs.
    if rows.is_empty() && held.is_empty() && released.is_empty() {
        if !jobs.iter().any(|j| j.write.probe) {
            return Ok(());
        }
        return store.probe().map_err(|e| {
            tracing::error!(error = %e, "event log probe failed");
            stop_if_lost(store);
            e.to_string()
        });
    }
    let started = std::time::Instant::now();
    metrics::histogram!("wabill_commit_requests").record(jobs.len() as f64);
    let logged = store.append(
        &mut rows
            .into_iter()
            .map(|(row, source)| (source, row.line.as_str())),
        &held,
        &released,
    );
    metrics::histogram!("wabill_commit_seconds").record(started.elapsed().as_secs_f64());
    if let Ok(mut last) = state.last_commit.lock() {
        *last = Some((std::time::Instant::now(), logged.is_ok()));
    }
    match logged {
        Ok(ids) => {
            let stored = held
                .into_iter()
                .zip(ids)
                .filter_map(|(h, id)| {
                    Some(Held {
                        id: id?,
                        ..h.clone()
                    })
                })
                .collect::<Vec<Held>>();
            // Counted once held: a provider's retry holds nothing new.
            for h in &stored {
                metrics::counter!("wabill_quarantined_items_total", "source" => h.source)
                    .increment(1);
            }
            state.quarantine.committed(stored, &released);
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "event log write failed");
            stop_if_lost(store);
            Err(e.to_string())
        }
    }
}

/// Why a logged event no longer folds in, naming the configuration at
/// fault and no user's number (it is printed when the service refuses to
/// start).
fn replay_refusal(e: &wabill_engine::ledger::Rejection) -> String {
    use wabill_engine::ledger::Rejection;
    match e {
        Rejection::UnknownRegion { .. } => "a user's number has no country this configuration knows (a market map or number prefix removed from [rates]?)".to_owned(),
        Rejection::BeforeFirstEra { .. } => format!("{e} (the [eras] timeline or a [[waba]] time zone changed?)"),
        // Not checked on replay; kept for the match to name every case.
        Rejection::TooLong { .. } => e.to_string(),
        Rejection::TooMany(_) => format!("{e} (the ledger's tables are full)"),
    }
}

/// Rules P6: an event from a provider outside its phone's period is
/// billed and counted; the log says so (phone and provider, no user).
fn warn_off_period(jobs: &[Job]) {
    for job in jobs {
        for row in &job.write.rows {
            if let Some(provider) = row.checked.off_period {
                tracing::warn!(
                    phone = %row.event().phone,
                    provider = provider.as_str(),
                    at = %row.event().ts.rfc3339(),
                    "an event came through a provider outside its phone's period; billed and counted (off_period_events)"
                );
            }
        }
    }
}

/// A publishing job ([`crate::publish`]): the months it writes, answered
/// with how many got a new revision, or the months whose rows stay.
fn publish(store: &mut dyn Store, write: &Write) -> Result<Applied, JobError> {
    let done = match &write.keep_published {
        Some(keep) => store.keep_published(keep),
        None => store
            .publish(&write.publish)
            .map(|revisions| revisions.iter().flatten().count() as u64),
    };
    done.map(|accepted| Applied {
        accepted,
        duplicates: 0,
    })
    .map_err(|e| {
        tracing::error!(error = %e, "publishing invoices to the store failed");
        stop_if_lost(store);
        JobError::Store(e.to_string())
    })
}

/// Most requests one commit covers.
const GROUP: usize = 256;

fn write_loop(state: &State, mut store: Box<dyn Store>, rx: &mut tokio::sync::mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Publishing changes no ledger: its own transaction, answered with
        // the number of months whose revision rose.
        let (publishing, jobs): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| !j.write.publish.is_empty() || j.write.keep_published.is_some());
        for job in publishing {
            let published = publish(store.as_mut(), &job.write);
            let _ = job.reply.send(published);
        }
        if jobs.is_empty() {
            continue;
        }
        let rows = {
            let engine = state.read();
            rows_to_log(engine.ledger(), &jobs)
        };
        warn_off_period(&jobs);
        if let Err(e) = commit(state, store.as_mut(), &jobs, rows) {
            for job in jobs {
                let _ = job.reply.send(Err(JobError::Store(e.clone())));
            }
            continue;
        }
        let fold_started = std::time::Instant::now();
        let mut applied_all = Vec::with_capacity(jobs.len());
        let mut changed = Vec::new();
        let engine = state.change("folding a batch into the engine", |engine| {
            for job in &jobs {
                let applied =
                    job.write
                        .rows
                        .iter()
                        .try_fold(Applied::default(), |mut applied, row| {
                            if engine.apply(&row.checked)? {
                                applied.accepted += 1;
                            } else {
                                applied.duplicates += 1;
                            }
                            Ok::<_, wabill_engine::CapacityError>(applied)
                        });
                applied_all.push(applied.map_err(|e| {
                    tracing::error!(error = %e, "the ledger is full");
                    JobError::Store(e.to_string())
                }));
            }
            changed = engine.take_changed();
        });
        drop(engine);
        // Before the answers: a read after one bills what it acknowledged.
        state.changed().extend(changed);
        state.folds.fetch_add(1, Ordering::Relaxed);
        metrics::histogram!("wabill_fold_seconds").record(fold_started.elapsed().as_secs_f64());
        for (job, applied) in jobs.into_iter().zip(applied_all) {
            let _ = job.reply.send(applied);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wabill_engine::event::{Event, EventBody, Status};
    use wabill_engine::{EngineConfig, Instant};

    const MARCH_2022: i64 = 1_646_092_800;

    fn event(id: &str, body: EventBody<'static>, secs: i64) -> Event<'static> {
        Event {
            ts: Instant((MARCH_2022 + secs) * 1_000_000_000),
            waba: "W1".into(),
            phone: "P1".into(),
            user: "5511999990001".into(),
            id: id.to_owned().into(),
            body,
            verdict: None,
            also: None,
        }
    }

    fn inbound(id: &str, secs: i64) -> Event<'static> {
        event(id, EventBody::Inbound { referral: false }, secs)
    }

    fn job(events: &[Event<'static>]) -> Job {
        let mut facts = Vec::new();
        wabill_engine::Validator::new(EngineConfig::new(), wabill_engine::HashKey::fixed())
            .check_group(events, &mut facts)
            .unwrap_or_else(|r| panic!("{r}"));
        Job {
            write: Write::rows(events.iter().zip(facts).map(LogRow::of).collect()),
            source: "api",
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    /// Set in the child process of the tests below, naming what it does.
    const CHILD: &str = "WABILL_SERVER_PANIC_CHILD";

    /// Runs this test binary's test `name` in a child process with
    /// [`CHILD`] set to `mode`, and returns its exit status and stderr.
    fn in_child(name: &str, mode: &str) -> (Option<i32>, String) {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        let out = std::process::Command::new(exe)
            .args([name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, mode)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A service state over an empty log, logging to stderr (in the child
    /// processes of the panic tests too).
    fn child_state() -> (Arc<State>, tempfile::TempDir) {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .try_init();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (state, _writer) = State::open(
            &Location::Embedded(dir.path().to_owned()),
            EngineConfig::new(),
            wabill_engine::RateBook::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (state, dir)
    }

    /// A runtime like the service's: two workers, timers (a read that a
    /// write overlapped pauses).
    fn service_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Submits `events` and waits (at most a minute) for the writer to
    /// answer: None when it did not.
    fn write(state: &State, events: &[Event<'static>]) -> Option<Applied> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let mut facts = Vec::new();
        // The service's own validator: its tables hash under its key.
        let mut validator = state.read().ledger().validator();
        validator
            .check_group(events, &mut facts)
            .unwrap_or_else(|r| panic!("{r}"));
        let job = Job {
            write: Write::rows(events.iter().zip(facts).map(LogRow::of).collect()),
            source: "api",
            reply,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(async {
            assert!(state.submit(job).await, "the writer is gone");
            let waited = tokio::time::timeout(std::time::Duration::from_secs(60), answer);
            waited.await.ok()?.ok()?.ok()
        })
    }

    #[test]
    fn the_writer_folds_while_a_reader_reads_billed_months() {
        let (state, _dir) = child_state();
        let delivered = |id: &str, secs| event(id, EventBody::Status(Status::Delivered), secs);
        assert!(write(&state, &[inbound("m1", 0), delivered("m2", 60)]).is_some());
        let (entered, inside) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let reader = {
            let state = Arc::clone(&state);
            std::thread::spawn(move || {
                state.with_settled(|settled| {
                    let _ = entered.send(settled.billed.months().count());
                    // A reader that takes its time with what it read.
                    let _ = released.recv();
                })
            })
        };
        let months = inside.recv().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(months, 1, "the read settled what was written before it");
        // Before issue 15, the reader held the engine's read lock until it
        // was done, and this fold waited for it.
        let applied = write(&state, &[delivered("m3", 200_000)]);
        let _ = release.send(());
        reader
            .join()
            .unwrap_or_else(|_| panic!("the reader panicked"));
        assert_eq!(applied.map(|a| a.accepted), Some(1));
        let later = state.with_settled(|settled| {
            settled
                .billed
                .months()
                .map(|m| m.records.len())
                .sum::<usize>()
        });
        assert_eq!(
            later, 2,
            "a read after the answer bills what it acknowledged"
        );
    }

    #[test]
    fn every_read_bills_each_write_acknowledged_before_it_while_readers_race() {
        let (state, _dir) = child_state();
        let acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (state, acknowledged, done) = (
                    Arc::clone(&state),
                    Arc::clone(&acknowledged),
                    Arc::clone(&done),
                );
                std::thread::spawn(move || {
                    // Timers: a read that a write overlapped pauses.
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                        .unwrap_or_else(|e| panic!("{e}"));
                    let mut reads = 0;
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        let before = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
                        let count = |settled: &Settled<'_>| {
                            settled
                                .billed
                                .months()
                                .map(|m| m.records.len())
                                .sum::<usize>()
                        };
                        // The service's steps, and all of them on one
                        // thread (a tighter loop, more races).
                        let seen = if reads % 2 == 0 {
                            runtime.block_on(state.settled(count))
                        } else {
                            Some(state.with_settled(count))
                        };
                        let seen = seen.unwrap_or_else(|| panic!("a read failed"));
                        assert!(
                            seen >= before,
                            "saw {seen} records after {before} acknowledged"
                        );
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for k in 0..300 {
            // Each delivery days after the last: a record of its own.
            let delivered = event(
                &format!("m{k}"),
                EventBody::Status(Status::Delivered),
                k * 200_000,
            );
            assert!(write(&state, &[delivered]).is_some());
            acknowledged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        for reader in readers {
            let reads = reader.join().unwrap_or_else(|_| panic!("a reader failed"));
            assert!(reads > 0);
        }
    }

    #[test]
    fn reads_whose_clients_went_away_do_not_fail_the_reads_after_them() {
        let (state, _dir) = child_state();
        let runtime = service_runtime();
        let threads = state.reading.available_permits();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let answer = runtime.block_on(async {
            // Twice as many reads as reading threads, each dropped (its
            // client went away) while its encoding waits or it waits for
            // a turn: before, the dropped ones filled the threads' queue
            // and the next read failed at once.
            for _ in 0..2 * threads {
                let released = Arc::clone(&released);
                let read = state.settled_encoded(
                    |_| (),
                    move |()| {
                        let _ = released.lock().map(|r| r.recv());
                    },
                );
                let wait = std::time::Duration::from_millis(300);
                assert!(tokio::time::timeout(wait, read).await.is_err());
            }
            let next = tokio::spawn({
                let state = Arc::clone(&state);
                async move { state.settled_encoded(|_| 7, |n| n).await }
            });
            // Time for the next read to fail, as it did; now it waits.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            for _ in 0..2 * threads {
                let _ = release.send(());
            }
            next.await
        });
        assert_eq!(answer.ok().flatten(), Some(7));
    }

    #[test]
    fn a_read_that_webhooks_overlapped_yields_its_turn_afterwards_and_one_alone_does_not() {
        let (state, _dir) = child_state();
        let runtime = service_runtime();
        let threads = state.reading.available_permits();
        let slow = std::time::Duration::from_millis(300);
        // A read that takes `slow`, while the writer folds a batch or not.
        let read = |fold: bool| {
            let writing = Arc::clone(&state);
            runtime.block_on(state.settled(move |_| {
                if fold {
                    let events = [inbound("m1", 0)];
                    let wrote = std::thread::spawn(move || write(&writing, &events).is_some());
                    assert!(wrote.join().unwrap_or(false), "the write failed");
                }
                std::thread::sleep(slow);
            }))
        };
        assert_eq!(read(false), Some(()));
        assert_eq!(
            state.reading.available_permits(),
            threads,
            "a read with no write meanwhile frees its turn as it answers"
        );
        assert_eq!(read(true), Some(()));
        assert_eq!(
            state.reading.available_permits(),
            threads - 1,
            "a read that a write overlapped keeps its turn after answering"
        );
        // The pause ends (3 times the read, at most a second), however
        // slow the machine: wait for it, up to a generous deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        runtime.block_on(async {
            while state.reading.available_permits() < threads
                && std::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        assert_eq!(
            state.reading.available_permits(),
            threads,
            "the turn is given back once the pause ends"
        );
    }

    #[test]
    fn a_panic_while_changing_the_engine_stops_the_service() {
        if std::env::var_os(CHILD).is_some() {
            let (state, _dir) = child_state();
            let _engine = state.change("a test's change", |_| panic!("boom"));
            // Not reached: the panic ended the process.
            std::process::exit(0);
        }
        let (status, stderr) = in_child(
            "state::tests::a_panic_while_changing_the_engine_stops_the_service",
            "change",
        );
        assert_eq!(status, Some(EXIT_PANICKED), "{stderr}");
        assert!(stderr.contains("stopping: a panic"), "{stderr}");
        assert!(stderr.contains("a test's change"), "{stderr}");
        assert!(stderr.contains("boom"), "{stderr}");
    }

    #[test]
    fn a_poisoned_engine_is_not_served() {
        if std::env::var_os(CHILD).is_some() {
            let (state, _dir) = child_state();
            // A panic with the write lock held, bypassing `change`.
            let poisoner = Arc::clone(&state);
            let _ = std::thread::spawn(move || {
                let _engine = poisoner.engine.write();
                panic!("half-updated");
            })
            .join();
            let _ = state.read().ledger().accepted();
            // Not reached: reading the poisoned engine ends the process.
            std::process::exit(0);
        }
        let (status, stderr) = in_child("state::tests::a_poisoned_engine_is_not_served", "read");
        assert_eq!(status, Some(EXIT_PANICKED), "{stderr}");
        assert!(stderr.contains("poisoned"), "{stderr}");
    }

    #[test]
    fn the_log_gets_each_new_event_once_and_only_copies_that_f6_prefers() {
        let mut ledger = Ledger::new(EngineConfig::new(), wabill_engine::HashKey::fixed());
        ledger
            .ingest(&[inbound("m1", 10)])
            .unwrap_or_else(|e| panic!("{e}"));
        let jobs = [
            // m1 as held, then an earlier copy; m2 is new.
            job(&[inbound("m1", 10), inbound("m1", 5), inbound("m2", 3)]),
            // m2 again in the same batch, then an earlier copy of it, and
            // a status of m1 the ledger has not seen.
            job(&[
                inbound("m2", 3),
                inbound("m2", 1),
                event("m1", EventBody::Status(Status::Delivered), 20),
            ]),
        ];
        let logged: Vec<(String, i64)> = rows_to_log(&ledger, &jobs)
            .into_iter()
            .map(|(row, _)| {
                (
                    row.event().id.to_string(),
                    row.event().ts.0 / 1_000_000_000 - MARCH_2022,
                )
            })
            .collect();
        assert_eq!(
            logged,
            [
                ("m1".to_owned(), 5),
                ("m2".to_owned(), 1),
                ("m1".to_owned(), 20)
            ]
        );
        assert!(rows_to_log(&ledger, &[job(&[inbound("m1", 10)])]).is_empty());
    }

    /// Issue 17 (review finding): events logged before the length limits
    /// existed still replay; the limits hold for what arrives after.
    #[test]
    fn a_logged_event_over_today_s_length_limits_still_replays() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let long = inbound(&"x".repeat(wabill_engine::ledger::limits::ID + 1), 10);
        let mut validator =
            wabill_engine::Validator::new(EngineConfig::new(), wabill_engine::HashKey::fixed());
        assert!(validator.check_event(&long).is_err(), "over the limit");
        validator.set_length_limits(false);
        let facts = validator
            .check_event(&long)
            .unwrap_or_else(|e| panic!("{e}"));
        {
            let mut store = wabill_store::open(&Location::Embedded(dir.path().to_owned()))
                .unwrap_or_else(|e| panic!("{e}"));
            let row = LogRow::of((&long, facts));
            store
                .append(&mut std::iter::once(("api", row.line.as_str())), &[], &[])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let (state, writer) = State::open(
            &Location::Embedded(dir.path().to_owned()),
            EngineConfig::new(),
            wabill_engine::RateBook::new(),
        )
        .unwrap_or_else(|e| panic!("the log does not replay: {e}"));
        assert_eq!(state.read().ledger().accepted(), 1);
        // New events are held to the limits again.
        let mut live = state.read().ledger().validator();
        assert!(live.check_event(&long).is_err());
        state.close();
        let _ = writer.join();
    }
}
