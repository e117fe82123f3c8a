//! Bench inputs: real speech (the espeak-ng fixture) as PCM and Opus packets.

#![allow(dead_code)]

use std::path::PathBuf;

use huddle::audio::opus::OpusEncoder;

/// 16 kHz mono samples of `long_speech.wav`, generating the fixtures if needed.
pub fn speech_pcm() -> Vec<i16> {
    speech_pcm_of("long_speech")
}

/// 16 kHz mono samples of fixture `name`.
pub fn speech_pcm_of(name: &str) -> Vec<i16> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/fixtures");
    let status = std::process::Command::new("bash")
        .arg(root.join("tests/fixtures/make_fixtures.sh"))
        .arg(&dir)
        .status()
        .expect("run make_fixtures.sh (needs espeak-ng and sox: .ci/setup)");
    assert!(status.success(), "make_fixtures.sh failed");
    let mut reader = hound::WavReader::open(dir.join(format!("{name}.wav"))).expect("fixture");
    reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect()
}

pub fn speech_packets() -> Vec<Vec<u8>> {
    OpusEncoder::new()
        .unwrap()
        .encode_all(&speech_pcm())
        .unwrap()
}
