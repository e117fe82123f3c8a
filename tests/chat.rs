//! Chat turns end to end (PROTOCOL.md §3.1, §2.4): a real WebSocket device,
//! a local streaming chat-completions stub for the LLM, espeak-ng for speech,
//! real Opus on the downlink; and the device's MCP tools.

mod common;

use std::time::{Duration, Instant};

use common::llm_stub::{Behavior, LlmStub};
use common::{Device, Received, Server};
use huddle::protocol::framing::{FramingVersion, PacketKind, decode};
use serde_json::{Value, json};

const LONG_ANSWER: &str = "Once upon a time there was a small badge. It listened to every meeting. \
It wrote down every decision. One day it learned to speak. Everyone in the office was amazed. \
The end of the story is a happy one.";

fn config(stub: &LlmStub, extra: &str) -> String {
    format!(
        "[selected_module]\nllm = \"talker\"\ntts = \"voice\"\n[tts.voice]\ntype = \"espeak\"\nvoice = \"en-us\"\n{}{extra}",
        stub.toml_table("talker", "chat-model")
    )
}

/// A v3 device that said hello (with `features`) and drained its welcome.
fn talking_device(server: &Server, features: Value) -> Device {
    let mut device = server.registered_device(
        "/xiaozhi/v1/",
        &[
            ("Device-Id", "aa:bb:cc:00:11:22"),
            ("Protocol-Version", "3"),
        ],
    );
    device.send_json(
        json!({"type":"hello","version":3,"transport":"websocket","features":features,
        "audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}),
    );
    device.recv_until(Duration::from_secs(5), |v| v["type"] == "hello");
    device
}

/// What arrived, with arrival times, until `tts stop` or `timeout`.
enum Heard {
    Json(Value),
    Audio(Vec<u8>),
}

fn listen_turn(device: &mut Device, timeout: Duration) -> Vec<(Instant, Heard)> {
    let deadline = Instant::now() + timeout;
    let mut heard = Vec::new();
    while Instant::now() < deadline {
        match device.next(deadline.saturating_duration_since(Instant::now())) {
            Received::Json(v) if v["type"] == "server" => {}
            Received::Json(v) => {
                let stop = v["type"] == "tts" && v["state"] == "stop";
                heard.push((Instant::now(), Heard::Json(v)));
                if stop {
                    break;
                }
            }
            Received::Binary(frame) => {
                let packet = decode(FramingVersion::V3, &frame).expect("v3 downlink framing");
                assert_eq!(packet.kind, PacketKind::Opus);
                heard.push((Instant::now(), Heard::Audio(packet.payload.to_vec())));
            }
            Received::Closed(c) => panic!("closed mid-turn: {c:?}"),
            Received::Timeout => break,
        }
    }
    heard
}

fn messages(heard: &[(Instant, Heard)]) -> Vec<&Value> {
    heard
        .iter()
        .filter_map(|(_, h)| match h {
            Heard::Json(v) => Some(v),
            Heard::Audio(_) => None,
        })
        .collect()
}

/// The texts of the turn's `sentence_start` messages, in order.
fn sentence_texts(heard: &[(Instant, Heard)]) -> Vec<&str> {
    messages(heard)
        .into_iter()
        .filter(|m| m["state"] == "sentence_start")
        .filter_map(|m| m["text"].as_str())
        .collect()
}

/// One text turn (`question`) against an LLM stub answering `reply`, on a
/// server with `extra` config; what the device heard until `tts stop`.
fn answered_turn(
    reply: &str,
    extra: &str,
    question: &str,
) -> (LlmStub, Server, Vec<(Instant, Heard)>) {
    let stub = LlmStub::with(Behavior::Reply(reply.into()));
    let server = Server::start(&config(&stub, extra));
    let mut device = talking_device(&server, json!({}));
    device.send_json(json!({"type":"listen","state":"detect","text":question}));
    let heard = listen_turn(&mut device, Duration::from_secs(20));
    (stub, server, heard)
}

/// The turn's shape: message kinds in order, with `audio×N` runs.
fn shape(heard: &[(Instant, Heard)]) -> Vec<String> {
    let mut shape: Vec<String> = Vec::new();
    for (_, h) in heard {
        let item = match h {
            Heard::Json(v) if v["type"] == "tts" => format!("tts {}", v["state"].as_str().unwrap()),
            Heard::Json(v) if v["type"] == "audio" => "transcription".to_string(),
            Heard::Json(v) => v["type"].as_str().unwrap().to_string(),
            Heard::Audio(_) => "audio".to_string(),
        };
        if item == "audio" && shape.last().is_some_and(|s| s == "audio") {
            continue;
        }
        shape.push(item);
    }
    shape
}

#[test]
fn a_turn_streams_sentences_with_paced_valid_opus_in_order() {
    let (stub, _server, heard) = answered_turn(
        "It is sunny today. Enjoy your walk in the park!",
        "",
        "what is the weather like",
    );
    assert_eq!(shape(&heard), expected_shape());
    assert_eq!(
        sentence_texts(&heard),
        ["It is sunny today.", "Enjoy your walk in the park!"]
    );
    // No emoji in the answer: the default face.
    let face = messages(&heard)
        .into_iter()
        .find(|m| m["type"] == "llm")
        .expect("llm");
    assert_eq!(
        (&face["text"], &face["emotion"]),
        (&json!("😊"), &json!("happy"))
    );
    assert!(
        messages(&heard)
            .iter()
            .all(|m| m["session_id"].as_str().is_some_and(|s| !s.is_empty())),
        "every conversation message carries session_id"
    );
    // The LLM was asked to stream.
    assert_eq!(stub.requests()[0].body["stream"], true);
    // Every packet is valid 16 kHz mono Opus of 60 ms.
    let mut decoder = opus::Decoder::new(16_000, opus::Channels::Mono).unwrap();
    let audio: Vec<(Instant, &Vec<u8>)> = heard
        .iter()
        .filter_map(|(t, h)| match h {
            Heard::Audio(p) => Some((*t, p)),
            Heard::Json(_) => None,
        })
        .collect();
    assert!(
        audio.len() >= 20,
        "{} packets for two sentences",
        audio.len()
    );
    let mut pcm = vec![0i16; 5760];
    let mut energy = 0f64;
    for (_, packet) in &audio {
        let samples = decoder.decode(packet, &mut pcm, false).expect("valid Opus");
        assert_eq!(samples, 960, "60 ms at 16 kHz");
        energy += pcm[..samples]
            .iter()
            .map(|s| f64::from(*s).powi(2))
            .sum::<f64>();
    }
    assert!(
        energy > 1e9,
        "the answer is audible speech, energy {energy}"
    );
    // Pacing: three at once, then one per 60 ms — never early.
    let first = audio[0].0;
    for (k, (at, _)) in audio.iter().enumerate().skip(3) {
        let earliest = Duration::from_millis(55 * (k as u64 - 2));
        assert!(
            at.duration_since(first) + Duration::from_millis(10) >= earliest,
            "packet {k} arrived {:?} after the first, before {earliest:?}",
            at.duration_since(first)
        );
    }
    let gaps: Vec<Duration> = audio[3..].windows(2).map(|w| w[1].0 - w[0].0).collect();
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        mean >= Duration::from_millis(55) && mean <= Duration::from_millis(80),
        "mean gap {mean:?}"
    );
}

fn expected_shape() -> Vec<String> {
    [
        "stt",
        "transcription",
        "llm",
        "tts start",
        "tts sentence_start",
        "audio",
        "tts sentence_end",
        "tts sentence_start",
        "audio",
        "tts sentence_end",
        "tts stop",
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

/// The badge's face is the answer's first emotion emoji (other emoji are
/// skipped); no emoji is spoken or shown in the sentences.
#[test]
fn the_answers_first_emotion_emoji_sets_the_face_and_is_not_spoken() {
    let (stub, _server, heard) = answered_turn(
        "🎉🤔 Let me think about that. 😂 Tuesday works best.",
        "",
        "when should we meet",
    );
    let all = messages(&heard);
    let faces: Vec<&&Value> = all.iter().filter(|m| m["type"] == "llm").collect();
    assert_eq!(faces.len(), 1, "one face per turn: {all:?}");
    assert_eq!(faces[0]["text"], "🤔");
    assert_eq!(faces[0]["emotion"], "thinking");
    assert_eq!(
        sentence_texts(&heard),
        ["Let me think about that.", "Tuesday works best."]
    );
    // The default prompt asks for the emoji the face is made from.
    let system = &stub.requests()[0].body["messages"][0]["content"];
    assert!(
        system.as_str().is_some_and(|p| p.contains("emoji")),
        "{system}"
    );
}

#[test]
fn abort_mid_answer_stops_audio_at_once_and_ends_with_tts_stop() {
    let stub = LlmStub::with(Behavior::Reply(LONG_ANSWER.into()));
    let server = Server::start(&config(&stub, ""));
    let mut device = talking_device(&server, json!({}));
    device.send_json(json!({"type":"listen","state":"detect","text":"tell me a story"}));
    // Wait until the answer is playing.
    let mut packets = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while packets < 5 && Instant::now() < deadline {
        if let Received::Binary(_) = device.next(Duration::from_millis(500)) {
            packets += 1;
        }
    }
    assert_eq!(packets, 5, "the answer started playing");
    let aborted = Instant::now();
    device.send_json(json!({"type":"abort","reason":"wake_word_detected"}));
    let mut late_audio = 0;
    let mut stop_at = None;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        match device.next(Duration::from_millis(100)) {
            Received::Binary(_) if aborted.elapsed() > Duration::from_millis(100) => {
                late_audio += 1
            }
            Received::Json(v) if v["type"] == "tts" && v["state"] == "stop" => {
                stop_at.get_or_insert(aborted.elapsed());
            }
            Received::Json(v) if v["type"] == "tts" && v["state"] == "sentence_start" => {
                panic!("a new sentence after abort: {v}")
            }
            _ => {}
        }
    }
    // A packet already on the wire when the abort left may be read late by a
    // descheduled test thread; a server that kept playing would send dozens.
    assert!(
        late_audio <= 1,
        "{late_audio} packets more than 100 ms after abort"
    );
    let stop_at = stop_at.expect("tts stop after abort");
    assert!(
        stop_at < Duration::from_millis(500),
        "tts stop after {stop_at:?}"
    );
}

#[test]
fn an_llm_that_is_down_still_ends_the_turn_with_an_apology_and_tts_stop() {
    let mut stub = LlmStub::start();
    let server = Server::start(&config(&stub, ""));
    stub.shutdown();
    let mut device = talking_device(&server, json!({}));
    device.send_json(json!({"type":"listen","state":"detect","text":"are you there"}));
    let heard = listen_turn(&mut device, Duration::from_secs(20));
    let said = sentence_texts(&heard);
    assert_eq!(said.len(), 1, "{:?}", shape(&heard));
    assert!(said[0].contains("Sorry"), "{said:?}");
    assert_eq!(shape(&heard).last().map(String::as_str), Some("tts stop"));
    assert!(
        heard.iter().any(|(_, h)| matches!(h, Heard::Audio(_))),
        "the apology is spoken"
    );
}

#[test]
fn a_device_that_never_answers_mcp_still_gets_its_answer() {
    let stub = LlmStub::with(Behavior::Reply("Here I am.".into()));
    let server = Server::start(&config(&stub, ""));
    let mut device = talking_device(&server, json!({"mcp": true}));
    // The server opened MCP; this device ignores it.
    let mcp = device.recv_until(Duration::from_secs(5), |v| v["type"] == "mcp");
    assert_eq!(mcp["payload"]["method"], "initialize");
    assert_eq!(mcp["payload"]["id"], 1);
    let list = device.recv_until(Duration::from_secs(5), |v| v["type"] == "mcp");
    assert_eq!(list["payload"]["method"], "tools/list");
    let asked = Instant::now();
    device.send_json(json!({"type":"listen","state":"detect","text":"are you there"}));
    let heard = listen_turn(&mut device, Duration::from_secs(20));
    assert!(
        messages(&heard).iter().any(|m| m["text"] == "Here I am."),
        "{:?}",
        shape(&heard)
    );
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
    // No tools were listed, so none were offered.
    assert!(stub.requests()[0].body.get("tools").is_none());
}

#[test]
fn an_mcp_tool_is_called_when_the_llm_asks_for_it() {
    let stub = LlmStub::start();
    stub.script(vec![
        Behavior::ToolCall {
            name: "self.audio_speaker.set_volume".into(),
            arguments: r#"{"volume":30}"#.into(),
        },
        Behavior::Reply("The volume is now thirty.".into()),
    ]);
    let server = Server::start(&config(&stub, ""));
    let mut device = talking_device(&server, json!({"mcp": true}));
    device.recv_until(Duration::from_secs(5), |v| {
        v["payload"]["method"] == "tools/list"
    });
    device.send_json(json!({"type":"mcp","payload":{"jsonrpc":"2.0","id":2,"result":{"tools":[
        {"name":"self.audio_speaker.set_volume","description":"Set the speaker volume",
         "inputSchema":{"type":"object","properties":{"volume":{"type":"integer"}},"required":["volume"]}}
    ]}}}));
    std::thread::sleep(Duration::from_millis(200));
    device.send_json(
        json!({"type":"listen","state":"detect","text":"turn the volume down to thirty"}),
    );
    let call = device.recv_until(Duration::from_secs(10), |v| {
        v["type"] == "mcp" && v["payload"]["method"] == "tools/call"
    });
    assert_eq!(call["payload"]["id"], 3);
    assert_eq!(
        call["payload"]["params"]["name"],
        "self.audio_speaker.set_volume"
    );
    assert_eq!(
        call["payload"]["params"]["arguments"],
        json!({"volume": 30})
    );
    device.send_json(json!({"type":"mcp","payload":{"jsonrpc":"2.0","id":3,
        "result":{"content":[{"type":"text","text":"volume=30"}],"isError":false}}}));
    let heard = listen_turn(&mut device, Duration::from_secs(20));
    assert!(
        messages(&heard)
            .iter()
            .any(|m| m["text"] == "The volume is now thirty."),
        "{:?}",
        shape(&heard)
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body["tools"][0]["function"]["name"],
        "self.audio_speaker.set_volume"
    );
    let followup = requests[1].body["messages"].as_array().unwrap();
    let tool_result = followup
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("tool message");
    assert!(
        tool_result["content"]
            .as_str()
            .unwrap()
            .contains("volume=30")
    );
}

#[test]
fn wake_words_exit_commands_and_the_working_phrase_follow_the_pipeline() {
    let stub = LlmStub::with(Behavior::Reply("Hi, how can I help?".into()));
    let server = Server::start(&config(&stub, ""));
    let mut device = talking_device(&server, json!({}));
    // A wake word starts a greeting turn.
    device.send_json(json!({"type":"listen","state":"detect","text":"你好小智"}));
    let heard = listen_turn(&mut device, Duration::from_secs(20));
    assert!(
        messages(&heard)
            .iter()
            .any(|m| m["text"] == "Hi, how can I help?")
    );
    let system = stub.requests()[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(system.contains("wake word"), "{system}");
    // The working-mode phrase switches mode, with no chat turn.
    device.send_json(json!({"type":"listen","state":"detect","text":"进入工作模式"}));
    let stt = device.recv(Duration::from_secs(5));
    assert_eq!(
        (
            stt["type"].as_str(),
            stt["intent"].as_str(),
            stt["target_mode"].as_str()
        ),
        (Some("stt"), Some("mode_switch"), Some("working"))
    );
    device.recv_until(Duration::from_secs(5), |v| {
        v["type"] == "mode" && v["status"] == "ok"
    });
    let listen = device.recv_until(Duration::from_secs(5), |v| v["type"] == "listen");
    assert_eq!(listen["mode"], "manual");
    assert_eq!(stub.requests().len(), 1, "no chat turn for the mode switch");
    // An exit command closes the connection.
    device.send_json(json!({"type":"listen","state":"detect","text":"退出"}));
    let (code, reason) = device.expect_close(Duration::from_secs(5));
    assert_eq!((code, reason.as_str()), (1000, "exit command"));
}

#[test]
fn a_spoken_question_through_the_simulator_gets_a_spoken_answer() {
    let stub = LlmStub::with(Behavior::Reply(
        "It will be sunny and warm. Take a hat.".into(),
    ));
    let whisper = common::asr_service::whisper_config();
    let server = Server::start(&config(&stub, &whisper));
    let wav = common::audio::fixtures_dir().join("question.wav");
    let run = common::simulator::stream(
        &server,
        &wav,
        &["--protocol", "3", "--mode", "auto", "--linger-ms", "8000"],
    );
    run.assert_success();
    let stdout = &run.stdout;
    let messages: Vec<Value> = run
        .messages()
        .into_iter()
        .filter(|m| m["type"] != "server" && m["type"] != "workflow")
        .collect();
    let kinds: Vec<String> = messages
        .iter()
        .map(|m| match m["type"].as_str().unwrap_or("") {
            "tts" => format!("tts {}", m["state"].as_str().unwrap_or("")),
            other => other.to_string(),
        })
        .filter(|k| k != "hello" && k != "mcp")
        .collect();
    assert_eq!(
        kinds,
        [
            "stt",
            "audio",
            "llm",
            "tts start",
            "tts sentence_start",
            "tts sentence_end",
            "tts sentence_start",
            "tts sentence_end",
            "tts stop"
        ],
        "{stdout}"
    );
    let stt = messages.iter().find(|m| m["type"] == "stt").expect("stt");
    let heard = stt["text"].as_str().unwrap().to_lowercase();
    assert!(heard.contains("weather"), "{heard}");
    // The question reached the LLM as the user's words.
    let asked = &stub.requests()[0].body["messages"];
    let last = asked.as_array().unwrap().last().unwrap();
    assert!(
        last["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("weather")
    );
    // The simulator counted the answer's audio frames.
    let report = stdout.lines().last().unwrap_or_default();
    let frames: usize = report
        .split("(and ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(frames >= 20, "{report}");
}

#[test]
fn a_long_answer_is_never_cut_off_by_the_idle_timer() {
    // 12 deltas, 3 s apart: the answer takes ~35 s, longer than the 30 s idle
    // deadline (warning at 25 s) that began when the question was asked.
    let answer = "One two three four. Five six seven eight. ".repeat(6);
    let stub = LlmStub::with(Behavior::StreamSlow(answer, Duration::from_secs(3)));
    let server = Server::start(&config(
        &stub,
        "[idle]\nidle_timeout_s = 30\nidle_buffer_s = 0\nwarning_s = 5\n",
    ));
    let mut device = talking_device(&server, json!({}));
    let asked = Instant::now();
    device.send_json(json!({"type":"listen","state":"detect","text":"count slowly for me"}));
    let mut stopped_at = None;
    while asked.elapsed() < Duration::from_secs(50) && stopped_at.is_none() {
        match device.next(Duration::from_millis(500)) {
            Received::Json(v) if v["event"] == "timeout_warning" => {
                panic!(
                    "idle warning {:?} into a turn still speaking",
                    asked.elapsed()
                )
            }
            Received::Json(v) if v["type"] == "tts" && v["state"] == "stop" => {
                stopped_at = Some(asked.elapsed());
            }
            Received::Closed(c) => panic!("closed mid-answer: {c:?}"),
            _ => {}
        }
    }
    let stopped_at = stopped_at.expect("the answer ended");
    assert!(
        stopped_at > Duration::from_secs(30),
        "answer took {stopped_at:?}"
    );
}

#[test]
fn an_idle_close_is_preceded_by_a_spoken_goodbye_that_does_not_keep_it_open() {
    let stub = LlmStub::with(Behavior::Reply("Goodbye, talk to you soon.".into()));
    let server = Server::start(&config(
        &stub,
        "[idle]\nidle_timeout_s = 30\nidle_buffer_s = 0\nwarning_s = 5\n",
    ));
    let mut device = talking_device(&server, json!({}));
    let start = Instant::now();
    let mut seen = Vec::new();
    let (code, reason) = loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no idle close: {seen:?}"
        );
        match device.next(Duration::from_secs(1)) {
            Received::Json(v) if v["type"] != "server" => seen.push(v),
            Received::Closed(Some((code, reason))) => break (code, reason),
            Received::Closed(None) => panic!("dropped without a close frame: {seen:?}"),
            _ => {}
        }
    };
    assert_eq!((code, reason.as_str()), (1000, "idle timeout"));
    let final_warning = seen
        .iter()
        .position(|m| m["event"] == "timeout_warning" && m["final"] == true)
        .unwrap_or_else(|| panic!("no final warning: {seen:?}"));
    let goodbye = seen
        .iter()
        .position(|m| m["state"] == "sentence_start" && m["text"] == "Goodbye, talk to you soon.")
        .unwrap_or_else(|| panic!("no goodbye: {seen:?}"));
    assert!(goodbye > final_warning);
    assert_eq!(seen.last().unwrap()["state"], "stop", "{seen:?}");
    // The goodbye answered end_prompt.prompt, and did not postpone the close.
    let asked = stub.requests()[0].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .clone();
    assert_eq!(asked, "用一两句温暖、不舍的话和用户道别。");
    assert!(
        start.elapsed() < Duration::from_secs(45),
        "closed after {:?}",
        start.elapsed()
    );
}

/// The audio packets after the turn's last `sentence_end` (before `tts stop`).
fn audio_after_last_sentence(heard: &[(Instant, Heard)]) -> Vec<Vec<u8>> {
    let last_end = heard
        .iter()
        .rposition(|(_, h)| matches!(h, Heard::Json(v) if v["state"] == "sentence_end"))
        .expect("a sentence_end");
    heard[last_end..]
        .iter()
        .filter_map(|(_, h)| match h {
            Heard::Audio(p) => Some(p.clone()),
            Heard::Json(_) => None,
        })
        .collect()
}

/// One short spoken turn on a server with `chat_extra` in `[chat]`.
fn turn_with_chat_config(chat_extra: &str) -> (Server, Vec<(Instant, Heard)>) {
    let (_stub, server, heard) = answered_turn(
        "Done. The meeting is booked.",
        &format!("[chat]\n{chat_extra}\n"),
        "book the meeting",
    );
    let last = messages(&heard).last().map(|m| m.to_string());
    assert!(
        last.as_deref()
            .is_some_and(|m| m.contains("\"stop\"") && m.contains("tts")),
        "the turn ends with tts stop: {last:?}"
    );
    (server, heard)
}

/// Asserts `packets` are the chime: 4–6 valid 60 ms Opus packets with sound in them.
fn assert_is_the_chime(packets: &[Vec<u8>]) {
    assert!(
        (4..=6).contains(&packets.len()),
        "{} packets after the last sentence",
        packets.len()
    );
    let mut decoder = opus::Decoder::new(16_000, opus::Channels::Mono).unwrap();
    let mut pcm = vec![0i16; 5760];
    let mut peak = 0u16;
    for packet in packets {
        let samples = decoder.decode(packet, &mut pcm, false).expect("valid Opus");
        assert_eq!(samples, 960);
        peak = peak.max(
            pcm[..samples]
                .iter()
                .map(|s| s.unsigned_abs())
                .max()
                .unwrap_or(0),
        );
    }
    assert!(peak > 5_000, "the chime is audible, peak {peak}");
}

/// `chat.enable_stop_tts_notify`: the sound plays after the last sentence and
/// before `tts stop` — from a configured MP3, from the built-in chime at the
/// default path, and not at all (with a warning naming the file) when the
/// configured file is missing. Off by default (`expected_shape`).
#[test]
fn the_stop_tts_notify_sound_plays_before_tts_stop() {
    let asset = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/tts_notify.mp3");
    let (_server, heard) = turn_with_chat_config(&format!(
        "enable_stop_tts_notify = true\nstop_tts_notify_voice = \"{asset}\""
    ));
    assert_is_the_chime(&audio_after_last_sentence(&heard));

    // The server runs in a fresh directory: nothing at the default path.
    let (server, heard) = turn_with_chat_config("enable_stop_tts_notify = true");
    assert_is_the_chime(&audio_after_last_sentence(&heard));
    assert!(server.log().contains("(built in)"), "{}", server.log());

    let (server, heard) = turn_with_chat_config(
        "enable_stop_tts_notify = true\nstop_tts_notify_voice = \"sounds/missing.mp3\"",
    );
    assert!(audio_after_last_sentence(&heard).is_empty());
    assert!(
        server.wait_log(
            "stop-TTS notify sound sounds/missing.mp3: no such file",
            common::SHORT
        ),
        "{}",
        server.log()
    );
}
