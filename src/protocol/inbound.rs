//! Device-to-server JSON messages (PROTOCOL.md §3): one typed value per
//! accepted `type`, and the [`Rejection`] naming the field when a text frame
//! does not fit. Unknown fields are ignored, as the contract requires.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ErrorCode, Rejection};

/// Largest text frame parsed; above it the frame is answered `TOO_LARGE` unread (§3.0).
pub const MAX_TEXT_FRAME: usize = 64 * 1024;

/// One parsed device message.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A frame that parses to a bare integer is echoed back unchanged.
    Echo(String),
    Hello(Hello),
    Listen(Listen),
    Abort(Abort),
    /// `ping` and `keepalive` both get a `pong`.
    Ping,
    Mode(ModeRequest),
    Server(ServerAdmin),
    /// Legacy `config_update`: changes nothing.
    ConfigUpdate,
    /// Legacy IoT descriptors or states: stored, never answered.
    Iot(Value),
    Mcp(Value),
    /// `ui.ack` / `ui.error` replies from a device: only logged.
    UiReply(Value),
    /// An accepted type whose behaviour belongs to a later part of the server
    /// (meeting, workflow, coding, peer, render forwarding).
    NotYetServed {
        type_name: String,
        body: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hello {
    /// Framing version; validated by the session because an unknown one keeps the old version.
    #[serde(default)]
    pub version: Option<Value>,
    #[serde(default)]
    pub features: Option<Value>,
    #[serde(default)]
    pub transport: Option<String>,
    #[serde(default)]
    pub audio_params: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenState {
    Start,
    Stop,
    Detect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListenMode {
    /// Device VAD ends the turn.
    #[default]
    Auto,
    /// Push-to-talk.
    Manual,
    /// Continuous, with AEC.
    Realtime,
}

impl std::str::FromStr for ListenMode {
    type Err = String;

    /// For command lines (`huddle device --mode`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ListenMode::Auto),
            "manual" => Ok(ListenMode::Manual),
            "realtime" => Ok(ListenMode::Realtime),
            other => Err(format!("mode {other:?} is not auto, manual or realtime")),
        }
    }
}

impl ListenMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenMode::Auto => "auto",
            ListenMode::Manual => "manual",
            ListenMode::Realtime => "realtime",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Listen {
    pub state: ListenState,
    #[serde(default)]
    pub mode: Option<ListenMode>,
    /// Wake word or recognized text of a `detect`.
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Abort {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeState {
    Start,
    End,
}

impl ModeState {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeState::Start => "start",
            ModeState::End => "end",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    Meeting,
    Working,
    Coding,
}

impl ModeName {
    pub fn as_str(self) -> &'static str {
        match self {
            ModeName::Meeting => "meeting",
            ModeName::Working => "working",
            ModeName::Coding => "coding",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ModeRequest {
    pub state: ModeState,
    pub mode: ModeName,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServerAdmin {
    pub action: String,
    #[serde(default)]
    pub content: Option<Value>,
}

/// Parses one text frame (or a binary frame of type JSON).
pub fn parse_text(text: &str) -> Result<Inbound, Rejection> {
    if text.len() > MAX_TEXT_FRAME {
        return Err(Rejection::new(
            "error",
            ErrorCode::TooLarge,
            format!(
                "text frame of {} bytes exceeds the {MAX_TEXT_FRAME}-byte limit",
                text.len()
            ),
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            "error",
            ErrorCode::InvalidJson,
            format!("invalid JSON: {e}"),
        )
    })?;
    let object = match value {
        Value::Object(object) => object,
        Value::Number(n) if n.is_i64() || n.is_u64() => return Ok(Inbound::Echo(text.to_string())),
        _ => {
            return Err(Rejection::new(
                "error",
                ErrorCode::InvalidJson,
                "a text frame must be a JSON object with a string type",
            ));
        }
    };
    let type_name = match object.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => {
            return Err(Rejection::new(
                "error",
                ErrorCode::SchemaInvalid,
                "type must be a string",
            ));
        }
        None => {
            return Err(Rejection::new(
                "error",
                ErrorCode::SchemaInvalid,
                "missing field type",
            ));
        }
    };
    let body = Value::Object(object);
    Ok(match type_name.as_str() {
        "hello" => Inbound::Hello(typed_body(&type_name, body)?),
        "listen" => Inbound::Listen(typed_body(&type_name, body)?),
        "abort" => Inbound::Abort(typed_body(&type_name, body)?),
        "ping" | "keepalive" => Inbound::Ping,
        "mode" => Inbound::Mode(typed_body(&type_name, body)?),
        "server" => Inbound::Server(typed_body(&type_name, body)?),
        "config_update" => Inbound::ConfigUpdate,
        "iot" => Inbound::Iot(body),
        "mcp" => Inbound::Mcp(body.get("payload").cloned().unwrap_or(Value::Null)),
        "ui.ack" | "ui.error" => Inbound::UiReply(body),
        "meeting" | "workflow" | "coding" | "peer" | "ui.render" | "device.control" => {
            Inbound::NotYetServed { type_name, body }
        }
        _ => {
            return Err(Rejection::new(
                type_name.clone(),
                ErrorCode::Unsupported,
                format!("unknown type {type_name}"),
            ));
        }
    })
}

/// Deserializes a message body, naming the offending field in the rejection.
fn typed_body<T: DeserializeOwned>(type_name: &str, body: Value) -> Result<T, Rejection> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        };
        Rejection::new(type_name, ErrorCode::SchemaInvalid, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(text: &str) -> Rejection {
        parse_text(text).expect_err("should be rejected")
    }

    #[test]
    fn parses_the_firmware_hello() {
        let text = r#"{"type":"hello","version":3,"features":{"mcp":true},"transport":"websocket","audio_params":{"format":"opus","sample_rate":16000,"channels":1,"frame_duration":60}}"#;
        let Inbound::Hello(hello) = parse_text(text).unwrap() else {
            panic!("not a hello")
        };
        assert_eq!(hello.version, Some(Value::from(3)));
        assert_eq!(hello.transport.as_deref(), Some("websocket"));
        assert_eq!(hello.features.unwrap()["mcp"], true);
    }

    #[test]
    fn a_browser_hello_without_version_is_accepted() {
        let text = r#"{"type":"hello","device_id":"x","token":"t"}"#;
        let Inbound::Hello(hello) = parse_text(text).unwrap() else {
            panic!("not a hello")
        };
        assert_eq!(hello.version, None);
    }

    #[test]
    fn listen_fields_are_typed() {
        let parsed = parse_text(r#"{"type":"listen","state":"start","mode":"manual"}"#).unwrap();
        assert_eq!(
            parsed,
            Inbound::Listen(Listen {
                state: ListenState::Start,
                mode: Some(ListenMode::Manual),
                text: None
            })
        );
    }

    #[test]
    fn a_bad_enum_value_names_the_field() {
        let r = rejected(r#"{"type":"listen","state":"sing"}"#);
        assert_eq!(r.code, ErrorCode::SchemaInvalid);
        assert_eq!(r.reply_type, "listen");
        assert!(
            r.message.starts_with("state: unknown variant `sing`"),
            "{}",
            r.message
        );
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        let r = rejected(r#"{"type":"mode","state":"start","mode":7}"#);
        assert_eq!(r.code, ErrorCode::SchemaInvalid);
        assert!(r.message.starts_with("mode: invalid type"), "{}", r.message);
    }

    #[test]
    fn a_missing_field_is_named() {
        let r = rejected(r#"{"type":"mode","state":"start"}"#);
        assert_eq!(r.code, ErrorCode::SchemaInvalid);
        assert!(r.message.contains("missing field `mode`"), "{}", r.message);
    }

    #[test]
    fn invalid_json_and_non_objects() {
        assert_eq!(rejected("{nope").code, ErrorCode::InvalidJson);
        assert_eq!(rejected("{nope").reply_type, "error");
        assert_eq!(rejected("[1,2]").code, ErrorCode::InvalidJson);
        assert_eq!(rejected("\"hi\"").code, ErrorCode::InvalidJson);
        assert_eq!(rejected("1.5").code, ErrorCode::InvalidJson);
    }

    #[test]
    fn a_bare_integer_is_echoed_unchanged() {
        assert_eq!(parse_text("42").unwrap(), Inbound::Echo("42".to_string()));
    }

    #[test]
    fn type_problems() {
        let r = rejected(r#"{"type":"dance"}"#);
        assert_eq!(
            (r.code, r.reply_type.as_str()),
            (ErrorCode::Unsupported, "dance")
        );
        let r = rejected(r#"{"type":5}"#);
        assert_eq!(
            (r.code, r.reply_type.as_str()),
            (ErrorCode::SchemaInvalid, "error")
        );
        let r = rejected(r#"{"state":"start"}"#);
        assert_eq!(r.message, "missing field type");
    }

    #[test]
    fn oversized_text_is_refused_unread() {
        let big = format!(
            "{{\"type\":\"ping\",\"pad\":\"{}\"}}",
            "x".repeat(MAX_TEXT_FRAME)
        );
        let r = rejected(&big);
        assert_eq!(
            (r.code, r.reply_type.as_str()),
            (ErrorCode::TooLarge, "error")
        );
        assert!(r.message.contains("65536"));
    }

    #[test]
    fn ping_and_keepalive_are_the_same() {
        assert_eq!(
            parse_text(r#"{"type":"keepalive"}"#).unwrap(),
            Inbound::Ping
        );
        assert_eq!(
            parse_text(r#"{"type":"ping","session_id":"x"}"#).unwrap(),
            Inbound::Ping
        );
    }
}
