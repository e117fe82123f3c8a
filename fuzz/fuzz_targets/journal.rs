#![no_main]
//! `cargo fuzz run journal`: see [`huddle::fuzzing::journal`] for what it drives and asserts.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| huddle::fuzzing::journal(data));
