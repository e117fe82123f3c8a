//! Workflow tasks over the wire (PROTOCOL.md §3.4): writes reach only the
//! groups they touch, the sender always gets its own snapshot, nobody sees
//! another group's tasks; working-mode start sends the board then listen start.

mod common;

use std::time::{Duration, Instant};

use common::llm_stub::{Behavior, LlmStub};
use common::{Device, Server, snapshots};
use serde_json::{Value, json};

#[test]
fn a_cross_group_update_reaches_only_the_groups_it_touched() {
    let server = Server::start("");
    let online = |id: &str| server.registered_device("/xiaozhi/v1/", &[("Device-Id", id)]);
    let mut a = online("94:a9:90:07:9d:88");
    let mut a2 = online("94:a9:90:07:9d:99");
    let mut b = online("11:22:33:44:55:66");
    let mut c = online("aa:bb:cc:dd:ee:ff");
    // Their registration stats broadcasts.
    for d in [&mut a, &mut a2, &mut b, &mut c] {
        d.drain(Duration::from_millis(100));
    }
    // A writes one task into its own group and one into B's group.
    a.send_json(json!({"type":"workflow","event":"update","tasks":[
        {"id":"T-1","title":"扫码登录联调","priority":1,"custom":{"keep":true}},
        {"id":"T-9","title":"跨组任务","groupKey":"11:22:33:44"}
    ]}));
    let window = Duration::from_millis(800);
    let (from_a, from_a2, from_b, from_c) = (
        a.drain(window),
        a2.drain(window),
        b.drain(window),
        c.drain(window),
    );
    assert_eq!(
        from_a[0],
        json!({"type":"workflow","status":"ok","event":"update"})
    );
    let own = snapshots(&from_a);
    assert_eq!(own.len(), 1, "{from_a:?}");
    assert_eq!(own[0]["groupKey"], "94:a9:90");
    assert_eq!(
        own[0]["tasks"],
        json!([{"id":"T-1","title":"扫码登录联调","priority":1,"custom":{"keep":true},"status":"open","groupKey":"94:a9:90"}])
    );
    assert_eq!(snapshots(&from_a2).len(), 1, "same group, other device");
    let theirs = snapshots(&from_b);
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["groupKey"], "11:22:33");
    assert_eq!(theirs[0]["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(theirs[0]["tasks"][0]["id"], "T-9");
    assert!(from_c.is_empty(), "untouched group got {from_c:?}");
    // No message leaks another group's task.
    for (messages, forbidden) in [(&from_a, "T-9"), (&from_a2, "T-9"), (&from_b, "T-1")] {
        for m in messages {
            assert!(!m.to_string().contains(forbidden), "{m}");
        }
    }
    // An idempotent assign is acked but not broadcast; missing ids are named.
    a.send_json(json!({"type":"workflow","event":"assign","id":"T-1","owner":"me"}));
    a.drain(window);
    a.send_json(json!({"type":"workflow","event":"assign","id":"T-1","owner":"me"}));
    let again = a.drain(window);
    assert_eq!(
        again,
        vec![json!({"type":"workflow","status":"ok","event":"assign","idempotent":true})]
    );
    a.send_json(json!({"type":"workflow","event":"complete","ids":["T-1","T-404"]}));
    let done = a.drain(window);
    assert_eq!(
        done[0],
        json!({"type":"workflow","status":"ok","event":"complete","missing":["T-404"]})
    );
    assert_eq!(snapshots(&done)[0]["tasks"][0]["status"], "done");
    // Validation names the task index and field.
    a.send_json(json!({"type":"workflow","event":"update","tasks":[{"id":"T-2","priority":7}]}));
    let bad = a.drain(window);
    assert_eq!(bad[0]["code"], "SCHEMA_INVALID");
    assert!(
        bad[0]["message"]
            .as_str()
            .unwrap()
            .contains("tasks[0].priority"),
        "{bad:?}"
    );
    // The file on disk holds the tasks.
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(server.dir.join("data/tasks.json")).unwrap())
            .unwrap();
    assert_eq!(file["tasks"].as_array().unwrap().len(), 2);
}

#[test]
fn working_mode_start_sends_the_board_then_listen_start_and_a_repeat_only_listen_start() {
    let server = Server::start("");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    device
        .send_json(json!({"type":"workflow","event":"update","tasks":[{"id":"T-1","title":"a"}]}));
    device.drain(Duration::from_millis(500));
    // The update's snapshot is less than 1.5 s old until this passes.
    std::thread::sleep(Duration::from_millis(1_200));
    device.send_json(json!({"type":"mode","state":"start","mode":"working"}));
    let messages = device.drain(Duration::from_millis(500));
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(
        (
            messages[0]["event"].as_str(),
            messages[0]["tasks"][0]["id"].as_str()
        ),
        (Some("update"), Some("T-1"))
    );
    assert_eq!(
        messages[1],
        json!({"type":"mode","status":"ok","state":"start","mode":"working"})
    );
    let listen_start = json!({"type":"listen","state":"start","mode":"manual"});
    assert_eq!(messages[2], listen_start);
    // A repeated start within 1.5 s: the board is debounced, listen start is not.
    device.send_json(json!({"type":"mode","state":"start","mode":"working"}));
    let again = device.drain(Duration::from_millis(500));
    assert_eq!(
        again,
        vec![
            json!({"type":"mode","status":"ok","state":"start","mode":"working"}),
            listen_start
        ]
    );
}

#[test]
fn registration_and_hello_snapshots_are_merged_by_the_debounce() {
    let server = Server::start("");
    let mut other = server.device("/xiaozhi/v1/", &[("Device-Id", "11:22:33:44:55:66")]);
    other.send_json(
        json!({"type":"workflow","event":"update","tasks":[{"id":"X-1","title":"theirs"}]}),
    );
    other.drain(Duration::from_millis(300));
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let hello = json!({"type":"hello","version":3,"transport":"websocket"});
    device.send_json(hello.clone());
    let mut messages = device.drain(Duration::from_millis(600));
    // One snapshot for registration + hello, first, of our own (empty) group.
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        messages[0],
        json!({"type":"workflow","event":"update","groupKey":"94:a9:90","tasks":[]})
    );
    assert_eq!(messages[1]["type"], "hello");
    std::thread::sleep(Duration::from_millis(1_000));
    device.send_json(hello);
    messages = device.drain(Duration::from_millis(500));
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["type"], "hello");
    assert_eq!(messages[1]["groupKey"], "94:a9:90");
}

#[test]
fn test_mode_delays_the_registration_snapshot() {
    let server =
        Server::start("[workflow]\ntest_mode = true\nsnapshot_on_register_delay_ms = 1200\n");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let early = device.drain(Duration::from_millis(700));
    assert!(snapshots(&early).is_empty(), "{early:?}");
    let late = device.drain(Duration::from_millis(1_500));
    assert_eq!(snapshots(&late).len(), 1, "{late:?}");
}

#[test]
fn a_detect_voice_command_completes_the_second_open_task_of_the_group() {
    let server = Server::start("");
    let mut device = working_device(&server);
    device.send_json(json!({"type":"listen","state":"detect","text":"完成任务第二个"}));
    let messages = device.drain(Duration::from_millis(800));
    assert_eq!(messages[0]["type"], "stt", "{messages:?}");
    assert_eq!(messages[0]["text"], "完成任务第二个");
    let command = messages
        .iter()
        .find(|m| m["event"] == "command")
        .expect("command event");
    assert_eq!(command["intent"], "complete");
    let board = snapshots(&messages);
    assert_eq!(board.len(), 1, "{messages:?}");
    let status = |id: &str| {
        board[0]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(
        (status("T-1"), status("T-2"), status("T-3")),
        (json!("open"), json!("done"), json!("open"))
    );
    assert!(
        !messages.iter().any(|m| m["status"] == "ok"),
        "voice commands get no ack: {messages:?}"
    );
    // Outside working mode the same words are not a task command.
    device.send_json(json!({"type":"mode","state":"end","mode":"working"}));
    device.drain(Duration::from_millis(300));
    device.send_json(json!({"type":"listen","state":"detect","text":"完成任务第一个"}));
    let messages = device.drain(Duration::from_millis(500));
    assert!(
        !messages.iter().any(|m| m["event"] == "command"),
        "{messages:?}"
    );
}

/// A device in working mode on a board of three open tasks, drained.
fn working_device(server: &Server) -> Device {
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    device.send_json(json!({"type":"workflow","event":"update","tasks":[
        {"id":"T-1","title":"扫码登录联调","priority":1},
        {"id":"T-2","title":"更新接口文档","priority":2},
        {"id":"T-3","title":"低优先级","priority":3}
    ]}));
    device.drain(Duration::from_millis(500));
    device.send_json(json!({"type":"mode","state":"start","mode":"working"}));
    device.drain(Duration::from_millis(500));
    device
}

/// Messages until `tts stop` (inclusive), or everything within `timeout`.
fn until_tts_stop(device: &mut Device, timeout: Duration) -> Vec<Value> {
    device.collect_until(timeout, |seen| {
        seen.last()
            .is_some_and(|v| v["type"] == "tts" && v["state"] == "stop")
    })
}

/// The text of the turn's `sentence_start`, if any.
fn spoken(messages: &[Value]) -> Option<String> {
    messages
        .iter()
        .find(|m| m["type"] == "tts" && m["state"] == "sentence_start")
        .and_then(|m| m["text"].as_str().map(str::to_string))
}

#[test]
fn an_utterance_no_command_matches_gets_a_reply_even_without_any_llm() {
    let server = Server::start("");
    let mut device = working_device(&server);
    device.send_json(json!({"type":"listen","state":"detect","text":"what's the weather like"}));
    let messages = until_tts_stop(&mut device, Duration::from_secs(5));
    assert_eq!(messages[0]["type"], "stt", "{messages:?}");
    let states: Vec<&str> = messages
        .iter()
        .filter(|m| m["type"] == "tts")
        .filter_map(|m| m["state"].as_str())
        .collect();
    assert_eq!(states, ["start", "sentence_start", "sentence_end", "stop"]);
    let reply = spoken(&messages).expect("a spoken reply");
    assert!(reply.contains("task command"), "{reply}");
    // working.disable_tts (default): no emotion, no command.
    assert!(
        !messages
            .iter()
            .any(|m| m["type"] == "llm" || m["event"] == "command")
    );
    // Chinese speech gets the Chinese hint.
    device.send_json(json!({"type":"listen","state":"detect","text":"今天天气怎么样"}));
    let messages = until_tts_stop(&mut device, Duration::from_secs(5));
    assert!(
        spoken(&messages).expect("reply").contains("刷新任务"),
        "{messages:?}"
    );
}

#[test]
fn the_intent_llm_turns_free_speech_into_a_task_command() {
    let intent = LlmStub::with(Behavior::Reply(
        "```json\n{\"intent\":\"complete\",\"task\":2}\n```".into(),
    ));
    let server = Server::start(&format!(
        "[llm_by_mode]\nintent = \"router\"\n{}",
        intent.toml_table("router", "intent-model")
    ));
    let mut device = working_device(&server);
    device
        .send_json(json!({"type":"listen","state":"detect","text":"the docs one is finished now"}));
    let messages = device.drain(Duration::from_secs(2));
    let command = messages
        .iter()
        .find(|m| m["event"] == "command")
        .unwrap_or_else(|| panic!("no command in {messages:?}"));
    assert_eq!(command["intent"], "complete");
    let board = snapshots(&messages);
    assert_eq!(board.len(), 1, "{messages:?}");
    let done: Vec<&str> = board[0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "done")
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(done, ["T-2"]);
    // The LLM saw the open tasks numbered as a spoken index counts them.
    let requests = intent.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body["model"], "intent-model");
    let prompt = requests[0].body["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.contains("1. 扫码登录联调\n2. 更新接口文档\n3. 低优先级"),
        "{prompt}"
    );
    assert!(prompt.contains("the docs one is finished now"));
}

#[test]
fn chat_answers_what_is_not_a_task_and_a_failing_llm_falls_back() {
    let intent = LlmStub::with(Behavior::Reply(r#"{"intent":"chat","task":null}"#.into()));
    let chat = LlmStub::with(Behavior::Reply("It is sunny in the office today.".into()));
    let server = Server::start(&format!(
        "[selected_module]\nllm = \"talker\"\n[llm_by_mode]\nintent = \"router\"\n{}{}",
        intent.toml_table("router", "intent-model"),
        chat.toml_table("talker", "chat-model")
    ));
    let mut device = working_device(&server);
    device.send_json(json!({"type":"listen","state":"detect","text":"how is the weather"}));
    let messages = until_tts_stop(&mut device, Duration::from_secs(5));
    assert_eq!(
        spoken(&messages).as_deref(),
        Some("It is sunny in the office today."),
        "{messages:?}"
    );
    assert!(!messages.iter().any(|m| m["event"] == "command"));
    // The next turn carries the first exchange as history.
    chat.reply("Yes, bring a jacket.");
    device.send_json(json!({"type":"listen","state":"detect","text":"should I bring a jacket"}));
    let messages = until_tts_stop(&mut device, Duration::from_secs(5));
    assert_eq!(spoken(&messages).as_deref(), Some("Yes, bring a jacket."));
    let second = &chat.requests()[1].body["messages"];
    let contents: Vec<&str> = second
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(
        &contents[1..],
        [
            "how is the weather",
            "It is sunny in the office today.",
            "should I bring a jacket"
        ]
    );
    // Both LLMs failing still ends in a reply and `tts stop`.
    intent.fail(500);
    chat.fail(503);
    device.send_json(json!({"type":"listen","state":"detect","text":"tell me a joke"}));
    let messages = until_tts_stop(&mut device, Duration::from_secs(5));
    assert!(
        spoken(&messages)
            .expect("fallback")
            .contains("task command"),
        "{messages:?}"
    );
    assert_eq!(messages.last().unwrap()["state"], "stop");
}

#[test]
fn spoken_mark_task_two_done_completes_it_through_the_real_asr_engine() {
    use common::audio::{Fixture, frames};
    use huddle::protocol::framing::FramingVersion;
    let whisper = common::asr_service::whisper_config();
    let server = Server::start(&whisper);
    let mut device = server.device(
        "/xiaozhi/v1/",
        &[
            ("Device-Id", "94:a9:90:07:9d:88"),
            ("Protocol-Version", "3"),
        ],
    );
    device.send_json(json!({"type":"workflow","event":"update","tasks":[
        {"id":"T-1","title":"login","priority":1},
        {"id":"T-2","title":"docs","priority":2},
        {"id":"T-3","title":"cleanup","priority":3}
    ]}));
    device.drain(Duration::from_millis(400));
    device.send_json(json!({"type":"mode","state":"start","mode":"working"}));
    device.drain(Duration::from_millis(400));
    // Push-to-talk, as the badge does after working-mode start, at real-time pace.
    device.send_json(json!({"type":"listen","state":"start","mode":"manual"}));
    let packets = frames(
        FramingVersion::V3,
        &Fixture::load("mark_task_two_done").packets(),
    );
    let start = Instant::now();
    for (i, frame) in packets.iter().enumerate() {
        if let Some(wait) =
            (start + Duration::from_millis(60 * i as u64)).checked_duration_since(Instant::now())
        {
            std::thread::sleep(wait);
        }
        device.send_binary(frame.clone());
    }
    device.send_json(json!({"type":"listen","state":"stop"}));
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && snapshots(&messages).is_empty() {
        messages.extend(device.drain(Duration::from_millis(200)));
    }
    let stt = messages
        .iter()
        .find(|m| m["type"] == "stt")
        .unwrap_or_else(|| panic!("no stt in {messages:?}"));
    let heard = stt["text"].as_str().unwrap().to_lowercase();
    assert!(heard.contains("task") && heard.contains("done"), "{heard}");
    let command = messages.iter().find(|m| m["event"] == "command");
    assert_eq!(
        command.map(|c| c["intent"].clone()),
        Some(json!("complete")),
        "{messages:?}"
    );
    let board = snapshots(&messages);
    let status: Vec<(&str, &str)> = board[0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [("T-1", "open"), ("T-2", "done"), ("T-3", "open")],
        "heard {heard:?}"
    );
}

#[test]
fn kill_dash_nine_during_heavy_updates_leaves_a_valid_tasks_file() {
    let mut server = Server::start("");
    let writers: Vec<_> = ["94:a9:90:00:00:01", "11:22:33:00:00:02", "aa:bb:cc:00:00:03"]
        .into_iter()
        .enumerate()
        .map(|(writer, id)| {
            let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", id)]);
            std::thread::spawn(move || {
                // Keep writing until the server dies under us.
                for n in 0..5_000u32 {
                    let update = json!({"type":"workflow","event":"update","tasks":[
                        {"id": format!("T-{writer}-{}", n % 20), "title": format!("task {n} {}", "x".repeat(200)),
                         "priority": n % 4, "note": {"n": n}}
                    ]});
                    if device.ws.send(tungstenite::Message::text(update.to_string())).is_err() {
                        return n;
                    }
                    let _ = device.next(Duration::from_millis(1));
                }
                5_000
            })
        })
        .collect();
    // Let the store rewrite its file many times, then kill mid-stream.
    let path = server.dir.join("data/tasks.json");
    assert!(common::wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["tasks"].as_array().map(Vec::len))
            .is_some_and(|n| n >= 60)
    }));
    std::thread::sleep(Duration::from_millis(300));
    server.signal("KILL");
    let sent: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(sent > 120, "only {sent} updates sent before the kill");
    let text = std::fs::read_to_string(&path).expect("tasks.json survives");
    let file: Value = serde_json::from_str(&text).expect("tasks.json is whole JSON");
    let tasks = file["tasks"].as_array().expect("tasks array");
    assert_eq!(tasks.len(), 60, "every task id written before the kill");
    for task in tasks {
        assert!(task["id"].as_str().is_some_and(|id| id.starts_with("T-")));
        assert!(
            task["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("task "))
        );
        assert!(
            task["note"]["n"].is_u64(),
            "unknown fields kept whole: {task}"
        );
    }
    // The restarted server serves exactly what the file holds.
    server.restart();
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:00:00:01")]);
    let board = snapshots(&device.drain(Duration::from_millis(600)))
        .first()
        .map(|s| (*s).clone())
        .expect("registration snapshot");
    let on_disk: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["groupKey"] == "94:a9:90")
        .collect();
    assert_eq!(board["tasks"].as_array().unwrap().len(), on_disk.len());
}

#[test]
fn concurrent_updates_from_two_connections_lose_no_field() {
    let server = Server::start("");
    let spawn_writer = |device_id: &'static str, field: &'static str| {
        let mut device = server.registered_device("/xiaozhi/v1/", &[("Device-Id", device_id)]);
        std::thread::spawn(move || {
            // Like a badge, each writer waits for its ack before the next
            // write; the two connections' writes interleave on the server.
            let mut acks = 0;
            for round in 0..5 {
                for n in 0..20 {
                    let mut task = json!({"id": format!("C-{n}"), "groupKey": "94:a9:90"});
                    task[field] = json!(format!("{field} {round}"));
                    device.send_json(json!({"type":"workflow","event":"update","tasks":[task]}));
                    let ack = device.recv_until(Duration::from_secs(10), |v| {
                        v["type"] == "workflow" && v.get("status").is_some()
                    });
                    assert_eq!(ack["status"], "ok", "{ack}");
                    acks += 1;
                }
            }
            acks
        })
    };
    let a = spawn_writer("94:a9:90:07:9d:88", "title");
    let b = spawn_writer("94:a9:90:07:9d:99", "owner");
    assert_eq!((a.join().unwrap(), b.join().unwrap()), (100, 100));
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(server.dir.join("data/tasks.json")).unwrap())
            .unwrap();
    let tasks = file["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 20);
    for task in tasks {
        assert_eq!(task["title"], "title 4", "{task}");
        assert_eq!(task["owner"], "owner 4", "{task}");
        assert_eq!(task["status"], "open");
    }
}
