//! The audio path end to end over a real WebSocket: real Opus frames from
//! espeak-ng speech fixtures, through the ring and a worker, to utterances
//! with exact boundaries (PROTOCOL.md §2, §3.1).

mod common;

use std::time::{Duration, Instant};

use common::audio::{Fixture, InProcess, frames};
use huddle::audio::segmenter::Decider;
use huddle::protocol::framing::FramingVersion;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const TOLERANCE_MS: i64 = 100;

fn assert_near(what: &str, got: u64, want: u64) {
    let diff = got as i64 - want as i64;
    assert!(
        diff.abs() <= TOLERANCE_MS,
        "{what}: got {got} ms, truth {want} ms ({diff:+} ms)"
    );
}

fn send_all(device: &mut common::Device, frames: &[Vec<u8>]) {
    for frame in frames {
        device.send_binary(frame.clone());
    }
}

#[test]
fn auto_mode_finds_each_utterance_within_100_ms() {
    let server = InProcess::start("");
    let fixture = Fixture::load("two_utterances");
    let mut device = server.device("aa:01", 3);
    device.send_json(json!({"type":"listen","state":"start","mode":"auto"}));
    send_all(&mut device, &frames(FramingVersion::V3, &fixture.packets()));
    let truth = fixture.speech();
    let found = server.wait_utterances("aa:01", truth.len(), WAIT);
    assert_eq!(found.len(), truth.len(), "utterances: {found:?}");
    for (u, (start, end)) in found.iter().zip(&truth) {
        assert_near("start", u.start_ms, *start);
        assert_near("end", u.end_ms, *end);
        assert_eq!(u.decided_by, Decider::ServerVad);
        assert_eq!(u.pcm.len() as u64, (u.end_ms - u.start_ms) * 16);
        assert!(
            u.voiced_ms > (end - start) / 2,
            "voiced {} of {}",
            u.voiced_ms,
            end - start
        );
    }
}

#[test]
fn the_same_audio_in_versions_1_2_and_3_gives_the_same_utterances() {
    let server = InProcess::start("");
    let fixture = Fixture::load("two_utterances");
    let packets = fixture.packets();
    let mut results = Vec::new();
    for (version, id) in [
        (FramingVersion::V1, "aa:v1"),
        (FramingVersion::V2, "aa:v2"),
        (FramingVersion::V3, "aa:v3"),
    ] {
        let mut device = server.device(id, version.number());
        send_all(&mut device, &frames(version, &packets));
        let found = server.wait_utterances(id, 2, WAIT);
        results.push(
            found
                .iter()
                .map(|u| (u.start_ms, u.end_ms, u.pcm.clone()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(results[0].len(), 2);
    assert_eq!(results[0], results[1], "v1 and v2 differ");
    assert_eq!(results[0], results[2], "v1 and v3 differ");
}

#[test]
fn corrupted_and_truncated_packets_reset_the_decoder_and_audio_goes_on() {
    let server = InProcess::start("");
    let fixture = Fixture::load("two_utterances");
    let packets = fixture.packets();
    let mut device = server.device("aa:bad", 3);
    let good = frames(FramingVersion::V3, &packets);
    // Silence first (16 packets ≈ 1 s), then garbage, then the rest.
    send_all(&mut device, &good[..16]);
    for garbage in [
        vec![0x03u8, 0x00],
        vec![0xff; 3],
        vec![0x0b, 0xff, 0xff, 0xff],
    ] {
        let mut frame = vec![0, 0, 0, garbage.len() as u8];
        frame.extend_from_slice(&garbage);
        device.send_binary(frame);
    }
    // A truncated v3 frame: payload_size says 200, 10 bytes present.
    device.send_binary(vec![0, 0, 0, 200, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let error = device.recv(Duration::from_secs(5));
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("audio"), Some("SCHEMA_INVALID"))
    );
    send_all(&mut device, &good[16..]);
    let found = server.wait_utterances("aa:bad", 2, WAIT);
    assert_eq!(
        found.len(),
        2,
        "audio after bad packets still yields utterances: {found:?}"
    );
    let metrics = server.metrics();
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("huddle_opus_decode_errors_total "))
        .and_then(|v| v.parse().ok())
        .expect("decode error counter");
    assert!(errors >= 1, "decode errors counted: {errors}");
    device.send_json(json!({"type":"ping"}));
    assert_eq!(device.recv(Duration::from_secs(5)), json!({"type":"pong"}));
}

#[test]
fn manual_mode_follows_device_brackets_and_debounces_repeats() {
    let server = InProcess::start("");
    let fixture = Fixture::load("long_speech");
    let all = frames(FramingVersion::V3, &fixture.packets());
    let mut device = server.device("aa:man", 3);
    // Bracket 1: packets 0..33 (0–1.98 s). The repeated start/stop that follow
    // within 300 ms are ignored, so packets 33..66 fall outside any bracket.
    device.send_json(json!({"type":"listen","state":"start","mode":"manual"}));
    send_all(&mut device, &all[..33]);
    device.send_json(json!({"type":"listen","state":"stop"}));
    device.send_json(json!({"type":"listen","state":"start","mode":"manual"}));
    send_all(&mut device, &all[33..66]);
    device.send_json(json!({"type":"listen","state":"stop"}));
    std::thread::sleep(Duration::from_millis(350));
    // Bracket 2, spaced past the debounce: packets 66..100 (3.96–6.0 s).
    device.send_json(json!({"type":"listen","state":"start","mode":"manual"}));
    send_all(&mut device, &all[66..100]);
    std::thread::sleep(Duration::from_millis(350));
    device.send_json(json!({"type":"listen","state":"stop"}));
    let found = server.wait_utterances("aa:man", 2, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    let found_later = server.wait_utterances("aa:man", 3, Duration::ZERO);
    assert_eq!(
        found_later.len(),
        2,
        "exactly two brackets: {found_later:?}"
    );
    assert_eq!((found[0].start_ms, found[0].end_ms), (0, 1980));
    assert_eq!((found[1].start_ms, found[1].end_ms), (3960, 6000));
    assert!(found.iter().all(|u| u.decided_by == Decider::Device));
}

#[test]
fn manual_mode_hands_over_to_server_vad_after_five_seconds_without_a_boundary() {
    let server = InProcess::start("");
    let fixture = Fixture::load("two_utterances");
    let all = frames(FramingVersion::V3, &fixture.packets());
    let truth = fixture.speech();
    // A push-to-talk release at 0.48 s, then nothing: the first sentence
    // (1.0–4.0 s) falls inside the 5 s window and is ignored; the second
    // (5.5–8.1 s) comes after 0.48 + 5 s and the server VAD cuts it.
    let mut device = server.device("aa:fallback", 3);
    device.send_json(json!({"type":"listen","state":"start","mode":"manual"}));
    send_all(&mut device, &all[..8]);
    device.send_json(json!({"type":"listen","state":"stop"}));
    send_all(&mut device, &all[8..]);
    let found = server.wait_utterances("aa:fallback", 3, Duration::from_secs(3));
    assert_eq!(found.len(), 2, "{found:?}");
    // The push-to-talk bracket itself (silent, but the device asked for it).
    assert_eq!(
        (found[0].start_ms, found[0].end_ms, found[0].decided_by),
        (0, 480, Decider::Device)
    );
    assert_eq!(found[0].voiced_ms, 0);
    assert_eq!(found[1].decided_by, Decider::ServerVad);
    assert_near("start", found[1].start_ms, truth[1].0);
    assert_near("end", found[1].end_ms, truth[1].1);

    // Same stream, but a boundary at 3.6 s refreshes the clock: the VAD may
    // only decide from 8.6 s, after the second sentence has ended.
    let mut device = server.device("aa:refresh", 3);
    device.send_json(json!({"type":"listen","state":"start","mode":"manual"}));
    send_all(&mut device, &all[..8]);
    device.send_json(json!({"type":"listen","state":"stop"}));
    send_all(&mut device, &all[8..60]);
    std::thread::sleep(Duration::from_millis(350));
    device.send_json(json!({"type":"listen","state":"stop"}));
    send_all(&mut device, &all[60..]);
    let found = server.wait_utterances("aa:refresh", 2, Duration::from_secs(3));
    assert_eq!(
        found.len(),
        1,
        "only the bracket; the refreshed window keeps the VAD out: {found:?}"
    );
    assert_eq!(found[0].decided_by, Decider::Device);
}

#[test]
fn a_flooding_device_fills_its_ring_and_others_keep_their_latency() {
    let server = InProcess::start("[audio]\nworkers = 1\nring_kib = 16\n");
    let fixture = Fixture::load("two_utterances");
    let flood_frames = frames(FramingVersion::V3, &fixture.packets());
    let flooder = std::thread::spawn({
        let url = server.url();
        move || {
            let mut device = common::Device::connect(
                &url,
                &[("Device-Id", "aa:flood"), ("Protocol-Version", "3")],
            )
            .unwrap();
            for _ in 0..60 {
                send_all(&mut device, &flood_frames);
            }
            device
        }
    });
    // The quiet device streams in real time while the flood runs; its second
    // sentence must be cut promptly after its trailing silence arrives.
    let quiet_frames = frames(FramingVersion::V3, &fixture.packets());
    let mut quiet = server.device("aa:quiet", 3);
    let start = Instant::now();
    for (i, frame) in quiet_frames.iter().enumerate() {
        let due = start + Duration::from_millis(60 * i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        quiet.send_binary(frame.clone());
    }
    let sent_all = Instant::now();
    let found = server.wait_utterances("aa:quiet", 2, WAIT);
    let cut_after = sent_all.elapsed();
    let _flooder = flooder.join().unwrap();
    assert_eq!(found.len(), 2, "quiet device utterances: {found:?}");
    assert!(
        cut_after < Duration::from_millis(500),
        "quiet device's last cut took {cut_after:?}"
    );
    let metrics = server.metrics();
    let dropped = |device: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "huddle_audio_frames_dropped_total{{device=\"{device}\"}} "
                ))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(dropped("aa:flood") > 0, "flood drops counted:\n{metrics}");
    assert_eq!(dropped("aa:quiet"), 0, "the quiet device lost frames");
}

#[test]
fn voice_keeps_a_connection_alive_but_streamed_silence_does_not() {
    let server =
        InProcess::start("[idle]\nidle_timeout_s = 30\nidle_buffer_s = 0\nwarning_s = 5\n");
    let speech = frames(FramingVersion::V3, &Fixture::load("long_speech").packets());
    let silence = frames(FramingVersion::V3, &Fixture::load("silence_5s").packets());
    let mut talker = server.device("aa:talker", 3);
    let mut quiet = server.device("aa:silent", 3);
    let start = Instant::now();
    let mut tick = 0u64;
    let mut quiet_warned_at = None;
    // Both stream from t = 0: the quiet device digital silence all along, the
    // talker silence until 18 s and then 12 s of speech. Without voice as
    // activity both would be warned at 25 s (30 s deadline − 5 s).
    while start.elapsed() < Duration::from_secs(38) {
        let due = start + Duration::from_millis(60 * tick);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t_ms = 60 * tick;
        let talker_frame = if t_ms >= 18_000 {
            speech
                .get(((t_ms - 18_000) / 60) as usize)
                .unwrap_or(&silence[0])
        } else {
            &silence[(tick as usize) % silence.len()]
        };
        talker.send_binary(talker_frame.clone());
        if quiet_warned_at.is_none() {
            quiet.send_binary(silence[(tick as usize) % silence.len()].clone());
        }
        tick += 1;
        while let common::Received::Json(message) = talker.next(Duration::from_millis(1)) {
            assert_ne!(
                message["event"],
                "timeout_warning",
                "talker warned at {:?}",
                start.elapsed()
            );
        }
        if quiet_warned_at.is_none()
            && let common::Received::Json(message) = quiet.next(Duration::from_millis(1))
            && message["event"] == "timeout_warning"
        {
            quiet_warned_at = Some(start.elapsed());
        }
    }
    let warned = quiet_warned_at.expect("the silent streamer was never warned");
    assert!(
        warned >= Duration::from_millis(24_000) && warned <= Duration::from_millis(26_500),
        "silent streamer warned at {warned:?}, expected ~25 s"
    );
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[test]
fn a_closed_connections_audio_stream_is_released_on_a_quiet_server() {
    let server = common::Server::start("");
    let pid = server.pid();
    // Settle: the listener, log and worker fds exist once a first device came and went.
    drop(server.registered_device("/xiaozhi/v1/", &[("Device-Id", "aa:warm")]));
    std::thread::sleep(Duration::from_millis(500));
    let baseline = open_fds(pid);
    let packets = frames(
        FramingVersion::V1,
        &Fixture::load("two_utterances").packets(),
    );
    for n in 0..4 {
        let mut device = server.registered_device(
            "/xiaozhi/v1/",
            &[("Device-Id", format!("aa:quiet:{n}").as_str())],
        );
        device.send_json(json!({"type":"listen","state":"start","mode":"auto"}));
        for frame in &packets[..10] {
            device.send_binary(frame.clone());
        }
        // Let the worker drain the ring and go back to sleep before we leave.
        std::thread::sleep(Duration::from_millis(300));
        let _ = device.ws.close(None);
        let _ = device.ws.flush();
    }
    // Nobody else talks, so no push wakes the audio workers: the closed
    // connections' streams (each holding its connection's waker fd) must go anyway.
    assert!(
        common::wait_until(Duration::from_secs(5), || open_fds(pid) <= baseline),
        "fds {} > baseline {baseline} after every device left",
        open_fds(pid)
    );
}
