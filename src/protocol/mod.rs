//! The wire contract of PROTOCOL.md §2 and §3: binary audio framing, typed
//! device messages with their parse errors, and the server's replies.
//!
//! Nothing here does I/O; the connection loop feeds bytes in and writes what
//! comes out, so every rule of the contract is unit-testable on its own.

pub mod error;
pub mod framing;
pub mod inbound;
pub mod outbound;

pub use error::{ErrorCode, Rejection};
pub use framing::{BinaryPacket, FramingVersion, PacketKind};
pub use inbound::{Inbound, parse_text};
