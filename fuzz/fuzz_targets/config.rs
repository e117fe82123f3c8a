#![no_main]
//! `cargo fuzz run config`: see [`huddle::fuzzing::config`] for what it drives and asserts.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| huddle::fuzzing::config(data));
