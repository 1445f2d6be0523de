//! The thread that rates for the readers ([`wabill_engine::Billed::rate`],
//! the part of settling that costs in proportion to a month, not to what
//! changed). It runs at a lower CPU priority than the writer and the async
//! workers: a client reading in a loop gets the CPU that webhooks leave,
//! not the CPU they need. It holds none of the engine's locks, so its low
//! priority can never keep the writer waiting (docs/decisions.md).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use wabill_engine::Billed;

/// The nice value of the rating thread (0 is the default, 19 the lowest
/// priority): at 10, the kernel gives it about a tenth of what a default
/// thread gets when both want the same core.
const RATE_NICE: i32 = 10;

type Job = (Billed, SyncSender<Billed>);

pub struct Rater {
    jobs: SyncSender<Job>,
}

impl Rater {
    pub fn start() -> std::io::Result<Rater> {
        // Settles take turns (the billing lock): one job at a time.
        let (jobs, queue) = sync_channel::<Job>(1);
        std::thread::Builder::new()
            .name("wabill-rater".into())
            .spawn(move || serve(&queue))?;
        Ok(Rater { jobs })
    }

    /// Rates `billed` on the rating thread and gives it back; None when
    /// rating panicked (the billing state is lost with it).
    pub fn rate(&self, billed: Billed) -> Option<Billed> {
        let (reply, answer) = sync_channel(1);
        self.jobs.send((billed, reply)).ok()?;
        answer.recv().ok()
    }
}

fn serve(queue: &Receiver<Job>) {
    lower_priority();
    while let Ok((mut billed, reply)) = queue.recv() {
        // A panic drops `reply`: the settle that waits stops the service.
        let rated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            billed.rate();
            billed
        }));
        if let Ok(billed) = rated {
            let _ = reply.send(billed);
        }
    }
}

/// Lowers this thread's priority to [`RATE_NICE`]: on Linux the nice value
/// belongs to each thread.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), RATE_NICE) {
        tracing::warn!(error = %e, "cannot lower the priority of the rating thread");
    }
}
