//! Sockets: the acceptor ([`reactor`]), the first seconds of a connection
//! ([`handshake`], [`identity`], [`auth`]), the per-connection event loop
//! ([`connection`], [`event_loop`]) and how others reach it ([`handle`], [`registry`], [`stats`]); and
//! [`blocking_ws`], EINTR-proof sends and reads for the blocking WebSocket clients.

pub mod auth;
pub mod blocking_ws;
pub mod connection;
pub mod event_loop;
pub mod handle;
pub mod handshake;
pub mod identity;
pub mod reactor;
pub mod registry;
pub mod stats;
pub mod wait;
