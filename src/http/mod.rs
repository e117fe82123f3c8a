//! Plain HTTP on the device port (PROTOCOL.md §5): the firmware's OTA
//! configuration request, `/`, `/healthz`, `/metrics`, CORS preflight and the
//! error envelope. Routing is a pure function of the request and an
//! [`ApiContext`] snapshot, so it is tested without sockets.

pub mod ota;
pub mod request;
pub mod response;

use serde_json::json;

use crate::config::Config;
use request::RequestHead;
use response::Response;

/// What the routes need to know about the running server, taken at request time.
pub struct ApiContext<'a> {
    pub config: &'a Config,
    pub device_url: &'a str,
    pub uptime_ms: u64,
    pub connections: usize,
    pub log_records_dropped: u64,
    pub timer_lag_ms: u64,
    pub now_unix_ms: u64,
}

/// Answers one request.
pub fn route(head: &RequestHead, body: &[u8], ctx: &ApiContext) -> Response {
    if head.method == "OPTIONS" {
        return Response::no_content();
    }
    let path = head.path.as_str();
    match (head.method.as_str(), path) {
        ("GET" | "HEAD", "/") => Response::text(200, "Server is running"),
        ("GET", "/healthz") => Response::json(
            200,
            json!({"success": true, "data": {
                "status": "ok",
                "uptimeMs": ctx.uptime_ms,
                "connections": ctx.connections,
            }}),
        ),
        ("GET", "/metrics") => {
            let mut text =
                crate::metrics::METRICS.render(ctx.log_records_dropped, ctx.timer_lag_ms);
            crate::audio::stats::AUDIO_STATS.render(&mut text);
            crate::asr::stats::ASR_STATS.render(&mut text);
            Response::prometheus(text)
        }
        (method, "/xiaozhi/ota/" | "/xiaozhi/ota" | "/supie/ota/" | "/supie/ota") => match method {
            "POST" => ota::answer(head, body, ctx),
            "GET" => Response::text(200, "OTA endpoint is up; POST the device description here"),
            _ => Response::error(
                405,
                "METHOD_NOT_ALLOWED",
                &format!("{method} not allowed on {path}"),
            ),
        },
        (_, "/" | "/healthz" | "/metrics") => Response::error(
            405,
            "METHOD_NOT_ALLOWED",
            &format!("{} not allowed on {path}", head.method),
        ),
        _ => Response::error(
            404,
            "NOT_FOUND",
            &format!("no route for {} {path}", head.method),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use request::{HeadParse, parse_head};

    fn head(method: &str, target: &str) -> RequestHead {
        let raw = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        match parse_head(raw.as_bytes()) {
            HeadParse::Complete(h) => h,
            other => panic!("{other:?}"),
        }
    }

    fn ctx(config: &Config) -> ApiContext<'_> {
        ApiContext {
            config,
            device_url: "ws://10.0.0.2:8000/xiaozhi/v1/",
            uptime_ms: 1234,
            connections: 3,
            log_records_dropped: 0,
            timer_lag_ms: 0,
            now_unix_ms: 1_755_480_000_000,
        }
    }

    #[test]
    fn routes() {
        let config = Config::default();
        let c = ctx(&config);
        assert_eq!(route(&head("GET", "/"), b"", &c).status, 200);
        assert_eq!(route(&head("OPTIONS", "/anything"), b"", &c).status, 204);
        assert_eq!(route(&head("DELETE", "/healthz"), b"", &c).status, 405);
        let missing = route(&head("GET", "/nope"), b"", &c);
        assert_eq!(missing.status, 404);
        let v: serde_json::Value = serde_json::from_slice(&missing.body).unwrap();
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["code"], "NOT_FOUND");
        let health = route(&head("GET", "/healthz"), b"", &c);
        let v: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
        assert_eq!(v["data"]["connections"], 3);
        assert_eq!(v["data"]["uptimeMs"], 1234);
    }
}
