//! Reads that need billing: a turn on the reading threads, settling
//! what the writer folded since the last read (derive the changed pairs,
//! rate the months they changed), the answer built and encoded, and, while
//! webhooks arrive, a pause that leaves them the CPU (docs/decisions.md,
//! "Reading does not stall writing").

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};

use wabill_engine::{Billed, Incremental};

use super::{State, poisoned, stop_on_panic};

impl State {
    /// Runs `f` with every fold so far billed, off the async workers, once
    /// a turn to read is free; None when `f` panicked. No thread of lower
    /// priority ever holds a lock the writer needs (the kernel may hold
    /// such a thread back for milliseconds, and the writer would wait for
    /// it): deriving and `f`, which read the engine, run at the default
    /// priority; rating, which needs no engine, on a reading thread
    /// ([`Readers`]).
    pub async fn settled<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Settled<'_>) -> R + Send + 'static,
    ) -> Option<R> {
        let turn = self.turn().await?;
        let started = self.read_started();
        let read = self.settle_steps(&turn, f).await;
        self.yield_to_writes(turn, started);
        read
    }

    /// [`State::settled`], then `encode` of what `f` built, on a reading
    /// thread: encoding a large answer (an invoice, a page of timelines)
    /// needs no lock. None when `f` or `encode` panicked.
    pub async fn settled_encoded<T: Send + 'static, E: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Settled<'_>) -> T + Send + 'static,
        encode: impl FnOnce(T) -> E + Send + 'static,
    ) -> Option<E> {
        let turn = self.turn().await?;
        let started = self.read_started();
        let built = self.settle_steps(&turn, f).await;
        let encoded = match built {
            Some(built) => self.at_lower_priority(&turn, move || encode(built)).await,
            None => None,
        };
        self.yield_to_writes(turn, started);
        encoded
    }

    /// Runs `copy` (short reads of the engine, no billing) at the default
    /// priority, then `work` on what it copied, on a reading thread, with
    /// no lock at all: for answers that bill a copy of their own
    /// (`GET /v1/reconciliation`). None when either panicked.
    pub async fn copied_then<T: Send + 'static, E: Send + 'static>(
        self: &Arc<Self>,
        copy: impl FnOnce(&State) -> T + Send + 'static,
        work: impl FnOnce(T) -> E + Send + 'static,
    ) -> Option<E> {
        let turn = self.turn().await?;
        let started = self.read_started();
        let state = Arc::clone(self);
        let copied = at_default_priority(&turn, move || copy(&state)).await;
        let done = match copied {
            Some(copied) => self.at_lower_priority(&turn, move || work(copied)).await,
            None => None,
        };
        self.yield_to_writes(turn, started);
        done
    }

    fn read_started(&self) -> ReadStarted {
        ReadStarted {
            at: std::time::Instant::now(),
            folds: self.folds.load(Ordering::Relaxed),
        }
    }

    /// Reads yield to writes: a read during which the writer folded keeps
    /// its turn, once answered, [`READ_PAUSE`] times as long as it took,
    /// so that while webhooks arrive reads keep each reading turn busy at
    /// most a quarter of the time (an eighth of a 2-core machine), however
    /// fast clients ask. A read with no fold meanwhile frees its turn at
    /// once: reads alone run at full speed (docs/decisions.md). The pause
    /// is at most [`MAX_READ_PAUSE`]: a read slowed by a burst of webhooks
    /// must not hold every read back for three times that burst.
    /// Needs a runtime with timers (the service's has them).
    fn yield_to_writes(&self, turn: Turn, started: ReadStarted) {
        if self.folds.load(Ordering::Relaxed) == started.folds {
            return;
        }
        let pause = (started.at.elapsed() * READ_PAUSE).min(MAX_READ_PAUSE);
        tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            drop(turn);
        });
    }

    /// A turn to read. Each step holds it until the step ends, even when
    /// the request is dropped meanwhile (its client went away), so that
    /// steps never outnumber the reading threads.
    async fn turn(&self) -> Option<Turn> {
        Some(Arc::new(
            Arc::clone(&self.reading).acquire_owned().await.ok()?,
        ))
    }

    async fn settle_steps<R: Send + 'static>(
        self: &Arc<Self>,
        turn: &Turn,
        f: impl FnOnce(&Settled<'_>) -> R + Send + 'static,
    ) -> Option<R> {
        let state = Arc::clone(self);
        // Most reads find nothing to rate: they read in this one step.
        let unrated = at_default_priority(turn, move || {
            state.derive_changed();
            if state.is_rated() {
                Ok(state.read_billed(f))
            } else {
                Err(f)
            }
        })
        .await?;
        let f = match unrated {
            Ok(read) => return Some(read),
            Err(f) => f,
        };
        let state = Arc::clone(self);
        self.at_lower_priority(turn, move || state.rate_derived())
            .await?;
        let state = Arc::clone(self);
        at_default_priority(turn, move || state.read_billed(f)).await
    }

    /// Runs `f` on a reading thread, holding `turn` until it ends.
    async fn at_lower_priority<R: Send + 'static>(
        &self,
        turn: &Turn,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let turn = Arc::clone(turn);
        self.readers
            .run(move || {
                let _turn = turn;
                f()
            })
            .await
    }

    /// [`State::settled`]'s steps on the calling thread (tests).
    #[cfg(test)]
    pub fn with_settled<R>(&self, f: impl FnOnce(&Settled<'_>) -> R) -> R {
        self.derive_changed();
        self.rate_derived();
        self.read_billed(f)
    }

    /// Runs `f` with billing as last rated: every fold derived before
    /// [`State::rate_derived`] last ran.
    fn read_billed<R>(&self, f: impl FnOnce(&Settled<'_>) -> R) -> R {
        let billed = self.billed.read().unwrap_or_else(|_| poisoned());
        f(&Settled {
            billed: &billed,
            state: self,
        })
    }

    /// Settling, step 1: takes the changed pairs the writer left and
    /// derives them [`DERIVE_CHUNK`] at a time under the engine's read
    /// lock, so that the writer folds in between. The pairs are taken under
    /// the billing lock, so a reader that finds none left, because another
    /// is deriving them, waits for it in [`State::is_rated`].
    fn derive_changed(&self) {
        if self.changed().is_empty() {
            return;
        }
        let mut billed = self.billed.write().unwrap_or_else(|_| poisoned());
        let changed: Vec<u32> = std::mem::take(&mut *self.changed()).into_iter().collect();
        if changed.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        stop_on_panic("settling", || {
            for chunk in changed.chunks(DERIVE_CHUNK) {
                billed.derive(&self.read(), chunk);
            }
        });
        metrics::histogram!("wabill_derive_seconds").record(started.elapsed().as_secs_f64());
    }

    /// Whether every pair derived so far is rated. It waits for the billing
    /// lock: a derive in progress (of pairs this reader found taken) ends
    /// first, so each fold answered before a read started is billed by the
    /// time it reads. A `try_read` here would lose that.
    fn is_rated(&self) -> bool {
        self.billed.read().unwrap_or_else(|_| poisoned()).is_rated()
    }

    /// Settling, step 2: rates the months derived since the last rate,
    /// without the engine's lock (its cost grows with a month, not with
    /// what changed). Until then, readers see the months as last rated.
    fn rate_derived(&self) {
        if self.is_rated() {
            return;
        }
        let mut billed = self.billed.write().unwrap_or_else(|_| poisoned());
        if billed.is_rated() {
            return;
        }
        let started = std::time::Instant::now();
        stop_on_panic("rating", || billed.rate());
        metrics::histogram!("wabill_rate_seconds").record(started.elapsed().as_secs_f64());
    }
}

/// Billing as settled for a reader, and the engine for short reads.
pub struct Settled<'s> {
    pub billed: &'s Billed,
    state: &'s State,
}

impl Settled<'_> {
    /// The engine, to read. The writer's next fold waits while this guard
    /// is held: hold it for one small piece of an answer at a time.
    pub fn engine(&self) -> RwLockReadGuard<'_, Incremental> {
        self.state.read()
    }

    /// The engine's configuration (it never changes while the service runs).
    pub fn config(&self) -> &wabill_engine::EngineConfig {
        &self.state.config
    }
}

/// A turn on the reading threads ([`State::turn`]).
type Turn = Arc<tokio::sync::OwnedSemaphorePermit>;

/// How many times as long as a read took its turn stays taken after it,
/// while webhooks arrive (measured at 1 and 3: docs/performance.md).
pub(super) const READ_PAUSE: u32 = 3;

/// The longest a turn stays taken after a read.
const MAX_READ_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// When a read started, and how many batches the writer had folded then.
struct ReadStarted {
    at: std::time::Instant,
    folds: u64,
}

/// Runs `f` on the blocking pool, at the default priority, holding `turn`
/// until it ends.
async fn at_default_priority<R: Send + 'static>(
    turn: &Turn,
    f: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let turn = Arc::clone(turn);
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        f()
    })
    .await
    .ok()
}

/// Pairs derived per hold of the engine's read lock while settling: a
/// pair costs microseconds, so the writer waits well under a millisecond.
const DERIVE_CHUNK: usize = 16;
