//! Reading cards and maps: file names and header lines, the three card
//! layouts, tier ladders, market maps.

use super::*;

mod bands;
mod cells;
mod columns;
mod maps;
mod names;
mod scan;
#[cfg(test)]
mod tests;

pub(crate) use bands::*;
pub(crate) use cells::*;
pub use columns::*;
pub use maps::*;
pub use names::*;
pub use scan::*;

/// The reader of map files and companion files: cells trimmed, `#` lines
/// skipped, every row as long as the header.
fn reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes())
}
