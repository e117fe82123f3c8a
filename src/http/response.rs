//! An HTTP response and its bytes; every response carries the CORS headers
//! of PROTOCOL.md §5.1.

use serde_json::{Value, json};

pub const CORS_HEADERS: [(&str, &str); 3] = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
    (
        "Access-Control-Allow-Headers",
        "Authorization, Content-Type, X-API-Token",
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub extra_headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            extra_headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn json(status: u16, body: Value) -> Self {
        Response {
            status,
            content_type: "application/json; charset=utf-8",
            extra_headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    pub fn prometheus(body: String) -> Self {
        Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            extra_headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    pub fn no_content() -> Self {
        Response {
            status: 204,
            content_type: "text/plain; charset=utf-8",
            extra_headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The error envelope `{"success":false,"error":{"code":…,"message":…}}`.
    /// `200 {"success":true,"data":…}`: the API's success envelope (§5.1).
    pub fn ok_data(data: serde_json::Value) -> Self {
        Response::json(200, json!({"success": true, "data": data}))
    }

    /// `400 BAD_REQUEST` naming the problem.
    pub fn bad_request(message: &str) -> Self {
        Response::error(400, "BAD_REQUEST", message)
    }

    /// `404` for a meeting id; ids that fail the pattern may be long or odd,
    /// so the message shows at most 80 characters of it.
    pub fn meeting_not_found(id: &str) -> Self {
        let shown: String = id.chars().take(80).collect();
        Response::error(404, "NOT_FOUND", &format!("meeting {shown} not found"))
    }

    /// `500 INTERNAL`, logged with the API `area` it happened in.
    pub fn internal(area: &str, message: &str) -> Self {
        ::log::warn!("{area} API: {message}");
        Response::error(500, "INTERNAL", message)
    }

    pub fn error(status: u16, code: &str, message: &str) -> Self {
        Response::json(
            status,
            json!({"success": false, "error": {"code": code, "message": message}}),
        )
    }

    /// Serializes status line, headers and body; the connection is always closed after.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in CORS_HEADERS {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in &self.extra_headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_carry_cors_and_length() {
        let text = String::from_utf8(Response::text(200, "hi").to_bytes()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.contains("Access-Control-Allow-Origin: *\r\n"));
        assert!(text.ends_with("\r\n\r\nhi"));
    }
}
