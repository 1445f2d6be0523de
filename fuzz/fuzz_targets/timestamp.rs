//! See docs/fuzzing.md: parse_timestamp on arbitrary JSON values (and on the
//! input as a JSON string's content), with a print/re-parse round trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wabill_fuzz::timestamp(data);
});
