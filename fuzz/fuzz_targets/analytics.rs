//! See docs/fuzzing.md: any bytes → parse_analytics → compare_analytics
//! against the fixture ledger → rendered rows. Seeds: fuzz/seeds/analytics.
#![no_main]

libfuzzer_sys::fuzz_target!(init: wabill_fuzz::init(), |data: &[u8]| {
    let _ = wabill_fuzz::analytics(data);
});
