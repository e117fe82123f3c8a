//! `mode` (PROTOCOL.md §3.2): modes are exclusive, starting another mode while
//! a meeting runs finalizes it first, and meeting or working mode lengthens
//! the idle deadline. Meeting starts and ends are delegated to [`super::meeting`].

use serde_json::Value;

use crate::context::ServerContext;
use crate::protocol::inbound::{ListenMode, ModeName, ModeRequest, ModeState};
use crate::protocol::{Rejection, outbound};

use super::{Outbox, Session, meeting};

pub fn handle(
    session: &mut Session,
    request: ModeRequest,
    ctx: &ServerContext,
    now_ms: u64,
    out: &mut Outbox,
) -> Result<(), Rejection> {
    let mut ack: Value = serde_json::from_str(&outbound::mode_ack(request.state, request.mode))
        .unwrap_or_else(|_| serde_json::json!({}));
    match (request.state, request.mode) {
        (ModeState::Start, ModeName::Meeting) => {
            super::chat::cancel(session, out);
            let extra = meeting::start(session, ctx, out);
            if let (Some(ack), Value::Object(extra)) = (ack.as_object_mut(), extra) {
                ack.extend(extra);
            }
            session.mode = Some(ModeName::Meeting);
        }
        (ModeState::Start, mode) => {
            if session.meeting.is_running() {
                meeting::finalize(session, ctx, now_ms, out)?;
            }
            if mode == ModeName::Coding {
                session.coding.reset();
                out.cancel_coding_timer = true;
            }
            if mode == ModeName::Working {
                // The group's board first, then (after the ack) listen at once.
                super::workflow::snapshot(
                    session,
                    ctx,
                    super::workflow::SnapshotCause::Automatic,
                    now_ms,
                    out,
                );
                out.after_ack.push(
                    serde_json::json!({"type": "listen", "state": "start", "mode": "manual"})
                        .to_string(),
                );
                session.listen.mode = ListenMode::Manual;
            }
            session.mode = Some(mode);
        }
        (ModeState::End, ModeName::Meeting) => {
            // `end meeting` is a finalize; its ack follows the finalize ack.
            if session.meeting.is_running() {
                meeting::finalize(session, ctx, now_ms, out)?;
            }
            if session.mode == Some(ModeName::Meeting) {
                session.mode = None;
            }
            session.listen.mode = ListenMode::Auto;
        }
        (ModeState::End, mode) => {
            if session.mode == Some(mode) {
                session.mode = None;
            }
            session.listen.mode = ListenMode::Auto;
        }
    }
    let long = matches!(session.mode, Some(ModeName::Meeting | ModeName::Working));
    session.idle.set_long_mode(long);
    out.rearm_idle = true;
    out.text(ack.to_string());
    for text in std::mem::take(&mut out.after_ack) {
        out.text(text);
    }
    Ok(())
}
