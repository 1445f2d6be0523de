//! See docs/fuzzing.md: any bytes → each line read by `parse_line` (whose
//! scanner reads plain normalized lines) and by serde alone; the answers
//! must be equal. Lighter than `normalized` (nothing is billed), so it
//! tries many more lines. Seeds: fuzz/seeds/scan.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wabill_fuzz::scan_agrees(data);
});
