#![no_main]
//! `cargo fuzz run meeting_file`: see [`huddle::fuzzing::meeting_file`] for what it drives and asserts.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| huddle::fuzzing::meeting_file(data));
