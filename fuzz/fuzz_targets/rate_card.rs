//! See docs/fuzzing.md: parse_card / parse_map on arbitrary text, then a
//! fixed ledger billed with the resulting rate book.
#![no_main]

libfuzzer_sys::fuzz_target!(init: wabill_fuzz::init(), |data: &[u8]| {
    wabill_fuzz::rate_card(data);
});
