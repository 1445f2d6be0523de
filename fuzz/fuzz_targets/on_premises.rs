//! See docs/fuzzing.md: any bytes → parse_line (per line, and whole input as
//! one body) → Ledger → bill → rendered invoices. Seeds: fuzz/seeds/on_premises.
#![no_main]

libfuzzer_sys::fuzz_target!(init: wabill_fuzz::init(), |data: &[u8]| {
    let _ = wabill_fuzz::event_pipeline(data, wabill_fuzz::ON_PREMISES_ROUTE);
});
