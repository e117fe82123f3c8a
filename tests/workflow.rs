//! Workflow tasks over the wire (PROTOCOL.md §3.4): writes reach only the
//! groups they touch, the sender always gets its own snapshot, nobody sees
//! another group's tasks; working-mode start sends the board then listen start.

mod common;

use std::time::{Duration, Instant};

use common::{Device, Received, Server};
use serde_json::{Value, json};

/// Every message that arrives within `window`.
fn drain(device: &mut Device, window: Duration) -> Vec<Value> {
    let deadline = Instant::now() + window;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Received::Json(v) = device.next(deadline.saturating_duration_since(Instant::now()))
            && v["type"] != "server"
        {
            seen.push(v);
        }
    }
    seen
}

fn snapshots(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        // Acks of an `update` carry `status`; snapshots do not.
        .filter(|m| m["type"] == "workflow" && m["event"] == "update" && m.get("status").is_none())
        .collect()
}

#[test]
fn a_cross_group_update_reaches_only_the_groups_it_touched() {
    let server = Server::start("");
    let mut a = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    let mut a2 = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:99")]);
    let mut b = server.device("/xiaozhi/v1/", &[("Device-Id", "11:22:33:44:55:66")]);
    let mut c = server.device("/xiaozhi/v1/", &[("Device-Id", "aa:bb:cc:dd:ee:ff")]);
    std::thread::sleep(Duration::from_millis(300));
    for d in [&mut a, &mut a2, &mut b, &mut c] {
        drain(d, Duration::from_millis(100));
    }
    // A writes one task into its own group and one into B's group.
    a.send_json(json!({"type":"workflow","event":"update","tasks":[
        {"id":"T-1","title":"扫码登录联调","priority":1,"custom":{"keep":true}},
        {"id":"T-9","title":"跨组任务","groupKey":"11:22:33:44"}
    ]}));
    let window = Duration::from_millis(800);
    let (from_a, from_a2, from_b, from_c) = (
        drain(&mut a, window),
        drain(&mut a2, window),
        drain(&mut b, window),
        drain(&mut c, window),
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
    drain(&mut a, window);
    a.send_json(json!({"type":"workflow","event":"assign","id":"T-1","owner":"me"}));
    let again = drain(&mut a, window);
    assert_eq!(
        again,
        vec![json!({"type":"workflow","status":"ok","event":"assign","idempotent":true})]
    );
    a.send_json(json!({"type":"workflow","event":"complete","ids":["T-1","T-404"]}));
    let done = drain(&mut a, window);
    assert_eq!(
        done[0],
        json!({"type":"workflow","status":"ok","event":"complete","missing":["T-404"]})
    );
    assert_eq!(snapshots(&done)[0]["tasks"][0]["status"], "done");
    // Validation names the task index and field.
    a.send_json(json!({"type":"workflow","event":"update","tasks":[{"id":"T-2","priority":7}]}));
    let bad = drain(&mut a, window);
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
fn working_mode_start_sends_the_board_then_listen_start() {
    let server = Server::start("");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    device
        .send_json(json!({"type":"workflow","event":"update","tasks":[{"id":"T-1","title":"a"}]}));
    drain(&mut device, Duration::from_millis(500));
    device.send_json(json!({"type":"mode","state":"start","mode":"working"}));
    let messages = drain(&mut device, Duration::from_millis(500));
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
    assert_eq!(
        messages[2],
        json!({"type":"listen","state":"start","mode":"manual"})
    );
}

#[test]
fn a_detect_voice_command_completes_the_second_open_task_of_the_group() {
    let server = Server::start("");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    device.send_json(json!({"type":"workflow","event":"update","tasks":[
        {"id":"T-1","title":"扫码登录联调","priority":1},
        {"id":"T-2","title":"更新接口文档","priority":2},
        {"id":"T-3","title":"低优先级","priority":3}
    ]}));
    drain(&mut device, Duration::from_millis(500));
    device.send_json(json!({"type":"mode","state":"start","mode":"working"}));
    drain(&mut device, Duration::from_millis(500));
    device.send_json(json!({"type":"listen","state":"detect","text":"完成任务第二个"}));
    let messages = drain(&mut device, Duration::from_millis(800));
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
    drain(&mut device, Duration::from_millis(300));
    device.send_json(json!({"type":"listen","state":"detect","text":"完成任务第一个"}));
    let messages = drain(&mut device, Duration::from_millis(500));
    assert!(
        !messages.iter().any(|m| m["event"] == "command"),
        "{messages:?}"
    );
}
