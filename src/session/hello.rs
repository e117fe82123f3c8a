//! `hello` (PROTOCOL.md §1.6): every device hello gets the same answer with
//! the connection's `session_id`; the first one stores the features.

use crate::protocol::inbound::Hello;
use crate::protocol::{ErrorCode, FramingVersion, Rejection, outbound};

use super::{Outbox, Session};

pub fn handle(session: &mut Session, hello: Hello, out: &mut Outbox) -> Result<(), Rejection> {
    if let Some(version) = &hello.version {
        // An unknown version keeps the previous one (§2.1).
        let parsed = version.as_i64().and_then(FramingVersion::from_number);
        match parsed {
            Some(framing) => session.framing = framing,
            None => {
                return Err(Rejection::new(
                    "hello",
                    ErrorCode::Unsupported,
                    format!("version {version} is not 1, 2 or 3"),
                ));
            }
        }
    }
    if session.hello_count == 0 {
        session.features = hello.features;
    }
    session.hello_count += 1;
    out.text(outbound::hello_reply(session.framing, &session.session_id));
    Ok(())
}
