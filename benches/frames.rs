//! Per-message cost of the uplink path: binary frame decode in each framing
//! version, JSON text message parse (PROTOCOL.md §2, §3), Opus decode of one
//! 60 ms packet, and the whole per-frame path a worker runs (ring push → pop →
//! decode → 16 ms VAD frames → segmenter).
//! Run: `cargo bench --bench frames`.

mod support;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use huddle::audio::opus::{MAX_PACKET_SAMPLES, OpusDecoder};
use huddle::audio::ring::{self, MAX_PAYLOAD, Record};
use huddle::audio::segmenter::{FRAME_MS, Segmenter, SegmenterSettings};
use huddle::audio::vad::{EARSHOT_FRAME, EarshotVad, Vad};
use huddle::protocol::framing::{self, FramingVersion, PacketKind};
use huddle::protocol::inbound::ListenMode;
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

fn opus_decode(c: &mut Criterion) {
    let packets = support::speech_packets();
    let mut group = c.benchmark_group("opus");
    group.throughput(Throughput::Elements(1));
    let mut decoder = OpusDecoder::new().unwrap();
    let mut pcm = [0i16; MAX_PACKET_SAMPLES];
    let mut i = 0;
    group.bench_function("decode_60ms", |b| {
        b.iter(|| {
            i = (i + 1) % packets.len();
            black_box(decoder.decode(black_box(&packets[i]), &mut pcm)).ok()
        })
    });
    group.finish();
}

/// What one audio worker does per uplink packet, minus the socket read.
fn per_frame_path(c: &mut Criterion) {
    let packets = support::speech_packets();
    let mut group = c.benchmark_group("per_frame_path");
    group.throughput(Throughput::Elements(1));
    let (mut producer, mut consumer) = ring::new(64 * 1024, std::thread::current());
    let mut decoder = OpusDecoder::new().unwrap();
    let mut vad = EarshotVad::new();
    let mut segmenter = Segmenter::new(SegmenterSettings::default(), ListenMode::Auto);
    let mut payload = [0u8; MAX_PAYLOAD];
    let mut pcm = [0i16; MAX_PACKET_SAMPLES];
    let mut carry = [0i16; EARSHOT_FRAME];
    let mut carry_len = 0;
    let mut stream_ms = 0u64;
    let mut i = 0;
    group.bench_function("push_pop_decode_vad_segment", |b| {
        b.iter(|| {
            i = (i + 1) % packets.len();
            producer.push_opus(&packets[i], 0).unwrap();
            let Some(Record::Opus { len, .. }) = consumer.pop(&mut payload) else {
                unreachable!("just pushed")
            };
            let n = decoder.decode(&payload[..len], &mut pcm).unwrap_or(0);
            let mut taken = 0;
            while taken < n {
                let k = (EARSHOT_FRAME - carry_len).min(n - taken);
                carry[carry_len..carry_len + k].copy_from_slice(&pcm[taken..taken + k]);
                carry_len += k;
                taken += k;
                if carry_len == EARSHOT_FRAME {
                    carry_len = 0;
                    let p = vad.speech_probability(&carry);
                    black_box(segmenter.on_frame(&carry, p, stream_ms));
                    stream_ms += FRAME_MS;
                }
            }
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    binary_decode,
    binary_encode,
    json_parse,
    opus_decode,
    per_frame_path
);
criterion_main!(benches);
