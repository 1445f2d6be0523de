//! `wabill import` (cli.md): files of events loaded into a store as the
//! service would take them: through the same validation and the same
//! writer, which logs only what changes the ledger (a file imported twice
//! adds nothing) and holds a body's unreadable items in the quarantine.

use std::io::BufRead;
use std::sync::Arc;

use anyhow::Context;
use wabill_engine::carriers::Provider;
use wabill_engine::{EngineConfig, RateBook};
use wabill_ingest::{Parsed, Route, parse_line};

use crate::state::{State, Write};
use crate::store::{Held, Location, LogRow};

/// What an import did.
#[derive(Debug, Default)]
pub struct Imported {
    pub accepted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub ignored: u64,
    /// Lines refused whole: where (`file:line`) and why. Nothing of them
    /// was stored.
    pub rejected: Vec<(String, String)>,
}

/// Lines handed to the writer at once.
const BATCH_LINES: usize = 2_000;

/// One file to import: its name (for messages) and its lines.
pub struct Input {
    pub name: String,
    pub reader: Box<dyn BufRead>,
}

/// Imports `inputs` into the store at `location` (which no service may
/// hold meanwhile: the store's owner lock says so). `route` gives the
/// WABA and phone of On-Premises bodies and the provider of lines that
/// name none (rules P6); events with no provider are logged as `api`.
pub fn import(
    location: &Location,
    engine: EngineConfig,
    book: RateBook,
    inputs: Vec<Input>,
    route: Route<'_>,
) -> anyhow::Result<Imported> {
    let (state, writer) = State::open(location, engine, book)
        .with_context(|| format!("cannot open the store {location}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("cannot start the async runtime")?;
    let mut imported = Imported::default();
    let held_before = state.quarantine.len();
    let mut validator = state.read().ledger().validator();
    let received_at = received_now();
    let result = (|| {
        for input in inputs {
            let mut write = Write::default();
            let mut lines = 0;
            let mut reader = input.reader;
            let mut bytes = Vec::new();
            for n in 1.. {
                let place = format!("{}:{n}", input.name);
                let line = match read_line(&mut reader, &mut bytes)
                    .with_context(|| format!("cannot read {place}"))?
                {
                    Line::End => break,
                    Line::Text(text) => text,
                    Line::Refused(reason) => {
                        imported.rejected.push((place, reason));
                        continue;
                    }
                };
                match add_line(line, route, &mut validator, &mut write, &received_at) {
                    Ok(ignored) => imported.ignored += ignored,
                    Err(reason) => {
                        imported.rejected.push((place, reason));
                        continue;
                    }
                }
                lines += 1;
                if lines == BATCH_LINES {
                    runtime.block_on(submit(&state, std::mem::take(&mut write), &mut imported))?;
                    lines = 0;
                }
            }
            runtime.block_on(submit(&state, write, &mut imported))?;
        }
        anyhow::Ok(())
    })();
    imported.quarantined = state.quarantine.len().saturating_sub(held_before) as u64;
    state.close();
    let _ = writer.join();
    result.map(|()| imported)
}

/// Reads one line's events into `write` as the service would (a body's
/// unreadable item held, `api` where no provider is known); how many
/// items it ignored, or the reason when the line is refused whole.
pub(crate) fn add_line(
    line: &str,
    route: Route<'_>,
    validator: &mut wabill_engine::Validator,
    write: &mut Write,
    received_at: &str,
) -> Result<u64, String> {
    let mut parsed = Parsed::default();
    let shape = parse_line(line, route, &mut parsed).map_err(|e| e.to_string())?;
    let provider = parsed.provider.or_else(|| route.provider_of(shape));
    validator.set_provider(provider);
    let mut facts = Vec::new();
    // The service's rules: a string over its limit refuses the body, and
    // so does an unreadable item too large for the quarantine.
    crate::http::webhooks::check_items(&mut parsed, validator, &mut facts)?;
    crate::http::webhooks::holdable(&parsed)?;
    let source = provider.map(Provider::as_str);
    write.rows.extend(parsed.events.iter().zip(facts).map(|ef| {
        let mut row = LogRow::of(ef);
        row.source = source;
        row
    }));
    write
        .held
        .extend(parsed.quarantined.drain(..).map(|item| Held {
            id: 0,
            received_at: received_at.to_owned(),
            source: source.unwrap_or("api"),
            route: String::new(),
            item,
        }));
    Ok(parsed.ignored.values().sum::<u64>())
}

/// Now, to the second, as RFC 3339: when held items were received.
pub(crate) fn received_now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// The longest line imported: room for a webhook body far above what
/// providers send (the service's own limit for `POST /v1/events` is 16 MiB).
const MAX_LINE_BYTES: u64 = 16 << 20;

enum Line<'b> {
    Text(&'b str),
    /// Not read as an event, and why (the rest of the file goes on).
    Refused(String),
    End,
}

/// The next line of `reader`, without its line end; a line over
/// [`MAX_LINE_BYTES`] or not UTF-8 is refused, never held whole in memory.
fn read_line<'b>(reader: &mut dyn BufRead, bytes: &'b mut Vec<u8>) -> std::io::Result<Line<'b>> {
    bytes.clear();
    let n = std::io::Read::take(&mut *reader, MAX_LINE_BYTES + 1).read_until(b'\n', bytes)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if bytes.last() != Some(&b'\n') && n as u64 > MAX_LINE_BYTES {
        // Skip to the end of this line, a buffer at a time.
        loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    reader.consume(i + 1);
                    break;
                }
                None => {
                    let len = buf.len();
                    reader.consume(len);
                }
            }
        }
        return Ok(Line::Refused(format!(
            "a line over {MAX_LINE_BYTES} bytes; nothing of it stored"
        )));
    }
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    Ok(match std::str::from_utf8(bytes) {
        Ok(text) => Line::Text(text),
        Err(e) => Line::Refused(format!("not UTF-8 ({e})")),
    })
}

/// Hands one batch to the writer and waits until it is durable.
async fn submit(state: &Arc<State>, write: Write, imported: &mut Imported) -> anyhow::Result<()> {
    if write.is_empty() {
        return Ok(());
    }
    let applied = state
        .apply(write)
        .await
        .map_err(|e| anyhow::anyhow!("the store refused the write: {e}"))?;
    imported.accepted += applied.accepted;
    imported.duplicates += applied.duplicates;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_too_long_or_not_utf8_is_refused_and_the_next_one_read() {
        let mut input = b"first\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', (MAX_LINE_BYTES + 10) as usize));
        input.extend(b"\nsecond\n\xff\xfe\nlast");
        let mut reader = std::io::BufReader::new(&input[..]);
        let mut bytes = Vec::new();
        let mut seen = Vec::new();
        loop {
            match read_line(&mut reader, &mut bytes).unwrap_or_else(|e| panic!("{e}")) {
                Line::End => break,
                Line::Text(t) => seen.push(t.to_owned()),
                Line::Refused(why) => seen.push(format!("refused: {why}")),
            }
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(seen[0], "first");
        assert!(seen[1].starts_with("refused: a line over"), "{}", seen[1]);
        assert_eq!(seen[2], "second");
        assert!(seen[3].starts_with("refused: not UTF-8"), "{}", seen[3]);
        assert_eq!(seen[4], "last");
    }

    #[test]
    fn a_body_with_an_unreadable_item_too_large_to_hold_is_refused_as_the_service_refuses_it() {
        let mut validator = wabill_engine::Validator::new(
            wabill_engine::EngineConfig::new(),
            wabill_engine::HashKey::fixed(),
        );
        let body = |pad: usize| {
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"W1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"P1"}},"statuses":[{{"status":"delivered","pad":"{}"}}]}}}}]}}]}}"#,
                "x".repeat(pad)
            )
        };
        let mut write = Write::default();
        let small = add_line(&body(100), Route::default(), &mut validator, &mut write, "");
        assert_eq!(small, Ok(0));
        assert_eq!(write.held.len(), 1, "a small unreadable item is held");
        let big = add_line(
            &body(70_000),
            Route::default(),
            &mut validator,
            &mut write,
            "",
        );
        let e = big.expect_err("refused");
        assert!(e.contains("over the 65536"), "{e}");
        assert_eq!(write.held.len(), 1, "nothing of the refused body held");
    }
}
