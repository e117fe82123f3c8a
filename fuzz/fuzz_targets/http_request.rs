#![no_main]
//! `cargo fuzz run http_request`: see [`huddle::fuzzing::http_request`] for what it drives and asserts.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| huddle::fuzzing::http_request(data));
