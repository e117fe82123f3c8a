//! Plain HTTP on the device port (PROTOCOL.md §5): the firmware's OTA
//! configuration request, `/`, `/healthz`, `/metrics`, the meeting archive
//! API, the workflow task API, CORS preflight and the error envelope. Routing is a function of the
//! request and an [`ApiContext`] snapshot (plus the rate limiter's state and
//! the store on disk), so it is tested without sockets.

pub mod api_auth;
pub mod meetings;
pub mod ota;
pub mod ratelimit;
pub mod request;
pub mod response;
pub mod workflow;

use std::net::IpAddr;

use serde_json::json;

use crate::config::Config;
use crate::net::registry::Registry;
use crate::store::meetings::MeetingStore;
use crate::workflow::store::TaskStore;
use ratelimit::RateLimiter;
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
    /// The meeting archive; `None` when `storage.data_dir` was unusable.
    pub store: Option<&'a MeetingStore>,
    /// The workflow task store; `None` when `tasks.json` was unusable.
    pub tasks: Option<&'a TaskStore>,
    /// Online devices, for the snapshots after a workflow import.
    pub registry: &'a Registry,
    /// The peer address, the rate limiter's key.
    pub client_ip: IpAddr,
    /// Per-IP buckets for the meeting/workflow API ([`ratelimit::global`] in the server).
    pub limiter: &'a RateLimiter,
}

impl<'a> ApiContext<'a> {
    /// The meeting archive, or a 500 naming `area` and the data dir when it
    /// could not be opened at start-up.
    pub fn meeting_store(&self, area: &str) -> Result<&'a MeetingStore, Response> {
        self.store.ok_or_else(|| {
            self.storage_unavailable(area, "meeting storage is unavailable: storage.data_dir")
        })
    }

    /// The workflow task store, or a 500 like [`Self::meeting_store`].
    pub fn task_store(&self, area: &str) -> Result<&'a TaskStore, Response> {
        self.tasks.ok_or_else(|| {
            self.storage_unavailable(
                area,
                "workflow storage is unavailable: tasks.json under storage.data_dir",
            )
        })
    }

    fn storage_unavailable(&self, area: &str, what: &str) -> Response {
        Response::internal(
            area,
            &format!(
                "{what} {} could not be opened at startup",
                self.config.storage.data_dir.display()
            ),
        )
    }
}

/// The paths behind the API token and the rate limit (§5.1), with the
/// `/supie` alias prefix removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApiPath<'p> {
    /// What follows `/meetings`: empty, `/recent`, `/<id>`, `/<id>/transcript`…
    Meetings(&'p str),
    /// What follows `/workflow`.
    Workflow(&'p str),
}

fn api_path(path: &str) -> Option<ApiPath<'_>> {
    let path = match path.strip_prefix("/supie") {
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    };
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    under("/meetings")
        .map(ApiPath::Meetings)
        .or_else(|| under("/workflow").map(ApiPath::Workflow))
}

/// Rate limit, then token, for the meeting and workflow paths.
fn guard_api(head: &RequestHead, ctx: &ApiContext) -> Result<(), Response> {
    if !ctx
        .limiter
        .allow(ctx.client_ip, ctx.config.meeting.api_rate_limit)
    {
        let mut refusal = Response::error(
            429,
            "RATE_LIMITED",
            &format!(
                "more than {} requests per second from {}",
                ctx.config.meeting.api_rate_limit, ctx.client_ip
            ),
        );
        refusal.extra_headers.push(("Retry-After", "1".to_string()));
        return Err(refusal);
    }
    api_auth::check(ctx.config.server.meeting_api_token.as_deref(), head)
        .map_err(|message| Response::error(401, "UNAUTHORIZED", message))
}

/// Answers one request.
pub fn route(head: &RequestHead, body: &[u8], ctx: &ApiContext) -> Response {
    if head.method == "OPTIONS" {
        return Response::no_content();
    }
    let path = head.path.as_str();
    if let Some(api) = api_path(path) {
        if let Err(refusal) = guard_api(head, ctx) {
            return refusal;
        }
        return match api {
            ApiPath::Meetings(rest) => meetings::answer(head, rest, path, ctx),
            ApiPath::Workflow(rest) => workflow::answer(head, body, rest, path, ctx),
        };
    }
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
            crate::modes::meeting::service::MeetingService::render_metrics(&mut text);
            crate::webhook::render(&mut text);
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
    use request::test_head;

    fn head(method: &str, target: &str) -> RequestHead {
        test_head(method, target, &[])
    }

    fn ctx<'a>(
        config: &'a Config,
        limiter: &'a RateLimiter,
        registry: &'a Registry,
    ) -> ApiContext<'a> {
        ApiContext {
            config,
            device_url: "ws://10.0.0.2:8000/xiaozhi/v1/",
            uptime_ms: 1234,
            connections: 3,
            log_records_dropped: 0,
            timer_lag_ms: 0,
            now_unix_ms: 1_755_480_000_000,
            store: None,
            tasks: None,
            registry,
            client_ip: IpAddr::from([127, 0, 0, 1]),
            limiter,
        }
    }

    #[test]
    fn routes() {
        let config = Config::default();
        let limiter = RateLimiter::new();
        let registry = Registry::new();
        let c = ctx(&config, &limiter, &registry);
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

    #[test]
    fn api_paths() {
        assert_eq!(
            api_path("/meetings/recent"),
            Some(ApiPath::Meetings("/recent"))
        );
        assert_eq!(
            api_path("/supie/meetings/x/transcript"),
            Some(ApiPath::Meetings("/x/transcript"))
        );
        assert_eq!(api_path("/meetings"), Some(ApiPath::Meetings("")));
        assert_eq!(api_path("/supie/workflow"), Some(ApiPath::Workflow("")));
        assert_eq!(
            api_path("/workflow/import-from-meeting"),
            Some(ApiPath::Workflow("/import-from-meeting"))
        );
        assert_eq!(api_path("/meetingsx"), None);
        assert_eq!(api_path("/supie/ota/"), None);
        assert_eq!(api_path("/supiemeetings"), None);
        assert_eq!(api_path("/healthz"), None);
    }

    #[test]
    fn meeting_api_guards_and_errors() {
        let mut config = Config::default();
        config.meeting.api_rate_limit = 3;
        config.server.meeting_api_token = Some("t0k".into());
        let limiter = RateLimiter::new();
        let registry = Registry::new();
        let c = ctx(&config, &limiter, &registry);
        let code = |r: &Response| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["error"]["code"].clone()
        };
        // Missing token: 401, and it still spends a token.
        let r = route(&head("GET", "/meetings/recent"), b"", &c);
        assert_eq!((r.status, code(&r)), (401, "UNAUTHORIZED".into()));
        // Store absent: 500 with a clear message.
        let r = route(&head("GET", "/supie/meetings/recent?token=t0k"), b"", &c);
        assert_eq!(r.status, 500);
        assert_eq!(code(&r), "INTERNAL");
        // Non-GET: 405.
        let r = route(&head("POST", "/meetings/recent?token=t0k"), b"", &c);
        assert_eq!(r.status, 405);
        // Fourth within the second: 429 with Retry-After.
        let r = route(&head("GET", "/meetings/recent?token=t0k"), b"", &c);
        assert_eq!((r.status, code(&r)), (429, "RATE_LIMITED".into()));
        assert!(r.extra_headers.contains(&("Retry-After", "1".to_string())));
        // Exempt paths keep answering.
        assert_eq!(route(&head("GET", "/healthz"), b"", &c).status, 200);
        assert_eq!(
            route(&head("OPTIONS", "/meetings/recent"), b"", &c).status,
            204
        );
        assert_eq!(route(&head("POST", "/xiaozhi/ota/"), b"{}", &c).status, 200);
    }

    #[test]
    fn bad_parameters_and_ids() {
        let config = Config::default();
        let limiter = RateLimiter::new();
        let registry = Registry::new();
        let c = ctx(&config, &limiter, &registry);
        let r = route(&head("GET", "/meetings/recent?limit=abc"), b"", &c);
        assert_eq!(r.status, 400);
        assert!(String::from_utf8_lossy(&r.body).contains("limit"));
        let r = route(&head("GET", "/meetings/recent?fromTs=yesterday"), b"", &c);
        assert!(String::from_utf8_lossy(&r.body).contains("fromTs"));
        let r = route(&head("GET", "/meetings/x/transcript?offset=-1"), b"", &c);
        assert_eq!(r.status, 400);
        let r = route(&head("GET", "/meetings/..%2F..%2Fetc"), b"", &c);
        assert_eq!(r.status, 404);
        let r = route(&head("GET", "/meetings/a/b/c"), b"", &c);
        assert_eq!(r.status, 404);
    }

    #[test]
    fn workflow_routes_methods_and_errors() {
        let config = Config::default();
        let limiter = RateLimiter::new();
        let registry = Registry::new();
        let c = ctx(&config, &limiter, &registry);
        let body = |r: &Response| String::from_utf8_lossy(&r.body).into_owned();
        // groupKey is checked before the store: 400 naming it.
        let r = route(&head("GET", "/workflow"), b"", &c);
        assert_eq!(r.status, 400);
        assert!(body(&r).contains("groupKey"));
        let r = route(&head("GET", "/supie/workflow?groupKey=%20"), b"", &c);
        assert_eq!(r.status, 400);
        let r = route(&head("POST", "/workflow/import-from-meeting"), b"{}", &c);
        assert_eq!(r.status, 400);
        assert!(body(&r).contains("groupKey"));
        let r = route(&head("POST", "/workflow/import-from-meeting"), b"{x", &c);
        assert_eq!(r.status, 400);
        assert!(body(&r).contains("JSON"));
        // No task store: 500.
        let r = route(&head("GET", "/workflow/?groupKey=94:a9:90"), b"", &c);
        assert_eq!(r.status, 500);
        // Wrong method: 405 with Allow; unknown subpath: 404.
        let r = route(&head("DELETE", "/workflow"), b"", &c);
        assert_eq!(r.status, 405);
        assert!(
            r.extra_headers
                .contains(&("Allow", "GET, OPTIONS".to_string()))
        );
        let r = route(&head("GET", "/supie/workflow/import-from-meeting"), b"", &c);
        assert_eq!(r.status, 405);
        let r = route(&head("GET", "/workflow/nope"), b"", &c);
        assert_eq!(r.status, 404);
        let r = route(&head("POST", "/workflow/import-from-meeting/x"), b"", &c);
        assert_eq!(r.status, 404);
    }
}
