//! Blocking WebSocket clients (the FunASR client, the badge simulator) over sockets with read and write
//! timeouts. On Linux such a read or write ends with EINTR when the process is stopped and continued (a debugger,
//! a VM snapshot, a frozen container), even with no signal handler installed (signal(7)). Nothing was lost:
//! tungstenite keeps a partial frame in its buffers, so the call is simply made again. Callers keep their own
//! deadlines; EINTR never extends them by more than one socket timeout.

use std::io::{ErrorKind, Read, Write};

use tungstenite::{Error, Message, WebSocket};

fn interrupted<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Io(e)) if e.kind() == ErrorKind::Interrupted)
}

/// `ws.send`, finished by flushing when a write was interrupted.
pub fn send<S: Read + Write>(ws: &mut WebSocket<S>, message: Message) -> Result<(), Error> {
    let mut sent = ws.send(message);
    while interrupted(&sent) {
        sent = ws.flush();
    }
    sent
}

/// `ws.read`, made again when it was interrupted.
pub fn read<S: Read + Write>(ws: &mut WebSocket<S>) -> Result<Message, Error> {
    loop {
        let read = ws.read();
        if !interrupted(&read) {
            return read;
        }
    }
}
