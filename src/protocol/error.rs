//! Error replies (PROTOCOL.md §3.0): the codes, and a rejected message's reply.

use serde_json::json;

/// The error codes a device can receive. `as_str` is the wire spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidJson,
    SchemaInvalid,
    Unauthorized,
    RateLimited,
    TooLarge,
    Unsupported,
}

impl ErrorCode {
    /// Every code, in a fixed order, so metrics can keep one counter per code.
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::InvalidJson,
        ErrorCode::SchemaInvalid,
        ErrorCode::Unauthorized,
        ErrorCode::RateLimited,
        ErrorCode::TooLarge,
        ErrorCode::Unsupported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::SchemaInvalid => "SCHEMA_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::TooLarge => "TOO_LARGE",
            ErrorCode::Unsupported => "UNSUPPORTED",
        }
    }

    /// Position in [`ErrorCode::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A device message the server refused, with everything its reply needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The request's `type`, `error` when it could not be read, `audio` for
    /// binary frames: the reply repeats it so the device can match it up.
    pub reply_type: String,
    pub code: ErrorCode,
    /// Names the field or the limit, so a firmware developer can fix the sender.
    pub message: String,
}

impl Rejection {
    pub fn new(reply_type: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            reply_type: reply_type.into(),
            code,
            message: message.into(),
        }
    }

    /// `{"type":…,"status":"error","code":…,"message":…}`
    pub fn to_json(&self) -> String {
        json!({
            "type": self.reply_type,
            "status": "error",
            "code": self.code.as_str(),
            "message": self.message,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_names_type_code_and_message() {
        let rejection = Rejection::new("meeting", ErrorCode::SchemaInvalid, "items must be array");
        let v: serde_json::Value = serde_json::from_str(&rejection.to_json()).unwrap();
        assert_eq!(v["type"], "meeting");
        assert_eq!(v["status"], "error");
        assert_eq!(v["code"], "SCHEMA_INVALID");
        assert_eq!(v["message"], "items must be array");
    }

    #[test]
    fn index_matches_position_in_all() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.index(), i);
        }
    }
}
