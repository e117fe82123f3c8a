//! huddle: the server that xiaozhi voice badges connect to.
//!
//! # Layout
//! - [`alloc`]: allocator tuning for a thread-per-connection server.
//! - [`asr`]: speech recognition engines and the job pool that runs them.
//! - [`audio`]: Opus decode, VAD and utterance cutting on the worker pool.
//! - [`config`]: `huddle.toml`, its defaults, validation and hot reload.
//! - [`llm`]: LLM clients (OpenAI-compatible chat completions) and per-purpose resolution.
//! - [`log`]: the non-blocking logger (bounded channel to one writer thread).
//! - [`tts`]: text-to-speech engines (espeak-ng, OpenAI-compatible), resampling and Opus encoding of speech.
//! - [`timer`]: the clock abstraction and the timer wheel thread.
//! - [`protocol`]: typed JSON messages, error replies and binary framing v1/v2/v3.
//! - [`net`]: the acceptor (mio reactor), the handshake, the device registry and
//!   the per-connection event loop.
//! - [`session`]: per-connection protocol state and one handler per message
//!   family; separate from [`net`] so the rules are tested without sockets.
//! - [`http`]: plain HTTP requests on the device port (OTA, health, metrics,
//!   the meeting archive and workflow APIs).
//! - [`modes`]: what each mode does with speech and messages: meeting
//!   (transcript, summary, archive), working (task commands, intent), coding
//!   (log insights) and chat (the assistant workers behind spoken turns).
//! - [`metrics`]: process-wide counters rendered as Prometheus text.
//! - [`context`]: what every connection shares with the rest of the server.
//! - [`shutdown`]: the process-wide stop signal.
//! - [`store`]: meeting storage: journals, finalized meetings, shards, index.
//! - [`webhook`]: signed background POSTs of final meeting summaries, with one retry.
//! - [`workflow`]: workflow tasks: validation, groups, the `tasks.json` store and
//!   the thread that writes it and sends each changed group its snapshot.
//! - [`server`]: wires the threads together and runs until shutdown.
//! - [`device`]: the badge simulator behind `huddle device` (WAV in, Opus out).
//! - [`fuzzing`]: one entry point per `cargo fuzz` target (fuzz/), shared with the
//!   regression test that replays their corpus.

pub mod alloc;
pub mod asr;
pub mod audio;
pub mod config;
pub mod context;
pub mod device;
pub mod fuzzing;
pub mod http;
pub mod llm;
pub mod log;
pub mod metrics;
pub mod modes;
pub mod net;
pub mod protocol;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod store;
pub mod timer;
pub mod tts;
pub mod webhook;
pub mod workflow;
