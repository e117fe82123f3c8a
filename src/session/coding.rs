//! `coding` events (PROTOCOL.md §3.5): lines into the connection's buffer,
//! insights debounced by `coding.insight_debounce_ms` (immediate for error
//! lines, tracebacks, `step` and `phase`), one `summary` after `stop`. Acks
//! never echo the device's text; the insight itself is built off-thread.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Outbox, Session};
use crate::context::ServerContext;
use crate::modes::coding::service::InsightJob;
use crate::modes::coding::signals::{LineLevel, LogLine, extract, is_immediate, normalize_line};
use crate::protocol::{ErrorCode, Rejection};

/// What the event loop must do about the debounce timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsightTrigger {
    #[default]
    None,
    /// (Re)arm the debounce timer.
    Debounce,
    /// Run now (and cancel any pending debounce).
    Now,
}

pub fn handle(
    session: &mut Session,
    body: Value,
    ctx: &ServerContext,
    out: &mut Outbox,
) -> Result<(), Rejection> {
    let event = body.get("event").and_then(Value::as_str).unwrap_or("");
    let ack = |event: &str| json!({"type": "coding", "status": "ok", "event": event}).to_string();
    let config = Arc::clone(&session.config);
    let coding = &config.coding;
    match event {
        "start" | "clear" => {
            session.coding.reset();
            out.coding_trigger = InsightTrigger::None;
            out.cancel_coding_timer = true;
        }
        "log" => {
            let level = match body.get("level").and_then(Value::as_str) {
                Some("info") => LineLevel::Info,
                Some("warn") => LineLevel::Warn,
                Some("error") => LineLevel::Error,
                _ => {
                    return Err(Rejection::new(
                        "coding",
                        ErrorCode::SchemaInvalid,
                        "level must be one of info|warn|error",
                    ));
                }
            };
            let Some(text) = body.get("text").and_then(Value::as_str) else {
                return Err(Rejection::new(
                    "coding",
                    ErrorCode::SchemaInvalid,
                    "text must be a string",
                ));
            };
            let line = LogLine {
                level,
                text: normalize_line(text, coding.per_message_max_len),
            };
            let immediate = is_immediate(&line);
            session.coding.stats.last_event = "log".to_string();
            session.coding.push(line, coding.history_max_lines);
            session.coding.insight_due = true;
            out.coding_trigger = if immediate {
                InsightTrigger::Now
            } else {
                InsightTrigger::Debounce
            };
        }
        "step" | "phase" => {
            let Some(name) = body.get("name").and_then(Value::as_str) else {
                return Err(Rejection::new(
                    "coding",
                    ErrorCode::SchemaInvalid,
                    "name must be a string",
                ));
            };
            let name = normalize_line(name, coding.per_message_max_len);
            if event == "step" {
                session.coding.stats.last_step = Some(name);
            } else {
                session.coding.stats.last_phase = Some(name);
            }
            session.coding.stats.last_event = event.to_string();
            session.coding.insight_due = true;
            out.coding_trigger = InsightTrigger::Now;
        }
        "stop" => {
            session.coding.stats.last_event = "stop".to_string();
            session.coding.stats.build_running = false;
            out.text(ack(event));
            out.cancel_coding_timer = true;
            if coding.insight_enabled {
                submit(session, ctx, "summary");
            }
            return Ok(());
        }
        "" => {
            return Err(Rejection::new(
                "coding",
                ErrorCode::SchemaInvalid,
                "event must be a string",
            ));
        }
        other => {
            return Err(Rejection::new(
                "coding",
                ErrorCode::Unsupported,
                format!("event {other} is not start|stop|clear|log|step|phase"),
            ));
        }
    }
    if !coding.insight_enabled {
        out.coding_trigger = InsightTrigger::None;
    }
    out.text(ack(event));
    Ok(())
}

/// Runs a due insight (the debounce timer fired, or an immediate trigger).
pub fn run_insight(session: &mut Session, ctx: &ServerContext) {
    if session.coding.insight_due && session.config.coding.insight_enabled {
        session.coding.insight_due = false;
        submit(session, ctx, "insight");
    }
}

fn submit(session: &mut Session, ctx: &ServerContext, event: &'static str) {
    let Some(origin) = session.handle.clone() else {
        return;
    };
    let lines: Vec<LogLine> = session.coding.lines.iter().cloned().collect();
    let copies =
        crate::modes::broadcast::targets(&session.config, &ctx.registry, session.device_id());
    ctx.coding.submit(InsightJob {
        signals: extract(&lines),
        stats: session.coding.stats.clone(),
        origin,
        config: Arc::clone(&session.config),
        event,
        copies,
    });
}
