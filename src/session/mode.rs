//! `mode` (PROTOCOL.md §3.2), acknowledged only in this release: modes are
//! exclusive, and meeting or working mode lengthens the idle deadline.

use crate::protocol::inbound::{ModeName, ModeRequest, ModeState};
use crate::protocol::{Rejection, outbound};

use super::{Outbox, Session};

pub fn handle(
    session: &mut Session,
    request: ModeRequest,
    out: &mut Outbox,
) -> Result<(), Rejection> {
    match request.state {
        ModeState::Start => session.mode = Some(request.mode),
        ModeState::End => {
            if session.mode == Some(request.mode) {
                session.mode = None;
            }
        }
    }
    let long = matches!(session.mode, Some(ModeName::Meeting | ModeName::Working));
    session.idle.set_long_mode(long);
    out.rearm_idle = true;
    out.text(outbound::mode_ack(request.state, request.mode));
    Ok(())
}
