#![no_main]
//! `cargo fuzz run framing`: see [`huddle::fuzzing::framing`] for what it drives and asserts.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| huddle::fuzzing::framing(data));
