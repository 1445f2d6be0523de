//! See docs/fuzzing.md: any bytes → one request (method, path, flags that
//! add valid credentials, query, headers, body) to the service's router in
//! process, with a real event log; the answer must keep the contracts that
//! `wabill_server::edge` checks. Seeds: fuzz/seeds/http.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wabill_fuzz::http_edge(data);
});
