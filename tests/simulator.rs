//! The device simulator (`huddle device`) against the real server, and its
//! misbehaviour detection against scripted fake servers.
//!
//! Speech fixtures come from `tests/fixtures/make_fixtures.sh` (espeak-ng and
//! sox), generated once per test binary into `<target>/tmp/fixtures`.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use common::audio::fixtures_dir;
use common::{Server, simulator};
use huddle::device::{DeviceError, DeviceOptions, stream};
use huddle::protocol::framing::{FramingVersion, PacketKind, decode};
use serde_json::{Value, json};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// ceil(duration / 60 ms): the last packet is padded with silence.
fn expected_packets(wav: &Path) -> usize {
    let samples = hound::WavReader::open(wav).expect("fixture").duration() as usize;
    samples.div_ceil(960)
}

fn stream_fixture(server: &Server, protocol: &str, name: &str) {
    let wav = fixture(name);
    let run = simulator::stream(
        server,
        &wav,
        &["--protocol", protocol, "--fast", "--linger-ms", "300"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    let messages = run.messages();
    let hello = messages
        .iter()
        .find(|m| m["type"] == "hello")
        .unwrap_or_else(|| panic!("no hello line\n{}", run.explain()));
    let session_id = hello["session_id"].as_str().expect("session_id");
    assert!(uuid::Uuid::parse_str(session_id).is_ok(), "{session_id}");
    assert_eq!(hello["version"].to_string(), protocol);
    let (sent, received, _ms) = run.summary();
    assert_eq!(sent, expected_packets(&wav), "{}", run.explain());
    assert_eq!(received, messages.len(), "{}", run.explain());
}

#[test]
fn streams_two_utterances_with_framing_v3() {
    let server = Server::start("");
    stream_fixture(&server, "3", "two_utterances.wav");
    assert!(server.wait_log("listen", common::SHORT), "{}", server.log());
}

#[test]
fn framing_v1_and_v2_work_too() {
    let server = Server::start("");
    for protocol in ["1", "2"] {
        stream_fixture(&server, protocol, "two_utterances.wav");
    }
    stream_fixture(&server, "2", "long_speech.wav");
}

#[test]
fn real_time_pace_takes_the_file_duration() {
    let server = Server::start("");
    let run = simulator::stream(
        &server,
        &fixture("silence_5s.wav"),
        &["--protocol", "3", "--linger-ms", "0"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
    assert_eq!(run.summary().0, 84);
    assert!(
        run.wall >= Duration::from_millis(4_800) && run.wall <= Duration::from_millis(6_500),
        "a 5 s file took {:?}\n{}",
        run.wall,
        run.explain()
    );
}

/// Hosts get paused (a debugger, a VM snapshot, a loaded CI box), and a
/// socket read with a timeout then ends with EINTR: both ends must read again,
/// not take it for a broken connection.
#[test]
fn pausing_the_simulator_and_the_server_mid_stream_loses_nothing() {
    let server = Server::start("");
    let url = server.ws_url("/xiaozhi/v1/");
    let wav = fixture("silence_5s.wav");
    let wav = wav.to_str().expect("utf-8 path");
    let args = [
        "--url",
        &url,
        "--wav",
        wav,
        "--protocol",
        "3",
        "--linger-ms",
        "500",
    ];
    let run = simulator::run_while(&args, |simulator_pid| {
        for round in 0..6 {
            std::thread::sleep(Duration::from_millis(500));
            let pid = if round % 2 == 0 {
                simulator_pid
            } else {
                server.pid()
            };
            common::send_signal(pid, "STOP");
            std::thread::sleep(Duration::from_millis(150));
            common::send_signal(pid, "CONT");
        }
    });
    run.assert_success();
    assert_eq!(run.summary().0, 84, "{}", run.explain());
    assert!(
        run.messages().iter().any(|m| m["type"] == "hello"),
        "{}",
        run.explain()
    );
    // The paused server carried on too.
    assert_eq!(server.http("GET", "/healthz", &[], "").status, 200);
}

#[test]
fn a_refused_upgrade_fails_naming_the_status() {
    let server = Server::start_with(
        "",
        "[server.auth]\nenabled = true\n[[server.auth.tokens]]\ntoken = \"t\"\n",
    );
    let wav = fixture("two_utterances.wav");
    let run = simulator::stream(&server, &wav, &["--fast"]);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert!(run.stderr.contains("401"), "{}", run.explain());
    // With the token it is accepted.
    let run = simulator::stream(
        &server,
        &wav,
        &["--fast", "--token", "t", "--linger-ms", "0"],
    );
    assert_eq!(run.code, Some(0), "{}", run.explain());
}

#[test]
fn a_wav_at_the_wrong_rate_is_refused_naming_the_sample_rate() {
    let path = common::temp::temp_path("huddle-sim-8k").with_extension("wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).expect("create wav");
    for _ in 0..8_000 {
        writer.write_sample(0i16).expect("write sample");
    }
    writer.finalize().expect("finalize wav");
    // The file is checked before connecting: no server needed.
    let run = simulator::run(&[
        "--url",
        "ws://127.0.0.1:9/",
        "--wav",
        path.to_str().expect("utf-8 path"),
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(run.code, Some(1), "{}", run.explain());
    assert!(
        run.stderr.contains("sample rate is 8000 Hz"),
        "{}",
        run.explain()
    );
}

// ---- Scripted fake servers: each misbehaviour the simulator must catch. ----

/// Runs `script` on the first connection to a fresh loopback port; returns the
/// device URL and the thread, which yields whatever the script records.
fn fake_server<T: Send + 'static>(
    script: impl FnOnce(&mut WebSocket<TcpStream>) -> T + Send + 'static,
) -> (String, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "ws://{}/xiaozhi/v1/",
        listener.local_addr().expect("local addr")
    );
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let mut ws = tungstenite::accept(stream).expect("upgrade");
        script(&mut ws)
    });
    (url, handle)
}

const GOOD_PARAMS: &str =
    r#"{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}"#;

fn hello_reply(version: u8, params: &str) -> Message {
    Message::text(format!(
        r#"{{"type":"hello","version":{version},"transport":"websocket","session_id":"0b5e8a2c-4f1d-4c3e-9a7b-2d6f8e1c3a90","audio_params":{params}}}"#
    ))
}

/// Reads until the device's close completes; returns every data message.
fn read_to_end(ws: &mut WebSocket<TcpStream>) -> (Vec<Message>, Option<u16>) {
    let mut seen = Vec::new();
    loop {
        match huddle::net::blocking_ws::read(ws) {
            Ok(Message::Close(frame)) => {
                let code = frame.map(|f| u16::from(f.code));
                let _ = ws.flush();
                return (seen, code);
            }
            Ok(message) => seen.push(message),
            Err(_) => return (seen, None),
        }
    }
}

fn options(url: &str, version: FramingVersion) -> DeviceOptions {
    let mut options = DeviceOptions::new(url, "unused.wav");
    options.version = version;
    options.fast = true;
    options.linger = Duration::from_millis(100);
    options
}

fn frames(version: FramingVersion, count: usize) -> Vec<Vec<u8>> {
    let packets: Vec<Vec<u8>> = (0..count).map(|i| vec![0xf8, i as u8, 0x01]).collect();
    stream::frame_packets(version, &packets)
}

#[test]
fn the_wire_sequence_matches_the_firmware() {
    let (url, server) = fake_server(|ws| {
        let hello = ws.read().expect("hello");
        ws.send(hello_reply(2, GOOD_PARAMS)).expect("reply");
        let (rest, close) = read_to_end(ws);
        (hello, rest, close)
    });
    let mut lines = Vec::new();
    let mut opts = options(&url, FramingVersion::V2);
    opts.mode = huddle::device::ListenMode::Manual;
    let report = huddle::device::run_frames(&opts, &frames(FramingVersion::V2, 10), &mut |l| {
        lines.push(l.to_string())
    })
    .expect("clean run");
    assert_eq!(report.packets_sent, 10);
    assert_eq!(report.messages_received, 1);
    assert_eq!(report.session_id, "0b5e8a2c-4f1d-4c3e-9a7b-2d6f8e1c3a90");
    assert!(lines[0].starts_with("[") && lines[0].contains(r#""type":"hello""#));

    let (hello, rest, close) = server.join().expect("fake server");
    let hello: Value = serde_json::from_str(hello.to_text().expect("text")).expect("json");
    assert_eq!(
        hello,
        json!({"type":"hello","version":2,"features":{"mcp":true},"transport":"websocket",
               "audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}})
    );
    assert_eq!(close, Some(1000), "the device closes with 1000");
    assert_eq!(rest.len(), 12, "listen start, 10 packets, listen stop");
    assert_eq!(
        rest[0].to_text().expect("text"),
        r#"{"mode":"manual","state":"start","type":"listen"}"#
    );
    for (index, message) in rest[1..11].iter().enumerate() {
        let Message::Binary(frame) = message else {
            panic!("expected audio, got {message:?}")
        };
        let packet = decode(FramingVersion::V2, frame).expect("v2 frame");
        assert_eq!(packet.kind, PacketKind::Opus);
        assert_eq!(packet.timestamp_ms, index as u32 * 60, "capture time");
        assert_eq!(packet.payload, [0xf8, index as u8, 0x01]);
    }
    assert_eq!(
        rest[11].to_text().expect("text"),
        r#"{"state":"stop","type":"listen"}"#
    );
}

#[test]
fn no_hello_reply_in_time_fails() {
    let (url, server) = fake_server(|ws| {
        read_to_end(ws);
    });
    let mut opts = options(&url, FramingVersion::V1);
    opts.hello_timeout = Duration::from_millis(300);
    let error = huddle::device::run_frames(&opts, &frames(FramingVersion::V1, 3), &mut |_| {})
        .expect_err("must fail");
    assert_eq!(error, DeviceError::HelloTimeout(Duration::from_millis(300)));
    drop(server);
}

#[test]
fn a_hello_with_the_wrong_audio_params_or_version_fails() {
    for (reply, expected) in [
        (
            hello_reply(
                3,
                r#"{"format":"opus","sample_rate":24000,"channels":1,"frame_duration":60}"#,
            ),
            "audio_params.sample_rate is 24000",
        ),
        (
            hello_reply(1, GOOD_PARAMS),
            "version is 1, the device sent 3",
        ),
    ] {
        let (url, _server) = fake_server(move |ws| {
            let _ = ws.read();
            let _ = ws.send(reply);
            read_to_end(ws);
        });
        let error = huddle::device::run_frames(
            &options(&url, FramingVersion::V3),
            &frames(FramingVersion::V3, 3),
            &mut |_| {},
        )
        .expect_err("must fail");
        assert!(
            matches!(&error, DeviceError::BadHello(e) if e.contains(expected)),
            "{error}"
        );
    }
}

#[test]
fn an_error_reply_fails_after_the_run() {
    let (url, _server) = fake_server(|ws| {
        let _ = ws.read();
        let _ = ws.send(hello_reply(3, GOOD_PARAMS));
        let _ = ws.read(); // listen start
        let _ = ws.send(Message::text(
            r#"{"type":"listen","status":"error","code":"SCHEMA_INVALID","message":"mode"}"#,
        ));
        read_to_end(ws)
    });
    let mut lines = 0;
    let error = huddle::device::run_frames(
        &options(&url, FramingVersion::V3),
        &frames(FramingVersion::V3, 5),
        &mut |_| lines += 1,
    )
    .expect_err("must fail");
    assert!(
        matches!(&error, DeviceError::ErrorReply(text) if text.contains("SCHEMA_INVALID")),
        "{error}"
    );
    assert_eq!(lines, 2, "both messages were reported");
}

#[test]
fn a_server_close_mid_stream_fails_with_its_code_and_reason() {
    let (url, _server) = fake_server(|ws| {
        let _ = ws.read();
        let _ = ws.send(hello_reply(3, GOOD_PARAMS));
        for _ in 0..4 {
            let _ = ws.read();
        }
        let _ = ws.close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "policy violation".into(),
        }));
        read_to_end(ws);
    });
    let mut opts = options(&url, FramingVersion::V3);
    // Real-time pace, so the close lands while packets are still due.
    opts.fast = false;
    let error = huddle::device::run_frames(&opts, &frames(FramingVersion::V3, 20), &mut |_| {})
        .expect_err("must fail");
    assert_eq!(
        error,
        DeviceError::ServerClosed {
            code: Some(1008),
            reason: "policy violation".to_string()
        }
    );
    assert!(error.to_string().contains("1008"), "{error}");
}
