//! The event loop of one upgraded device connection (PROTOCOL.md §1, §3):
//! one mio `Poll` over its socket and a `Waker`. Everything another thread
//! wants from this connection arrives as a [`ConnEvent`] in its inbox; the loop
//! never blocks on a read while something waits to be sent, and never does
//! disk, LLM, ASR or webhook I/O itself.

use std::io;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use mio::{Events, Poll, Token};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use super::handle::{ConnEvent, ConnHandle, ConnTimer};
use super::handshake::Prefixed;
use super::stats;
use super::wait::would_block;
use crate::audio::ring::AudioProducer;
use crate::audio::stats::{AUDIO_STATS, mono_ns};
use crate::audio::worker::StreamSettings;
use crate::context::ServerContext;
use crate::metrics::METRICS;
use crate::protocol::framing::{self, PacketKind};
use crate::protocol::outbound;
use crate::session::idle::IdleAction;
use crate::session::playback::Cue;
use crate::session::{CloseRequest, Outbox, Outgoing, Session};
use crate::session::{chat, coding, meeting, transcript, workflow as session_workflow};
use crate::timer::TimerId;

pub const SOCKET: Token = Token(0);
pub const WAKER: Token = Token(1);
/// Messages read per loop turn before the inbox gets a look, so a chatty
/// device cannot starve its own timers and replies.
const READ_BUDGET: usize = 64;
/// Old connection's grace after `replaced` (§1.5).
const REPLACED_CLOSE_MS: u64 = 1_500;
/// How long the close handshake may take (§1.1).
const CLOSE_WAIT_MS: u64 = 5_000;

/// The wheel timers this connection owns; all are cancelled when it ends.
#[derive(Default)]
struct ConnTimers {
    coding: Option<TimerId>,
    transcript: Option<TimerId>,
    checkpoint: Option<TimerId>,
    idle: Option<TimerId>,
    ping: Option<TimerId>,
    replaced_close: Option<TimerId>,
    close_wait: Option<TimerId>,
    /// Only in `workflow.test_mode` with a register snapshot delay.
    register_snapshot: Option<TimerId>,
    /// The next paced packet of a spoken turn.
    playback: Option<TimerId>,
}

pub struct EventLoop {
    ws: WebSocket<Prefixed>,
    poll: Poll,
    events: Events,
    inbox: Receiver<ConnEvent>,
    /// Our own address, cloned into timer callbacks and the registry.
    handle: ConnHandle,
    session: Session,
    ctx: Arc<ServerContext>,
    timers: ConnTimers,
    /// Last time the device sent anything (a pong or any frame): the ping
    /// timeout watches it, since any frame proves the link as well as a pong.
    last_seen_ms: u64,
    /// We sent a close frame and wait for the device's reply (at most 5 s).
    closing: bool,
    /// A newer connection took over the device-id; we are closing in 1.5 s.
    replaced: bool,
    /// This device's end of its audio ring, opened by the first audio packet
    /// or listen boundary. Dropping it tells the worker the stream ended.
    uplink: Option<AudioProducer>,
}

/// Why the loop ended.
enum Flow {
    Continue,
    Done,
}

impl EventLoop {
    pub fn new(
        ws: WebSocket<Prefixed>,
        poll: Poll,
        events: Events,
        inbox: Receiver<ConnEvent>,
        handle: ConnHandle,
        session: Session,
        ctx: Arc<ServerContext>,
    ) -> Self {
        let last_seen_ms = ctx.timers.now_ms();
        let mut session = session;
        session.handle = Some(handle.clone());
        EventLoop {
            ws,
            poll,
            events,
            inbox,
            handle,
            session,
            ctx,
            timers: ConnTimers::default(),
            last_seen_ms,
            closing: false,
            replaced: false,
            uplink: None,
        }
    }

    /// Registers the device, then serves it until the socket closes.
    pub fn run(&mut self) -> io::Result<()> {
        if let Some(displaced) = self.ctx.registry.register(self.handle.clone()) {
            ::log::info!(
                "device {} reconnected: connection {} replaces {}",
                self.session.device_id(),
                self.handle.conn_id,
                displaced.conn_id
            );
            displaced.send(ConnEvent::Replaced);
        }
        stats::broadcast(&self.ctx);
        let now = self.now_ms();
        // §1.5: after the stats broadcast, the device's group snapshot; test
        // mode may delay it to make the register/hello race reproducible.
        let workflow = &self.session.config.workflow;
        if workflow.test_mode && workflow.snapshot_on_register_delay_ms > 0 {
            let delay = std::time::Duration::from_millis(workflow.snapshot_on_register_delay_ms);
            self.timers.register_snapshot =
                Some(self.schedule_in(delay, ConnTimer::RegisterSnapshot));
        } else {
            self.register_snapshot(now);
        }
        self.arm_idle();
        self.arm_ping(now);

        let mut read_pending = true;
        loop {
            let timeout = read_pending.then_some(std::time::Duration::ZERO);
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            for event in self.events.iter() {
                if event.token() == SOCKET && (event.is_readable() || event.is_read_closed()) {
                    read_pending = true;
                }
            }
            if read_pending {
                match self.read_socket()? {
                    (Flow::Done, _) => return Ok(()),
                    (Flow::Continue, more) => read_pending = more,
                }
            }
            while let Ok(event) = self.inbox.try_recv() {
                if let Flow::Done = self.on_event(event)? {
                    return Ok(());
                }
            }
            if let Flow::Done = self.flush()? {
                return Ok(());
            }
        }
    }

    fn register_snapshot(&mut self, now_ms: u64) {
        let mut out = Outbox::default();
        session_workflow::snapshot(
            &mut self.session,
            &self.ctx,
            session_workflow::SnapshotCause::Automatic,
            now_ms,
            &mut out,
        );
        self.apply(out);
    }

    fn now_ms(&self) -> u64 {
        self.ctx.timers.now_ms()
    }

    /// Reads up to [`READ_BUDGET`] messages; the bool says whether more may wait.
    fn read_socket(&mut self) -> io::Result<(Flow, bool)> {
        for _ in 0..READ_BUDGET {
            let message = match self.ws.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(e)) if would_block(&e) => {
                    return Ok((Flow::Continue, false));
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok((Flow::Done, false));
                }
                Err(tungstenite::Error::Capacity(e)) => {
                    ::log::warn!(
                        "device {}: {e}; closing with 1009",
                        self.session.device_id()
                    );
                    self.close(CloseRequest {
                        code: 1009,
                        reason: "message too big",
                    });
                    return Ok((Flow::Continue, true));
                }
                Err(e) => {
                    ::log::info!("device {}: websocket error: {e}", self.session.device_id());
                    return Ok((Flow::Done, false));
                }
            };
            let now = self.now_ms();
            self.last_seen_ms = now;
            let mut out = Outbox::default();
            match message {
                Message::Text(text) => {
                    METRICS
                        .frames_in_text
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !self.closing {
                        self.session
                            .on_text(text.as_str(), &self.ctx, now, &mut out);
                    }
                }
                Message::Binary(frame) => {
                    METRICS
                        .frames_in_binary
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !self.closing {
                        let received_ns = mono_ns();
                        if let Some(opus) = self.session.on_binary(&frame, &self.ctx, now, &mut out)
                        {
                            self.push_audio(opus, received_ns);
                        }
                    }
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    ::log::debug!("device {} sent close {frame:?}", self.session.device_id());
                }
            }
            self.apply(out);
        }
        Ok((Flow::Continue, true))
    }

    fn on_event(&mut self, event: ConnEvent) -> io::Result<Flow> {
        let mut out = Outbox::default();
        match event {
            ConnEvent::SendText(text) => out.frames.push(Outgoing::SharedText(text)),
            ConnEvent::WorkflowSnapshot(text) => {
                self.session.workflow_snapshot_at_ms = Some(self.now_ms());
                out.frames.push(Outgoing::SharedText(text));
            }
            ConnEvent::Timer(timer) => return self.on_timer(timer),
            ConnEvent::Replaced => {
                self.replaced = true;
                out.text(outbound::replaced());
                self.timers.replaced_close = Some(self.schedule_in(
                    std::time::Duration::from_millis(REPLACED_CLOSE_MS),
                    ConnTimer::ReplacedClose,
                ));
            }
            ConnEvent::ConfigReloaded(config) => self.session.apply_config(config, &mut out),
            ConnEvent::Shutdown => {
                out.close = Some(CloseRequest {
                    code: 1001,
                    reason: "server shutting down",
                })
            }
            ConnEvent::VoiceActivity => {
                let now = self.now_ms();
                self.session.idle.activity(now);
                // Barge-in: the user talks over the answer (§3.1).
                if self.session.playback.is_speaking() {
                    ::log::info!(
                        "device {}: voice while speaking, turn aborted",
                        self.session.device_id()
                    );
                    chat::abort(&mut self.session, &mut out);
                }
            }
            ConnEvent::Transcript(transcript) => {
                let now = self.now_ms();
                transcript::on_transcript(&mut self.session, &self.ctx, transcript, now, &mut out);
            }
            ConnEvent::MeetingFinalized(summary) => {
                meeting::on_finalized(&mut self.session, summary, &mut out)
            }
            ConnEvent::Assistant(step) => {
                let now = self.now_ms();
                chat::on_event(&mut self.session, &self.ctx, step, now, &mut out);
            }
            ConnEvent::Rejected(rejection) => {
                let now = self.now_ms();
                self.session.reject(rejection, now, &mut out);
            }
            ConnEvent::McpCall(call) => {
                let now = self.now_ms();
                self.session.mcp.call(call, now, &mut out);
            }
            ConnEvent::AsrFailed(reason) => {
                transcript::on_asr_failed(&mut self.session, &reason, &mut out)
            }
        }
        self.apply(out);
        self.pump_playback();
        Ok(Flow::Continue)
    }

    /// Sends the spoken turn's cues that are due and arms the timer for the
    /// next paced packet.
    fn pump_playback(&mut self) {
        if !self.session.playback.is_pending() {
            return;
        }
        let now = self.now_ms();
        let mut cues = Vec::new();
        let next = self.session.playback.pump(now, &mut cues);
        if !cues.is_empty() && chat::answering_the_user(&self.session) {
            // Playing an answer is activity: a long one is never cut off by the idle timer.
            self.session.idle.activity(now);
        }
        for cue in cues {
            let message = match cue {
                Cue::Text(text) | Cue::Stop(text) => Message::text(text),
                Cue::Audio(packet) => {
                    let mut frame = Vec::with_capacity(packet.len() + 16);
                    framing::encode_into(
                        self.session.framing,
                        PacketKind::Opus,
                        &packet,
                        &mut frame,
                    );
                    Message::binary(frame)
                }
            };
            self.write(message);
        }
        if let Some(due_ms) = next
            && self.timers.playback.is_none()
        {
            self.timers.playback = Some(self.schedule_at(due_ms, ConnTimer::Playback));
        }
    }

    fn on_timer(&mut self, timer: ConnTimer) -> io::Result<Flow> {
        let now = self.now_ms();
        match timer {
            ConnTimer::Idle => {
                self.timers.idle = None;
                let mut out = Outbox::default();
                // An answer being prepared or spoken keeps the device active
                // (the idle goodbye itself does not).
                if chat::answering_the_user(&self.session) {
                    self.session.idle.activity(now);
                }
                match self.session.idle.poll(now) {
                    IdleAction::Nothing => {}
                    IdleAction::Warn { seconds_left } => {
                        out.text(outbound::timeout_warning(seconds_left, false));
                    }
                    IdleAction::FinalWarn { seconds_left } => {
                        out.text(outbound::timeout_warning(seconds_left, true));
                        chat::say_goodbye(&mut self.session, &self.ctx, &mut out);
                    }
                    IdleAction::Close => {
                        METRICS
                            .idle_closes_total
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        ::log::info!("device {} idle: closing", self.session.device_id());
                        if self.session.playback.is_speaking() {
                            chat::abort(&mut self.session, &mut out);
                        }
                        out.close = Some(CloseRequest {
                            code: 1000,
                            reason: "idle timeout",
                        });
                    }
                }
                self.apply(out);
                if !self.closing {
                    self.arm_idle();
                }
            }
            ConnTimer::Ping => {
                self.timers.ping = None;
                let timeout_ms = self.session.config.server.ws_ping_timeout_s * 1000;
                if now.saturating_sub(self.last_seen_ms) > timeout_ms {
                    ::log::info!(
                        "device {} sent nothing for {} ms (pong timeout): dropping",
                        self.session.device_id(),
                        now.saturating_sub(self.last_seen_ms)
                    );
                    return Ok(Flow::Done);
                }
                if !self.closing {
                    self.write(Message::Ping(Default::default()));
                    self.arm_ping(now);
                }
            }
            ConnTimer::ReplacedClose => {
                self.timers.replaced_close = None;
                self.close(CloseRequest {
                    code: 1000,
                    reason: "replaced",
                });
            }
            ConnTimer::CloseWait => {
                self.timers.close_wait = None;
                return Ok(Flow::Done);
            }
            ConnTimer::Playback => {
                self.timers.playback = None;
                self.pump_playback();
            }
            ConnTimer::RegisterSnapshot => {
                self.timers.register_snapshot = None;
                self.register_snapshot(now);
            }
            ConnTimer::CodingInsight => {
                self.timers.coding = None;
                coding::run_insight(&mut self.session, &self.ctx);
            }
            ConnTimer::Checkpoint => {
                self.timers.checkpoint = None;
                meeting::checkpoint(&mut self.session, &self.ctx);
                if self.session.meeting.is_running() {
                    self.arm_checkpoint();
                }
            }
            ConnTimer::TranscriptPush => {
                self.timers.transcript = None;
                let mut out = Outbox::default();
                meeting::push_transcript(&mut self.session, &self.ctx, &mut out);
                self.apply(out);
                if self.session.meeting.is_running() {
                    self.arm_transcript_push();
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// Writes what a handler produced and applies its requests.
    fn apply(&mut self, out: Outbox) {
        // Any handler may have changed the mode; `session` broadcasts read it.
        self.handle
            .set_in_meeting(self.session.mode == Some(crate::protocol::inbound::ModeName::Meeting));
        for frame in out.frames {
            let message = match frame {
                Outgoing::Text(text) => Message::text(text),
                Outgoing::SharedText(text) => Message::text(text.to_string()),
            };
            self.write(message);
        }
        for boundary in out.boundaries {
            let received_ns = mono_ns();
            if let Some(uplink) = self.uplink()
                && uplink.push_boundary(boundary, received_ns).is_err()
            {
                ::log::warn!(
                    "device {}: audio ring full, listen boundary lost",
                    self.session.device_id()
                );
            }
        }
        if (out.cancel_coding_timer || out.coding_trigger == coding::InsightTrigger::Now)
            && let Some(id) = self.timers.coding.take()
        {
            self.ctx.timers.cancel(id);
        }
        match out.coding_trigger {
            coding::InsightTrigger::None => {}
            coding::InsightTrigger::Now => coding::run_insight(&mut self.session, &self.ctx),
            coding::InsightTrigger::Debounce => {
                if let Some(id) = self.timers.coding.take() {
                    self.ctx.timers.cancel(id);
                }
                let debounce_ms = self.session.config.coding.insight_debounce_ms.max(300);
                self.timers.coding = Some(self.schedule_in(
                    std::time::Duration::from_millis(debounce_ms),
                    ConnTimer::CodingInsight,
                ));
            }
        }
        if out.stop_meeting_timers {
            for id in [self.timers.transcript.take(), self.timers.checkpoint.take()]
                .into_iter()
                .flatten()
            {
                self.ctx.timers.cancel(id);
            }
        }
        if out.start_meeting_timers && self.timers.transcript.is_none() {
            self.arm_transcript_push();
            self.arm_checkpoint();
        }
        if out.rearm_idle && !self.closing {
            self.arm_idle();
        }
        if let Some(close) = out.close {
            self.close(close);
        }
    }

    fn write(&mut self, message: Message) {
        if self.closing {
            return;
        }
        let is_text = message.is_text();
        match self.ws.write(message) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if would_block(&e) => {}
            Err(tungstenite::Error::WriteBufferFull(_)) => {
                METRICS
                    .events_dropped_total
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ::log::warn!(
                    "device {} is not reading: frame dropped",
                    self.session.device_id()
                );
                return;
            }
            Err(e) => {
                ::log::debug!("device {}: write failed: {e}", self.session.device_id());
                return;
            }
        }
        let counter = if is_text {
            &METRICS.frames_out_text
        } else {
            &METRICS.frames_out_binary
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn flush(&mut self) -> io::Result<Flow> {
        match self.ws.flush() {
            Ok(()) => Ok(Flow::Continue),
            Err(tungstenite::Error::Io(e)) if would_block(&e) => Ok(Flow::Continue),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Ok(Flow::Done)
            }
            Err(e) => {
                ::log::debug!("device {}: flush failed: {e}", self.session.device_id());
                Ok(Flow::Done)
            }
        }
    }

    /// Starts the close handshake; the socket goes when the device answers or after 5 s.
    fn close(&mut self, request: CloseRequest) {
        if self.closing {
            return;
        }
        ::log::info!(
            "closing device {} with {} {}",
            self.session.device_id(),
            request.code,
            request.reason
        );
        let frame = CloseFrame {
            code: CloseCode::from(request.code),
            reason: request.reason.into(),
        };
        if let Err(e) = self.ws.close(Some(frame))
            && !matches!(&e, tungstenite::Error::Io(io) if would_block(io))
        {
            ::log::debug!("device {}: close failed: {e}", self.session.device_id());
        }
        self.closing = true;
        self.timers.close_wait = Some(self.schedule_in(
            std::time::Duration::from_millis(CLOSE_WAIT_MS),
            ConnTimer::CloseWait,
        ));
    }

    /// A wheel timer that comes back to this connection as `ConnEvent::Timer(timer)`.
    fn schedule_in(&self, delay: std::time::Duration, timer: ConnTimer) -> TimerId {
        let handle = self.handle.clone();
        self.ctx.timers.schedule_in(delay, move || {
            handle.send(ConnEvent::Timer(timer));
        })
    }

    fn schedule_at(&self, deadline_ms: u64, timer: ConnTimer) -> TimerId {
        let handle = self.handle.clone();
        self.ctx.timers.schedule_at(deadline_ms, move || {
            handle.send(ConnEvent::Timer(timer));
        })
    }

    fn arm_idle(&mut self) {
        if let Some(id) = self.timers.idle.take() {
            self.ctx.timers.cancel(id);
        }
        self.timers.idle = Some(self.schedule_at(self.session.idle.next_wake(), ConnTimer::Idle));
    }

    fn arm_ping(&mut self, now: u64) {
        let interval_ms = self.session.config.server.ws_ping_interval_s * 1000;
        self.timers.ping = Some(self.schedule_at(now + interval_ms, ConnTimer::Ping));
    }

    /// The next transcript push. The interval is read at the start of each
    /// cycle, so a reload applies from the next one.
    fn arm_transcript_push(&mut self) {
        let interval_ms = self.session.config.meeting.transcript_push_interval_ms;
        ::log::debug!(
            "device {} meeting {}: next interval={interval_ms}ms",
            self.session.device_id(),
            self.session.meeting.session_id
        );
        self.timers.transcript = Some(self.schedule_in(
            std::time::Duration::from_millis(interval_ms),
            ConnTimer::TranscriptPush,
        ));
    }

    fn arm_checkpoint(&mut self) {
        let interval = std::time::Duration::from_secs(
            self.session.config.meeting.checkpoint_interval_min * 60,
        );
        self.timers.checkpoint = Some(self.schedule_in(interval, ConnTimer::Checkpoint));
    }

    /// The device's uplink, opened on first use.
    fn uplink(&mut self) -> Option<&mut AudioProducer> {
        if self.uplink.is_none() {
            let settings =
                StreamSettings::from_config(&self.session.config, self.session.listen.mode);
            self.uplink = self.ctx.audio.open_stream(self.handle.clone(), settings);
        }
        self.uplink.as_mut()
    }

    /// Hands one Opus packet to the audio worker; a full ring drops it (counted per device).
    fn push_audio(&mut self, opus: &[u8], received_ns: u64) {
        let pushed = match self.uplink() {
            Some(uplink) => uplink.push_opus(opus, received_ns).is_ok(),
            None => false,
        };
        if !pushed {
            AUDIO_STATS.count_drop(self.session.device_id());
        }
    }

    /// Cancels every timer, leaves the registry and tells the others.
    pub fn finish(&mut self) {
        // Ends the audio stream: the worker flushes what is queued, then closes it.
        self.uplink = None;
        // A running meeting is suspended: its journal stays for a resume.
        let meeting = &mut self.session.meeting;
        if meeting.is_running() {
            self.ctx.meetings.suspend(
                &meeting.session_id,
                &self.session.identity.device_id,
                meeting.started_at,
                std::mem::take(&mut meeting.segments),
                meeting.checkpoint_count,
            );
        }
        let timers = std::mem::take(&mut self.timers);
        for id in [
            timers.coding,
            timers.transcript,
            timers.checkpoint,
            timers.idle,
            timers.ping,
            timers.replaced_close,
            timers.close_wait,
            timers.register_snapshot,
            timers.playback,
        ]
        .into_iter()
        .flatten()
        {
            self.ctx.timers.cancel(id);
        }
        let _ = self.ws.flush();
        let removed = self
            .ctx
            .registry
            .unregister(self.session.device_id(), self.handle.conn_id);
        ::log::info!(
            "device {} disconnected (connection {}{})",
            self.session.device_id(),
            self.handle.conn_id,
            if self.replaced { ", replaced" } else { "" }
        );
        if removed {
            stats::broadcast(&self.ctx);
        }
    }
}
