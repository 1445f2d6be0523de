//! `wabill export` (cli.md): the store's event log as normalized NDJSON,
//! each line with the provider it came through, so that `wabill invoice`
//! over the file gives the service's invoices. `--waba` and `--month`
//! keep the lines that can change the selected invoices, no fewer:
//! a WABA's portfolio shares its volume tiers and user links, a moved
//! number's events are billed by each WABA that carried it, and a month's
//! conversations depend on their users' other events (earlier ones, and
//! later links and verdicts). Every pass reads one snapshot of the log.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use wabill_engine::time::{HOURS_24, Month, local_midnight};
use wabill_engine::{EngineConfig, Instant};
use wabill_ingest::{Parsed, Route, parse_line};
use wabill_server::store::Location;

use crate::args::ExportArgs;
use crate::commands::store::location;
use crate::config;
use crate::exit::Fatal;

pub fn run(config_path: Option<&Path>, args: ExportArgs) -> Result<ExitCode, Fatal> {
    let location = location(config_path, &args.store)?;
    let engine = config::read_config(config_path)?.engine;
    let wabas = args.waba.as_deref().map(|w| related_wabas(&engine, w));
    let mut log = wabill_store::snapshot(&location)
        .with_context(|| format!("cannot read the store {location}"))?;
    let users = match args.month.map(window) {
        Some(window) => Some(users_of(log.as_mut(), &location, window, wabas.as_ref())?),
        None => None,
    };
    let mut out = open_output(args.output.as_deref())?;
    let selection = Selection {
        wabas: wabas.as_ref(),
        users: users.as_ref(),
    };
    match write_selected(log.as_mut(), &location, out.as_mut(), &selection) {
        Ok((written, logged)) => {
            eprintln!("wabill: exported {written} of the {logged} logged events from {location}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            // No partial export is left to be taken for a whole one.
            drop(out);
            if let Some(path) = &args.output {
                let _ = std::fs::remove_file(path);
            }
            Err(e)
        }
    }
}

/// A new owner-only file (the log holds users' numbers), or standard output.
fn open_output(path: Option<&Path>) -> Result<Box<dyn Write>, Fatal> {
    let Some(path) = path else {
        return Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock())));
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|e| {
        let what = match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                "it exists; an export never overwrites a file".to_owned()
            }
            _ => e.to_string(),
        };
        Fatal(anyhow::anyhow!("cannot create {}: {what}", path.display()))
    })?;
    Ok(Box::new(std::io::BufWriter::new(file)))
}

/// Which events an export keeps (None: all).
struct Selection<'s> {
    wabas: Option<&'s HashSet<String>>,
    users: Option<&'s HashSet<String>>,
}

/// Writes the selected events of the snapshot; (written, logged).
fn write_selected(
    log: &mut dyn wabill_store::LogSnapshot,
    location: &Location,
    out: &mut dyn Write,
    selection: &Selection<'_>,
) -> Result<(u64, u64), Fatal> {
    let (mut written, mut failed) = (0u64, None);
    let logged = each_event(log, location, &mut |source, line, key| {
        let keep = selection.wabas.is_none_or(|w| w.contains(key.waba))
            && selection
                .users
                .is_none_or(|u| key.users().any(|k| u.contains(k.as_ref())));
        if keep && failed.is_none() {
            written += 1;
            if let Err(e) = write_line(out, source, line) {
                failed = Some(e);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(Fatal(
            anyhow::Error::new(e).context("cannot write the export"),
        ));
    }
    out.flush().context("cannot write the export")?;
    Ok((written, logged))
}

/// The line with the provider it came through (events.md section 1); the
/// platform's own events (`api`) name none.
fn write_line(out: &mut dyn Write, source: &str, line: &str) -> std::io::Result<()> {
    match (
        wabill_engine::carriers::Provider::parse(source),
        line.strip_prefix('{'),
    ) {
        (Some(p), Some(rest)) => writeln!(out, "{{\"provider\":\"{}\",{rest}", p.as_str()),
        _ => writeln!(out, "{line}"),
    }
}

/// What selection reads of a logged event.
struct Key<'e> {
    waba: &'e str,
    ts: Instant,
    user: &'e str,
    bsuid: Option<&'e str>,
    group: Option<&'e str>,
    id: &'e str,
}

impl Key<'_> {
    /// The names that tie the event to others: its user ids, its group (a
    /// group's messages are billed to its participants) and its message,
    /// as a name no user id or group can have (a status may name another
    /// id of the user than its message's outbound record). Built only
    /// when a month is selected.
    fn users(&self) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        let message = format!("\u{0}{}\u{0}{}", self.waba, self.id);
        [Some(self.user), self.bsuid, self.group]
            .into_iter()
            .flatten()
            .map(std::borrow::Cow::Borrowed)
            .chain(std::iter::once(std::borrow::Cow::Owned(message)))
    }
}

/// Calls `f` with each logged event's source, line and key; the number
/// of lines logged.
fn each_event(
    log: &mut dyn wabill_store::LogSnapshot,
    location: &Location,
    f: &mut dyn FnMut(&str, &str, &Key<'_>),
) -> Result<u64, Fatal> {
    let mut unreadable = None;
    let logged = log
        .scan(&mut |source, line| {
            let mut parsed = Parsed::default();
            match parse_line(line, Route::default(), &mut parsed) {
                Ok(_) => {
                    for e in &parsed.events {
                        let key = Key {
                            waba: &e.waba,
                            ts: e.ts,
                            user: &e.user,
                            bsuid: e.bsuid(),
                            group: e.group(),
                            id: &e.id,
                        };
                        f(source, line, &key);
                    }
                }
                Err(e) => {
                    unreadable.get_or_insert_with(|| e.to_string());
                }
            }
        })
        .with_context(|| format!("cannot read the store {location}"))?;
    if let Some(e) = unreadable {
        return Err(Fatal(anyhow::anyhow!(
            "a logged line of {location} cannot be read ({e}); is the store damaged?"
        )));
    }
    Ok(logged)
}

/// The WABAs whose events can change `waba`'s invoices: those of its
/// portfolio (volume tiers and user links, rules C4 and F9) and those a
/// moved number of theirs went through (rules P6), until none is added.
fn related_wabas(engine: &EngineConfig, waba: &str) -> HashSet<String> {
    let mut set: BTreeSet<String> = BTreeSet::from([waba.to_owned()]);
    loop {
        let mut next = set.clone();
        for w in &set {
            if let Some(p) = &engine.waba(w).portfolio {
                next.extend(
                    engine
                        .wabas
                        .iter()
                        .filter(|(_, c)| c.portfolio.as_ref() == Some(p))
                        .map(|(id, _)| id.clone()),
                );
            }
            for history in engine.phones.values().filter(|h| h.names_waba(w)) {
                next.extend(history.carriers.iter().map(|c| c.waba.clone()));
            }
        }
        if next == set {
            return set.into_iter().collect();
        }
        set = next;
    }
}

/// The instants that hold month `m` in every time zone (UTC−12 to
/// UTC+14), widened by a day: an event outside cannot be in `m`.
fn window(m: Month) -> (Instant, Instant) {
    let utc = jiff::tz::TimeZone::UTC;
    let start = local_midnight(m.first_day(), &utc).plus(-HOURS_24);
    let end = local_midnight(m.next().first_day(), &utc).plus(HOURS_24);
    (start, end)
}

/// The user ids (and groups) of events in the month's window, with every
/// id linked to one of them by any event (a number and its business-scoped
/// id, a group and its participants): their events are what the month's
/// conversations can depend on.
fn users_of(
    log: &mut dyn wabill_store::LogSnapshot,
    location: &Location,
    (start, end): (Instant, Instant),
    wabas: Option<&HashSet<String>>,
) -> Result<HashSet<String>, Fatal> {
    let mut users: HashSet<String> = HashSet::new();
    let in_scope = |k: &Key<'_>| wabas.is_none_or(|w| w.contains(k.waba));
    each_event(log, location, &mut |_, _, k| {
        if in_scope(k) && k.ts >= start && k.ts < end {
            users.extend(k.users().map(std::borrow::Cow::into_owned));
        }
    })?;
    // Links chain: read again until no id is added.
    loop {
        let before = users.len();
        each_event(log, location, &mut |_, _, k| {
            if in_scope(k) && k.users().any(|u| users.contains(u.as_ref())) {
                for u in k.users() {
                    if !users.contains(u.as_ref()) {
                        users.insert(u.into_owned());
                    }
                }
            }
        })?;
        if users.len() == before {
            return Ok(users);
        }
    }
}
