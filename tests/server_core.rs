//! Integration tests of the server core over loopback: handshake, hello in
//! every framing version, identity, auth, handover, errors and abuse.

mod common;

use std::time::{Duration, Instant};

use common::{Received, SHORT, Server};
use serde_json::json;

#[test]
fn hello_in_each_version_keeps_one_session_id() {
    let server = Server::start("");
    for version in [1u8, 2, 3] {
        let mut device = server.device(
            "/xiaozhi/v1/",
            &[
                ("Device-Id", "94:A9:90:07:9D:88"),
                ("Protocol-Version", &version.to_string()),
            ],
        );
        let first = device.hello(version);
        assert_eq!(first["version"], version);
        assert_eq!(first["transport"], "websocket");
        assert_eq!(first["audio_params"]["sample_rate"], 16000);
        assert_eq!(first["audio_params"]["channels"], 1);
        assert_eq!(first["audio_params"]["frame_duration"], 60);
        let session_id = first["session_id"]
            .as_str()
            .expect("session_id")
            .to_string();
        assert_eq!(
            uuid::Uuid::parse_str(&session_id).map(|u| u.get_version_num()),
            Ok(4)
        );
        let again = device.hello(version);
        assert_eq!(again["session_id"], session_id.as_str());
    }
}

#[test]
fn unknown_hello_version_is_unsupported_and_keeps_the_old_one() {
    let server = Server::start("");
    let mut device = server.device(
        "/xiaozhi/v1/",
        &[("Device-Id", "aa"), ("Protocol-Version", "3")],
    );
    device.send_json(json!({"type":"hello","version":9,"transport":"websocket"}));
    let reply = device.recv(SHORT);
    assert_eq!(reply["type"], "hello");
    assert_eq!(reply["code"], "UNSUPPORTED");
    // A browser-style hello without version keeps the header's version.
    device.send_json(json!({"type":"hello","device_id":"x","token":"t"}));
    assert_eq!(device.recv(SHORT)["version"], 3);
}

#[test]
fn ping_and_keepalive_get_pong_and_integers_echo() {
    let server = Server::start("");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa")]);
    device.send_json(json!({"type":"ping"}));
    assert_eq!(device.recv(SHORT), json!({"type":"pong"}));
    device.send_json(json!({"type":"keepalive"}));
    assert_eq!(device.recv(SHORT), json!({"type":"pong"}));
    device.send_text("42");
    assert_eq!(device.recv(SHORT), json!(42));
}

#[test]
fn stats_arrive_on_register_with_the_normalized_id() {
    let server = Server::start("");
    let mut device = server.device("/supie/v1/?device-id=94:A9:90:07:9D:88&client-id=c", &[]);
    let stats = device.recv_until(SHORT, |v| v["event"] == "stats");
    assert_eq!(stats["type"], "server");
    assert_eq!(stats["deviceCount"], 1);
    assert_eq!(stats["online"], json!(["94:a9:90:07:9d:88"]));
}

#[test]
fn identity_order_query_then_headers_then_client_id_then_generated() {
    let server = Server::start("");
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Headers, Option<&str>); 4] = [
        (
            "/x/?device_id=%22AA:BB%22",
            &[("Device-Id", "cc")],
            Some("aa:bb"),
        ),
        (
            "/x/",
            &[("X-Device-Id", " DD "), ("Client-Id", "ee")],
            Some("dd"),
        ),
        ("/x/", &[("Client-Id", "'EE'")], Some("ee")),
        ("/x/", &[], None),
    ];
    for (path, headers, expected) in cases {
        let mut device = server.device(path, headers);
        let stats = device.recv_until(SHORT, |v| v["event"] == "stats");
        let online: Vec<String> = serde_json::from_value(stats["online"].clone()).unwrap();
        match expected {
            Some(id) => assert!(online.contains(&id.to_string()), "{online:?} lacks {id}"),
            None => assert!(
                online
                    .iter()
                    .any(|id| id.starts_with("auto-") && id.len() == 13),
                "{online:?} has no generated id"
            ),
        }
    }
    assert!(server.wait_log("named no device; using generated id auto-", SHORT));
}

#[test]
fn static_tokens_and_allowlist() {
    let server = Server::start_with(
        "",
        "[server.auth]\nenabled = true\nallowed_devices = [\"AA:AA\"]\n[[server.auth.tokens]]\ntoken = \"s3cret\"\nname = \"badges\"\n",
    );
    // Accepted with "Bearer", a bare token, and through the allowlist.
    server.device(
        "/x/",
        &[("Device-Id", "bb"), ("Authorization", "Bearer s3cret")],
    );
    server.device("/x/", &[("Device-Id", "bb"), ("Authorization", "s3cret")]);
    server.device("/x/", &[("Device-Id", "aa:aa")]);
    // Refused: wrong token, no token.
    for headers in [
        vec![("Device-Id", "bb"), ("Authorization", "Bearer nope")],
        vec![("Device-Id", "bb")],
    ] {
        let url = server.ws_url("/x/");
        match common::Device::connect(&url, &headers) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401);
                let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["error"]["code"], "UNAUTHORIZED");
            }
            Err(other) => panic!("expected 401, got {other}"),
            Ok(_) => panic!("unauthorized device was accepted"),
        }
    }
}

#[test]
fn a_reconnect_replaces_the_old_connection_after_one_and_a_half_seconds() {
    let server = Server::start("");
    let mut old = server.device("/x/", &[("Device-Id", "94:a9:90:07:9d:88")]);
    old.hello(1);
    let mut new = server.device("/x/", &[("Device-Id", "94:A9:90:07:9D:88")]);
    let started = Instant::now();
    let replaced = old.recv_until(SHORT, |v| v["type"] == "system");
    assert_eq!(replaced["event"], "replaced");
    // The new connection works at once.
    new.send_json(json!({"type":"ping"}));
    assert_eq!(new.recv(SHORT), json!({"type":"pong"}));
    let (code, reason) = old.expect_close(SHORT);
    let elapsed = started.elapsed();
    assert_eq!((code, reason.as_str()), (1000, "replaced"));
    assert!(
        elapsed >= Duration::from_millis(1200) && elapsed <= Duration::from_millis(1800),
        "closed after {elapsed:?}"
    );
    // The old connection's close did not unregister the new one.
    std::thread::sleep(Duration::from_millis(200));
    let health = server.http("GET", "/healthz", &[], "").json();
    assert_eq!(health["data"]["connections"], 1);
    new.send_json(json!({"type":"ping"}));
    assert_eq!(new.recv(SHORT), json!({"type":"pong"}));
}

#[test]
fn bad_messages_get_named_errors_and_the_connection_stays_usable() {
    let server = Server::start("");
    let mut device = server.device("/x/", &[("Device-Id", "aa"), ("Protocol-Version", "3")]);
    let cases = [
        (
            "{not json".to_string(),
            "error",
            "INVALID_JSON",
            "invalid JSON",
        ),
        (
            r#"{"type":"listen","state":7}"#.to_string(),
            "listen",
            "SCHEMA_INVALID",
            "state",
        ),
        (
            r#"{"type":"mode","state":"start","mode":"party"}"#.to_string(),
            "mode",
            "SCHEMA_INVALID",
            "mode",
        ),
        (
            r#"{"type":"teleport"}"#.to_string(),
            "teleport",
            "UNSUPPORTED",
            "teleport",
        ),
        (
            format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70 * 1024)),
            "error",
            "TOO_LARGE",
            "65536",
        ),
    ];
    for (text, reply_type, code, named) in cases {
        device.send_text(&text);
        let reply = device.recv(SHORT);
        assert_eq!(reply["type"], reply_type, "{reply}");
        assert_eq!(reply["status"], "error");
        assert_eq!(reply["code"], code, "{reply}");
        assert!(
            reply["message"].as_str().unwrap().contains(named),
            "{reply}"
        );
    }
    // Binary: oversized and inconsistent frames get one `audio` error per 10 s.
    device.send_binary(vec![0u8; 5000]);
    let reply = device.recv(SHORT);
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_str()),
        (Some("audio"), Some("TOO_LARGE"))
    );
    device.send_binary(vec![0, 0, 0, 9, 1, 2]);
    device.send_json(json!({"type":"ping"}));
    assert_eq!(
        device.recv(SHORT),
        json!({"type":"pong"}),
        "second binary error must be silent"
    );
    device.send_binary(Vec::new());
    device.send_json(json!({"type":"ping"}));
    assert_eq!(device.recv(SHORT), json!({"type":"pong"}));
}

#[test]
fn a_json_binary_frame_is_handled_like_text() {
    let server = Server::start("");
    let mut device = server.device("/x/", &[("Device-Id", "aa"), ("Protocol-Version", "3")]);
    let payload = br#"{"type":"ping"}"#;
    let mut frame = vec![1u8, 0, 0, payload.len() as u8];
    frame.extend_from_slice(payload);
    device.send_binary(frame);
    assert_eq!(device.recv(SHORT), json!({"type":"pong"}));
}

#[test]
fn more_than_twenty_errors_in_ten_seconds_closes_with_1008() {
    let server = Server::start("");
    let mut device = server.device("/x/", &[("Device-Id", "aa")]);
    for _ in 0..21 {
        device.send_text("{bad");
    }
    let (code, reason) = device.expect_close(SHORT);
    assert_eq!((code, reason.as_str()), (1008, "policy violation"));
}

#[test]
fn twenty_errors_are_tolerated() {
    let server = Server::start("");
    let mut device = server.device("/x/", &[("Device-Id", "aa")]);
    for _ in 0..20 {
        device.send_text("{bad");
    }
    device.send_json(json!({"type":"ping"}));
    let pong = device.recv_until(SHORT, |v| v["type"] == "pong");
    assert_eq!(pong, json!({"type":"pong"}));
}

#[test]
fn a_slowloris_client_is_cut_off_after_the_handshake_deadline() {
    use std::io::Write;
    let server = Server::start("");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .write_all(b"GET /xiaozhi/v1/ HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(9)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = common::read_some(&mut stream, &mut buf).unwrap_or(0);
    let elapsed = started.elapsed();
    assert_eq!(n, 0, "expected the server to close the socket");
    assert!(
        elapsed >= Duration::from_millis(4500) && elapsed < Duration::from_millis(7000),
        "closed after {elapsed:?}"
    );
}

#[test]
fn mode_messages_are_acknowledged() {
    let server = Server::start("");
    let mut device = server.device("/x/", &[("Device-Id", "aa")]);
    // (meeting starts have their own tests: tone messages and a sessionId come with the ack)
    device.send_json(json!({"type":"mode","state":"start","mode":"coding"}));
    assert_eq!(
        device.recv(SHORT),
        json!({"type":"mode","status":"ok","state":"start","mode":"coding"})
    );
    device.send_json(json!({"type":"mode","state":"end","mode":"coding"}));
    assert_eq!(
        device.recv(SHORT),
        json!({"type":"mode","status":"ok","state":"end","mode":"coding"})
    );
}

#[test]
fn websocket_pings_are_sent() {
    let server = Server::start_with("ws_ping_interval_s = 5", "");
    let mut device = server.device("/x/", &[("Device-Id", "aa")]);
    // tungstenite surfaces pings from read(); `next` skips them, so watch the raw read.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut saw_ping = false;
    while Instant::now() < deadline && !saw_ping {
        device
            .ws
            .get_mut()
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        if let Ok(tungstenite::Message::Ping(_)) = device.ws.read() {
            saw_ping = true;
        }
    }
    assert!(saw_ping, "no WebSocket ping within 8 s at a 5 s interval");
    assert!(!matches!(
        device.next(Duration::from_millis(100)),
        Received::Closed(_)
    ));
}
