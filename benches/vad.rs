//! earshot VAD cost per 16 ms frame on real speech, and its real-time factor.
//! Run: `cargo bench --bench vad`.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use huddle::audio::vad::{EARSHOT_FRAME, EarshotVad, Vad};

fn earshot(c: &mut Criterion) {
    let pcm = support::speech_pcm();
    let frames: Vec<&[i16]> = pcm.chunks_exact(EARSHOT_FRAME).collect();
    let mut group = c.benchmark_group("vad");
    group.throughput(Throughput::Elements(1));
    let mut vad = EarshotVad::new();
    let mut i = 0;
    group.bench_function("earshot_frame_16ms", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(vad.speech_probability(black_box(frames[i])))
        })
    });
    // A whole fixture, to report the real-time factor: audio seconds / CPU seconds.
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("earshot_fixture_12s", |b| {
        b.iter(|| {
            let mut vad = EarshotVad::new();
            for frame in &frames {
                black_box(vad.speech_probability(frame));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, earshot);
criterion_main!(benches);
