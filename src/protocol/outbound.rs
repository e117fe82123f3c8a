//! Server-to-device JSON messages (PROTOCOL.md §1.5, §1.6, §3.2, §3.7, §3.8).
//! Each builder returns the serialized text frame.

use serde_json::{Value, json};

use super::error::ErrorCode;
use super::framing::FramingVersion;
use super::inbound::{ModeName, ModeState};

/// The reply to every device hello; `audio_params` is fixed whatever the device announced.
pub fn hello_reply(version: FramingVersion, session_id: &str) -> String {
    json!({
        "type": "hello",
        "version": version.number(),
        "transport": "websocket",
        "session_id": session_id,
        "audio_params": {"format": "opus", "sample_rate": 16000, "channels": 1, "frame_duration": 60},
    })
    .to_string()
}

pub fn pong() -> String {
    r#"{"type":"pong"}"#.to_string()
}

/// Sent to the old connection when the same device connects again (§1.5).
pub fn replaced() -> String {
    json!({
        "type": "system",
        "event": "replaced",
        "message": "another connection for this device took over; closing in 1.5 s",
    })
    .to_string()
}

/// Idle warnings (§3.8); the final one opens the last-chance wait.
pub fn timeout_warning(seconds_left: u64, is_final: bool) -> String {
    let mut message =
        json!({"type": "system", "event": "timeout_warning", "secondsLeft": seconds_left});
    if is_final {
        message["final"] = Value::Bool(true);
    }
    message.to_string()
}

pub fn mode_ack(state: ModeState, mode: ModeName) -> String {
    json!({"type": "mode", "status": "ok", "state": state.as_str(), "mode": mode.as_str()})
        .to_string()
}

pub fn server_success(action: &str, message: &str) -> String {
    json!({"type": "server", "status": "success", "message": message, "content": {"action": action}})
        .to_string()
}

pub fn server_error(action: &str, code: ErrorCode, message: &str) -> String {
    json!({
        "type": "server",
        "status": "error",
        "code": code.as_str(),
        "message": message,
        "content": {"action": action},
    })
    .to_string()
}

pub fn config_update_noop() -> String {
    r#"{"type":"config_update","status":"ok","noop":true}"#.to_string()
}

/// Host load figures for `stats`; each is omitted when unavailable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostLoad {
    pub cpu_percent: Option<f64>,
    pub mem_percent: Option<f64>,
    pub mem_used_mb: Option<u64>,
    pub mem_total_mb: Option<u64>,
}

/// `server` `stats` broadcast (§3.7); `online` holds normalized device-ids.
pub fn stats(ts: u64, online: &[String], load: HostLoad) -> String {
    let mut message = json!({
        "type": "server",
        "event": "stats",
        "ts": ts,
        "deviceCount": online.len(),
        "online": online,
    });
    let round1 = |v: f64| (v * 10.0).round() / 10.0;
    if let Some(cpu) = load.cpu_percent {
        message["cpuPercent"] = json!(round1(cpu));
    }
    if let Some(mem) = load.mem_percent {
        message["memPercent"] = json!(round1(mem));
    }
    if let Some(used) = load.mem_used_mb {
        message["memUsedMB"] = json!(used);
    }
    if let Some(total) = load.mem_total_mb {
        message["memTotalMB"] = json!(total);
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn hello_reply_has_fixed_audio_params() {
        let v = parse(&hello_reply(FramingVersion::V3, "abc"));
        assert_eq!(v["version"], 3);
        assert_eq!(v["session_id"], "abc");
        assert_eq!(v["transport"], "websocket");
        assert_eq!(v["audio_params"]["sample_rate"], 16000);
        assert_eq!(v["audio_params"]["frame_duration"], 60);
    }

    #[test]
    fn final_warning_is_marked() {
        assert_eq!(parse(&timeout_warning(15, false)).get("final"), None);
        assert_eq!(parse(&timeout_warning(10, true))["final"], true);
    }

    #[test]
    fn stats_omits_unavailable_load() {
        let v = parse(&stats(5, &["a".to_string()], HostLoad::default()));
        assert_eq!(v["deviceCount"], 1);
        assert!(v.get("cpuPercent").is_none());
        let load = HostLoad {
            cpu_percent: Some(12.54),
            mem_percent: Some(41.0),
            mem_used_mb: Some(3280),
            mem_total_mb: Some(8000),
        };
        let v = parse(&stats(5, &[], load));
        assert_eq!(v["cpuPercent"], 12.5);
        assert_eq!(v["memTotalMB"], 8000);
    }
}
