//! Per-connection protocol state and the handling of each device message
//! (PROTOCOL.md §3). Owned and touched only by the connection's own thread;
//! the handlers append frames and a possible close to an [`Outbox`], and the
//! connection loop does the I/O.
//!
//! One file per message family: [`hello`], [`listen`], [`mode`], [`admin`],
//! [`meeting`], [`coding`], [`workflow`], [`mcp`]; [`transcript`] is the user
//! text pipeline, [`chat`] the connection's side of spoken turns and
//! [`playback`] their paced downlink; [`idle`] and [`abuse`] hold the two
//! time-based rules.

pub mod abuse;
pub mod admin;
pub mod chat;
pub mod coding;
pub mod hello;
pub mod idle;
pub mod listen;
pub mod mcp;
pub mod meeting;
pub mod mode;
pub mod playback;
pub mod transcript;
pub mod workflow;

use std::sync::Arc;

use serde_json::Value;

use crate::audio::ring::Boundary;
use crate::config::Config;
use crate::context::ServerContext;
use crate::metrics::METRICS;
use crate::net::identity::DeviceIdentity;
use crate::protocol::framing::{self, FrameError, PacketKind};
use crate::protocol::inbound::{Inbound, ModeName};
use crate::protocol::{ErrorCode, FramingVersion, Rejection, parse_text};

use abuse::{AbuseWindow, BinaryErrorGate};
use idle::{IdleSettings, IdleTracker};
use listen::ListenTracker;

/// A frame to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Text(String),
    /// Shared with other recipients of a broadcast.
    SharedText(Arc<str>),
}

/// WebSocket close the session asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRequest {
    pub code: u16,
    pub reason: &'static str,
}

pub const CLOSE_POLICY: CloseRequest = CloseRequest {
    code: 1008,
    reason: "policy violation",
};

/// What one handled input produced.
#[derive(Debug, Default)]
pub struct Outbox {
    pub frames: Vec<Outgoing>,
    pub close: Option<CloseRequest>,
    /// The idle deadline may have moved earlier (mode or settings change): re-arm its timer.
    pub rearm_idle: bool,
    /// Listen boundaries for the audio worker, in order.
    pub boundaries: Vec<Boundary>,
    /// A meeting started or resumed: start its transcript timer.
    pub start_meeting_timers: bool,
    /// The meeting stopped running: cancel its timers (twice is a no-op).
    pub stop_meeting_timers: bool,
    /// What the coding insight debounce timer must do.
    pub coding_trigger: coding::InsightTrigger,
    /// Drop a pending coding insight timer.
    pub cancel_coding_timer: bool,
    /// Frames that must follow the handler's ack (e.g. working mode's listen start).
    pub after_ack: Vec<String>,
}

impl Outbox {
    pub fn text(&mut self, text: String) {
        self.frames.push(Outgoing::Text(text));
    }
}

pub struct Session {
    /// UUIDv4 made when the connection opened; the same for its whole life.
    pub session_id: String,
    pub identity: DeviceIdentity,
    /// Framing version in use for uplink and downlink.
    pub framing: FramingVersion,
    /// `features` of the first hello; later hellos do not change it.
    pub features: Option<Value>,
    pub hello_count: u64,
    pub listen: ListenTracker,
    /// The exclusive mode, if any (§3.2).
    pub mode: Option<ModeName>,
    pub idle: IdleTracker,
    abuse: AbuseWindow,
    binary_errors: BinaryErrorGate,
    /// Last legacy IoT descriptors and states: stored, never answered.
    pub iot_descriptors: Option<Value>,
    pub iot_states: Option<Value>,
    /// The config this connection runs on; replaced by accepted reloads.
    pub config: Arc<Config>,
    /// This connection's meeting (idle when none).
    pub meeting: crate::modes::meeting::state::Meeting,
    /// This connection's coding log buffer.
    pub coding: crate::modes::coding::CodingState,
    /// Our own address, for jobs that answer later (the summary).
    pub handle: Option<crate::net::handle::ConnHandle>,
    /// When the device last got a workflow snapshot (any cause): the
    /// automatic ones within 1.5 s of it are skipped.
    pub workflow_snapshot_at_ms: Option<u64>,
    /// This connection's spoken exchanges, sent with each chat turn.
    pub conversation: crate::modes::chat::conversation::Conversation,
    /// The current spoken turn's number, shared with the assistant worker
    /// running it: bumping it (abort, barge-in, a newer turn) makes the
    /// worker stop and the connection drop that turn's late steps.
    pub turn_gate: Arc<std::sync::atomic::AtomicU64>,
    /// A turn was handed to the assistant and has not finished: activity
    /// for the idle timer.
    pub turn_in_flight: bool,
    /// The spoken turn's downlink, paced.
    pub playback: playback::Playback,
    /// The device's MCP tools and pending calls.
    pub mcp: mcp::McpClient,
    /// The turn number of the idle goodbye, which is not activity.
    pub goodbye_turn: Option<u64>,
}

impl Session {
    pub fn new(
        identity: DeviceIdentity,
        framing: FramingVersion,
        config: Arc<Config>,
        now_ms: u64,
    ) -> Self {
        Session {
            session_id: uuid::Uuid::new_v4().to_string(),
            identity,
            framing,
            features: None,
            hello_count: 0,
            listen: ListenTracker::default(),
            mode: None,
            idle: IdleTracker::new(IdleSettings::from_config(&config), now_ms),
            abuse: AbuseWindow::default(),
            binary_errors: BinaryErrorGate::default(),
            iot_descriptors: None,
            iot_states: None,
            config,
            meeting: Default::default(),
            coding: Default::default(),
            handle: None,
            workflow_snapshot_at_ms: None,
            conversation: Default::default(),
            turn_gate: Default::default(),
            turn_in_flight: false,
            playback: Default::default(),
            mcp: Default::default(),
            goodbye_turn: None,
        }
    }

    pub fn device_id(&self) -> &str {
        &self.identity.device_id
    }

    /// One text frame (or JSON-typed binary frame) from the device.
    pub fn on_text(&mut self, text: &str, ctx: &ServerContext, now_ms: u64, out: &mut Outbox) {
        // Any text message is activity, even one that is then rejected.
        self.idle.activity(now_ms);
        match parse_text(text) {
            Ok(message) => self.dispatch(message, ctx, now_ms, out),
            Err(rejection) => self.reject(rejection, now_ms, out),
        }
    }

    fn dispatch(&mut self, message: Inbound, ctx: &ServerContext, now_ms: u64, out: &mut Outbox) {
        let result = match message {
            Inbound::Echo(raw) => {
                out.text(raw);
                Ok(())
            }
            Inbound::Hello(hello) => hello::handle(self, hello, out).map(|()| {
                // MCP starts after the first hello announcing it (no-op later).
                self.mcp.start(self.features.as_ref(), out);
                // Every hello offers the (debounced) group snapshot, after the reply.
                workflow::snapshot(self, ctx, workflow::SnapshotCause::Automatic, now_ms, out);
            }),
            Inbound::Listen(listen) => {
                // `detect` text goes through the user-text pipeline like an ASR final.
                if let (crate::protocol::inbound::ListenState::Detect, Some(text)) =
                    (listen.state, listen.text.as_deref())
                {
                    let transcript = crate::net::handle::Transcript {
                        text: crate::asr::text::clean(text),
                        started_at_unix_ms: crate::timer::unix_ms(),
                    };
                    transcript::on_transcript(self, ctx, transcript, now_ms, out);
                }
                listen::handle(self, listen, now_ms, out)
            }
            Inbound::Abort(_) => {
                chat::abort(self, out);
                Ok(())
            }
            Inbound::Ping => {
                out.text(crate::protocol::outbound::pong());
                Ok(())
            }
            Inbound::Mode(request) => mode::handle(self, request, ctx, now_ms, out),
            Inbound::Server(admin) => admin::handle_server(self, admin, ctx, out),
            Inbound::ConfigUpdate => {
                out.text(crate::protocol::outbound::config_update_noop());
                Ok(())
            }
            Inbound::Iot(body) => {
                if let Some(descriptors) = body.get("descriptors") {
                    self.iot_descriptors = Some(descriptors.clone());
                }
                if let Some(states) = body.get("states") {
                    self.iot_states = Some(states.clone());
                }
                Ok(())
            }
            Inbound::Mcp(payload) => {
                self.mcp.on_payload(&payload, &self.identity.device_id);
                Ok(())
            }
            Inbound::UiReply(body) => {
                ::log::info!("device {} ui reply: {body}", self.device_id());
                Ok(())
            }
            Inbound::NotYetServed { type_name, body } if type_name == "meeting" => {
                meeting::handle(self, body, ctx, now_ms, out)
            }
            Inbound::NotYetServed { type_name, body } if type_name == "coding" => {
                coding::handle(self, body, ctx, out)
            }
            Inbound::NotYetServed { type_name, body } if type_name == "workflow" => {
                workflow::handle(self, body, ctx)
            }
            Inbound::NotYetServed { type_name, .. } => Err(Rejection::new(
                type_name.clone(),
                ErrorCode::Unsupported,
                format!("{type_name} messages are not served by this release"),
            )),
        };
        if let Err(rejection) = result {
            self.reject(rejection, now_ms, out);
        }
    }

    /// Sends a text-message error reply and applies the abuse limit.
    pub fn reject(&mut self, rejection: Rejection, now_ms: u64, out: &mut Outbox) {
        self.count_error_reply(rejection.code, now_ms, out);
        out.text(rejection.to_json());
    }

    /// Counts an error reply already written into `out` by a handler whose
    /// reply has its own shape (the `server` admin replies).
    pub fn count_error_reply(&mut self, code: ErrorCode, now_ms: u64, out: &mut Outbox) {
        METRICS.count_error(code);
        if self.abuse.record(now_ms) {
            out.close = Some(CLOSE_POLICY);
        }
    }

    /// One binary frame: returns the Opus payload to hand to the audio path,
    /// if any. Bad frames are dropped with at most one reply per 10 s.
    pub fn on_binary<'f>(
        &mut self,
        frame: &'f [u8],
        ctx: &ServerContext,
        now_ms: u64,
        out: &mut Outbox,
    ) -> Option<&'f [u8]> {
        match framing::decode(self.framing, frame) {
            Ok(packet) if packet.kind == PacketKind::Json => {
                match std::str::from_utf8(packet.payload) {
                    Ok(text) => self.on_text(text, ctx, now_ms, out),
                    Err(_) => self.reject(
                        Rejection::new(
                            "error",
                            ErrorCode::InvalidJson,
                            "JSON payload is not UTF-8",
                        ),
                        now_ms,
                        out,
                    ),
                }
                None
            }
            Ok(packet) => Some(packet.payload),
            Err(FrameError::Empty) => None,
            Err(error) => {
                let code = match error {
                    FrameError::TooLarge { .. } => ErrorCode::TooLarge,
                    FrameError::UnknownType { .. } => ErrorCode::Unsupported,
                    _ => ErrorCode::SchemaInvalid,
                };
                if self.binary_errors.allow(now_ms) {
                    METRICS.count_error(code);
                    out.text(Rejection::new("audio", code, error.describe()).to_json());
                }
                None
            }
        }
    }

    /// An accepted reload: takes effect from the next timer cycle.
    pub fn apply_config(&mut self, config: Arc<Config>, out: &mut Outbox) {
        self.idle.set_settings(IdleSettings::from_config(&config));
        self.config = config;
        out.rearm_idle = true;
    }
}
