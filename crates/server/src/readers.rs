//! The reading threads: they do the parts of reads that need billing
//! which cost the most and hold no engine lock, rating the months the
//! writer's folds changed and encoding large answers. They run
//! at a lower CPU priority than the writer and the async workers, so that
//! a client reading in a loop gets the CPU that webhooks leave, not the
//! CPU they need (docs/decisions.md, "Reading does not stall writing").

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// How much nicer than the service the reading threads are (nice values
/// run from -20 to 19, the lowest priority; 0 is the default): 19 lower,
/// so from a service at the default priority they run at the lowest, and
/// the kernel gives one about 1/70 of what the service's other threads
/// get when both want the same core (at 10 it was about a tenth, and
/// reads still cost the webhooks their tail: docs/performance.md).
const READ_NICER: i32 = 19;

/// The highest nice value: the lowest priority.
const LOWEST_PRIORITY: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

pub struct Readers {
    jobs: SyncSender<Job>,
}

impl Readers {
    /// Starts `threads` reading threads.
    pub fn start(threads: usize) -> std::io::Result<Readers> {
        let (jobs, queue) = sync_channel::<Job>(threads);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("wabill-reader-{n}"))
                .spawn(move || serve(&queue))?;
        }
        Ok(Readers { jobs })
    }

    /// Runs `f` on a reading thread; None when it panicked (or the threads
    /// are gone).
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(f());
        });
        // Callers take turns (`State::reading`, one per thread), so the
        // queue always has room.
        self.jobs.try_send(job).ok()?;
        answer.await.ok()
    }
}

fn serve(queue: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        // Nothing panics while holding the queue's lock; a poisoned one
        // still hands out jobs.
        let job = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok(job) = job else { return };
        // A panic drops the job's reply: its request answers 500, and this
        // thread serves the next (what changes shared state stops the
        // service itself, see `state::stop_on_panic`).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Lowers this thread's priority by [`READ_NICER`] from the one it was
/// started with (a service run under `nice` keeps its readers below it):
/// on Linux the nice value belongs to each thread.
fn lower_priority() {
    let tid = Some(rustix::thread::gettid());
    let lowered = rustix::process::getpriority_process(tid).and_then(|own| {
        rustix::process::setpriority_process(tid, (own + READ_NICER).min(LOWEST_PRIORITY))
    });
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "cannot lower the priority of a reading thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<R>(f: impl std::future::Future<Output = R>) -> R {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn reads_run_at_a_lower_priority_than_the_webhooks() {
        let readers = Readers::start(1).unwrap();
        let nice = block_on(
            readers.run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid()))),
        );
        let nice = nice.unwrap().unwrap();
        let own = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert_eq!(
            nice,
            (own + READ_NICER).min(LOWEST_PRIORITY),
            "the caller's thread runs at nice {own}, a reader's at {nice}"
        );
        assert!(
            nice > own || own == LOWEST_PRIORITY,
            "a reader is no lower than its caller"
        );
    }

    #[test]
    fn a_read_that_panics_fails_alone_and_the_thread_reads_on() {
        let readers = Readers::start(1).unwrap();
        assert_eq!(
            block_on(readers.run(|| -> u32 { panic!("a bad read") })),
            None
        );
        assert_eq!(block_on(readers.run(|| 7)), Some(7));
    }
}
