//! Plain HTTP on the device port: OTA configuration, CORS, health, metrics
//! and the error envelope (PROTOCOL.md §5).

mod common;

use common::{SHORT, Server};
use serde_json::json;

#[test]
fn ota_hands_the_device_its_websocket_url_and_token() {
    let server = Server::start_with(
        "advertise_ip = \"10.1.2.3\"\nota_token = \"tok-1\"\ntimezone_offset_min = 60",
        "",
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let reply = server.http(
        "POST",
        "/xiaozhi/ota/",
        &[
            ("Device-Id", "94:A9:90:07:9D:88"),
            ("Content-Type", "application/json"),
        ],
        r#"{"application":{"version":"1.6.2"},"board":{"type":"badge"}}"#,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
    let v = reply.json();
    assert_eq!(
        v["websocket"],
        json!({"url": format!("ws://10.1.2.3:{}/xiaozhi/v1/", server.port), "token": "tok-1"})
    );
    assert_eq!(v["firmware"], json!({"version": "1.6.2", "url": ""}));
    assert_eq!(v["server_time"]["timezone_offset"], 60);
    let ts = v["server_time"]["timestamp"].as_u64().unwrap();
    assert!(
        ts >= before && ts < before + 10_000,
        "timestamp {ts} vs {before}"
    );

    // The fork's alias, no body: version falls back to 0.0.0.
    let v = server.http("POST", "/supie/ota/", &[], "").json();
    assert_eq!(v["firmware"]["version"], "0.0.0");
    assert_eq!(v["websocket"]["token"], "tok-1");
    // GET answers that the endpoint is up.
    let get = server.http("GET", "/xiaozhi/ota/", &[], "");
    assert_eq!(get.status, 200);
    assert!(get.body.contains("OTA"));
}

#[test]
fn server_websocket_setting_overrides_the_device_url() {
    let server = Server::start_with("websocket = \"wss://badges.example/xiaozhi/v1/\"", "");
    let v = server.http("POST", "/xiaozhi/ota/", &[], "{}").json();
    assert_eq!(v["websocket"]["url"], "wss://badges.example/xiaozhi/v1/");
    assert_eq!(v["websocket"]["token"], "");
}

#[test]
fn cors_preflight_on_any_path() {
    let server = Server::start("");
    for path in ["/xiaozhi/ota/", "/meetings/recent", "/whatever"] {
        let reply = server.http(
            "OPTIONS",
            path,
            &[
                ("Origin", "http://a"),
                ("Access-Control-Request-Method", "POST"),
            ],
            "",
        );
        assert_eq!(reply.status, 204, "{path}");
        assert_eq!(reply.header("Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(
            reply.header("Access-Control-Allow-Methods"),
            Some("GET, POST, OPTIONS")
        );
        assert_eq!(
            reply.header("Access-Control-Allow-Headers"),
            Some("Authorization, Content-Type, X-API-Token")
        );
    }
}

#[test]
fn root_health_and_not_found() {
    let server = Server::start("");
    let root = server.http("GET", "/", &[], "");
    assert_eq!(
        (root.status, root.body.as_str()),
        (200, "Server is running")
    );
    let _device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa")]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let health = server.http("GET", "/healthz", &[], "").json();
    assert_eq!(health["success"], true);
    assert_eq!(health["data"]["status"], "ok");
    assert_eq!(health["data"]["connections"], 1);
    assert!(health["data"]["uptimeMs"].as_u64().is_some());
    let missing = server.http("GET", "/nope", &[], "");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "NOT_FOUND");
    assert_eq!(missing.json()["success"], false);
    let wrong_method = server.http("DELETE", "/healthz", &[], "");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.json()["error"]["code"], "METHOD_NOT_ALLOWED");
}

#[test]
fn metrics_count_connections_frames_and_errors() {
    let server = Server::start("");
    let mut device = server.device("/xiaozhi/v1/", &[("Device-Id", "aa")]);
    device.send_json(json!({"type":"ping"}));
    device.recv(SHORT);
    device.send_text("{broken");
    device.recv(SHORT);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let metrics = server.http("GET", "/metrics", &[], "");
    assert_eq!(metrics.status, 200);
    let text = metrics.body;
    for line in [
        "huddle_connections 1\n",
        "huddle_connections_total 1\n",
        "huddle_ws_frames_total{direction=\"in\",kind=\"text\"} 2\n",
        "huddle_ws_errors_total{code=\"INVALID_JSON\"} 1\n",
        "huddle_log_records_dropped_total 0\n",
        "huddle_idle_closes_total 0\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(text.contains("huddle_timer_wheel_lag_seconds "));
    assert!(
        text.contains("huddle_http_requests_total{status=\"101\"} 1\n"),
        "{text}"
    );
}

#[test]
fn malformed_requests_get_400() {
    let server = Server::start("");
    let reply = server.http(
        "POST",
        "/xiaozhi/ota/",
        &[("Content-Length", "999999999")],
        "",
    );
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
}

#[test]
fn the_api_only_port_refuses_upgrades() {
    let api_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server::start_with(&format!("http_port = {api_port}"), "");
    let reply = common::http_request(api_port, "GET", "/healthz", &[], "");
    assert_eq!(reply.status, 200);
    let url = format!("ws://127.0.0.1:{api_port}/xiaozhi/v1/");
    match common::Device::connect(&url, &[("Device-Id", "aa")]) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        Err(other) => panic!("expected 400, got {other}"),
        Ok(_) => panic!("upgrade accepted on the API port"),
    }
    drop(server);
}
