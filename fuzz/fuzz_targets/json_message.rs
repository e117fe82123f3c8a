#![no_main]
//! `cargo fuzz run json_message`: see [`huddle::fuzzing::json_message`] for what it drives and asserts.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| huddle::fuzzing::json_message(data));
