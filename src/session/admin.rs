//! `server` admin messages (PROTOCOL.md §3.7): `update_config` merges a
//! partial config when the admin secret matches; an accepted reload reaches
//! every live connection as an event.

use std::sync::Arc;

use crate::context::ServerContext;
use crate::net::handle::ConnEvent;
use crate::protocol::inbound::ServerAdmin;
use crate::protocol::{ErrorCode, Rejection, outbound};
use crate::timer::unix_ms;

use super::{Outbox, Session};

pub fn handle_server(
    session: &mut Session,
    admin: ServerAdmin,
    ctx: &ServerContext,
    out: &mut Outbox,
) -> Result<(), Rejection> {
    let now_ms = ctx.timers.now_ms();
    let action = admin.action.as_str();
    let fail = |session: &mut Session, out: &mut Outbox, code: ErrorCode, message: &str| {
        out.text(outbound::server_error(action, code, message));
        session.count_error_reply(code, now_ms, out);
    };
    match action {
        "update_config" => {}
        "restart" => {
            fail(
                session,
                out,
                ErrorCode::Unsupported,
                "restarts belong to the service manager",
            );
            return Ok(());
        }
        other => {
            let message = format!("unknown action {other}");
            fail(session, out, ErrorCode::Unsupported, &message);
            return Ok(());
        }
    }
    let content = admin.content.unwrap_or_default();
    let secret = content.get("secret").and_then(|s| s.as_str()).unwrap_or("");
    if !ctx.config.admin_secret_matches(secret) {
        fail(
            session,
            out,
            ErrorCode::Unauthorized,
            "content.secret does not match server.admin_secret",
        );
        return Ok(());
    }
    let Some(partial) = content.get("config").filter(|c| c.is_object()) else {
        fail(
            session,
            out,
            ErrorCode::SchemaInvalid,
            "content.config must be an object",
        );
        return Ok(());
    };
    match ctx.config.apply_partial(partial) {
        Ok(config) => {
            ::log::info!(
                "config updated by admin message from device {} at {}",
                session.device_id(),
                unix_ms()
            );
            announce_reload(ctx, config);
            out.text(outbound::server_success(action, "config updated"));
        }
        Err(error) => {
            fail(
                session,
                out,
                ErrorCode::SchemaInvalid,
                &error.reply_message(),
            );
        }
    }
    Ok(())
}

/// Retunes the logger and tells every live connection (this one included).
pub fn announce_reload(ctx: &ServerContext, config: Arc<crate::config::Config>) {
    if let Some(log) = &ctx.log {
        log.set_level(config.log.level.to_filter());
        log.set_max_message_length(config.log.max_message_length);
    }
    ctx.meetings.reconfigure(&config);
    crate::llm::resolve::clear_cache();
    crate::tts::clear_cache();
    ctx.registry
        .broadcast_live(|| ConnEvent::ConfigReloaded(Arc::clone(&config)));
}
