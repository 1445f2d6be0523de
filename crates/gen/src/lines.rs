//! The write loop's state: turns events in arrival order into lines (one
//! event, or a Cloud body with a batch of statuses), and writes ~2% of lines
//! again later, as webhook retries and re-sent exports do.

use crate::earliest::Earliest;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::arrival::Pipe;
use crate::emit::Emitter;
use crate::sim::{Ev, IN, OUT, ST};
use crate::{Format, GenStats};

/// Writes lines into a buffer that the caller drains to the output.
pub(crate) struct Lines<'w> {
    format: Format,
    pipe: Pipe<'w>,
    em: Emitter<'w>,
    /// Reorder window (events): sets how late a duplicate comes.
    window: u64,
    /// One stream for status batch sizes and duplicates, drawn in line order.
    rng: Pcg64,
    dups: BinaryHeap<Dup>,
    /// Buffers of written duplicates, reused.
    spare: Vec<Vec<u8>>,
    dup_seq: u64,
    buf: Vec<u8>,
    batch: Vec<Ev>,
    pub(crate) stats: GenStats,
}

impl<'w> Lines<'w> {
    pub(crate) fn new(
        format: Format,
        pipe: Pipe<'w>,
        em: Emitter<'w>,
        window: u64,
        seed: u64,
    ) -> Self {
        Lines {
            format,
            pipe,
            em,
            window,
            rng: Pcg64::seed_from_u64(seed ^ 0x4455_5053),
            dups: BinaryHeap::new(),
            spare: Vec::new(),
            dup_seq: 0,
            buf: Vec::with_capacity(1 << 17),
            batch: Vec::with_capacity(8),
            stats: GenStats::default(),
        }
    }

    /// Bytes written and not yet drained.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes the buffer to `out` and counts its bytes.
    pub(crate) fn drain<W: Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(&self.buf)?;
        self.stats.bytes += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes the earliest duplicate if it is due (dropped if it holds more
    /// than the `left` events still to write); false if none is due.
    pub(crate) fn write_due_duplicate(&mut self, left: u64) -> bool {
        if let Some(top) = self.dups.peek()
            && top.key.0 <= self.stats.lines
            && let Some(Earliest { item: d, .. }) = self.dups.pop()
        {
            if d.events <= left {
                self.buf.extend_from_slice(&d.bytes);
                self.stats.events += d.events;
                self.stats.lines += 1;
            }
            let mut v = d.bytes;
            v.clear();
            self.spare.push(v);
            return true;
        }
        false
    }

    /// Writes the line of the next event (at most `left` events) and maybe
    /// schedules it to be written again.
    pub(crate) fn write_next_event(&mut self, left: u64) {
        let line_start = self.buf.len();
        let ev = self.pipe.next();
        let n = match (self.format, ev.kind) {
            (Format::Ndjson, _) | (Format::Cloud, OUT) => {
                self.em.ndjson(&mut self.buf, &ev);
                1
            }
            (Format::Cloud, IN) => {
                self.em.cloud_inbound(&mut self.buf, &ev);
                1
            }
            (Format::Cloud, _) => self.write_status_body(ev, left),
        };
        self.stats.events += n;
        self.stats.lines += 1;
        self.maybe_duplicate(line_start, n);
    }

    /// A Cloud body with `first` and the statuses of the same phone that
    /// follow it directly (up to a random batch size and `left`); returns
    /// the number of statuses.
    fn write_status_body(&mut self, first: Ev, left: u64) -> u64 {
        let want = self.status_batch_size().min(left);
        self.batch.clear();
        self.batch.push(first);
        while (self.batch.len() as u64) < want {
            match self.pipe.peek() {
                Some(nx) if nx.kind == ST && nx.phone == first.phone => {
                    let next = self.pipe.next();
                    self.batch.push(next);
                }
                _ => break,
            }
        }
        self.em.cloud_statuses(&mut self.buf, &self.batch);
        self.batch.len() as u64
    }

    fn status_batch_size(&mut self) -> u64 {
        match self.rng.random_range(0..1000u32) {
            0..750 => 1,
            750..900 => 2,
            900..970 => 3,
            _ => self.rng.random_range(4..=6u64),
        }
    }

    /// ~2% of lines (from `line_start` to the end of the buffer, holding `n`
    /// events) are delivered again later, mostly soon, sometimes much later.
    fn maybe_duplicate(&mut self, line_start: usize, n: u64) {
        if self.rng.random_range(0..1000u32) >= 20 {
            return;
        }
        let delay = if self.rng.random_range(0..10u32) < 6 {
            self.rng.random_range(1..=self.window.max(4))
        } else {
            self.rng.random_range(1..=self.window * 20)
        };
        let mut v = self.spare.pop().unwrap_or_default();
        v.extend_from_slice(&self.buf[line_start..]);
        self.dup_seq += 1;
        self.dups.push(Dup {
            key: (self.stats.lines + delay, self.dup_seq),
            item: DupLine {
                events: n,
                bytes: v,
            },
        });
    }
}

/// A line to write again later, keyed (due line, sequence).
type Dup = Earliest<(u64, u64), DupLine>;

struct DupLine {
    events: u64,
    bytes: Vec<u8>,
}
