//! Per-message cost of the uplink parsers: binary frame decode in each framing
//! version and JSON text message parse (PROTOCOL.md §2, §3).
//! Run: `cargo bench --bench frames`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use huddle::protocol::framing::{self, FramingVersion, PacketKind};
use huddle::protocol::parse_text;

/// A typical 60 ms 16 kHz voice packet is 100–200 bytes.
const OPUS_PACKET: [u8; 160] = [0x58; 160];

fn binary_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("binary_decode");
    group.throughput(Throughput::Elements(1));
    for version in [FramingVersion::V1, FramingVersion::V2, FramingVersion::V3] {
        let mut frame = Vec::new();
        framing::encode_into(version, PacketKind::Opus, &OPUS_PACKET, &mut frame);
        group.bench_function(format!("v{}", version.number()), |b| {
            b.iter(|| framing::decode(version, black_box(&frame)))
        });
    }
    group.finish();
}

fn binary_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("binary_encode");
    group.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(256);
    for version in [FramingVersion::V2, FramingVersion::V3] {
        group.bench_function(format!("v{}", version.number()), |b| {
            b.iter(|| {
                out.clear();
                framing::encode_into(version, PacketKind::Opus, black_box(&OPUS_PACKET), &mut out);
            })
        });
    }
    group.finish();
}

fn json_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("json_parse");
    group.throughput(Throughput::Elements(1));
    let messages = [
        ("ping", r#"{"type":"ping"}"#),
        (
            "listen",
            r#"{"type":"listen","state":"start","mode":"manual"}"#,
        ),
        (
            "hello",
            r#"{"type":"hello","version":3,"features":{"mcp":true,"aec":true},"transport":"websocket","audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}"#,
        ),
        ("invalid", r#"{"type":"listen","state":"sing"}"#),
    ];
    for (name, text) in messages {
        group.bench_function(name, |b| b.iter(|| parse_text(black_box(text))));
    }
    group.finish();
}

criterion_group!(benches, binary_decode, binary_encode, json_parse);
criterion_main!(benches);
