//! The assistant workers: a small fixed pool that runs a spoken turn's slow
//! parts — the intent LLM in working mode, the streamed chat LLM, the
//! device's MCP tools it asks for, TTS and Opus encoding — so no connection
//! thread ever waits on them. A turn reaches its connection as a sequence of
//! [`AssistantEvent`]s: a task command, or sentences (text plus their Opus
//! packets) and then exactly one `Done`, which is what lets the connection
//! always end the turn with `tts stop`.
//!
//! Contract: [`AssistantService::submit`] never blocks; when the queue is
//! full the turn is answered at once with the fallback text. A job whose
//! turn is no longer the connection's current one (abort, barge-in, a newer
//! turn) stops at the next streamed delta or sentence and sends nothing more.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use serde_json::Value;

use super::emotion::{self, Emotion};
use super::fallback;
use super::sentences::SentenceSplitter;
use crate::config::Config;
use crate::llm::client::{ChatMessage, ChatOptions, LlmError};
use crate::llm::resolve::{LlmPurpose, LlmRegistry};
use crate::modes::working::commands::VoiceCommand;
use crate::modes::working::intent::{Intent, intent_messages, parse_intent};
use crate::net::handle::{ConnEvent, ConnHandle};
use crate::tts::notify::{self, NotifyPackets};
use crate::tts::{SpeechEncoder, Tts};

/// Two workers: one slow LLM answer must not queue every other device's turn,
/// and a 2-core box gains nothing from more threads that mostly wait on I/O.
const WORKERS: usize = 2;
const QUEUE: usize = 64;
/// An intent answer is a few tokens; past this the utterance goes to chat.
const INTENT_DEADLINE: Duration = Duration::from_secs(8);
const INTENT_MAX_TOKENS: u32 = 40;
/// A spoken answer is short; a stuck LLM must still end the turn.
const CHAT_DEADLINE: Duration = Duration::from_secs(30);
const CHAT_MAX_TOKENS: u32 = 300;
/// Per sentence: espeak needs milliseconds, a remote TTS may need seconds.
const TTS_DEADLINE: Duration = Duration::from_secs(15);
/// PROTOCOL.md §3.1: a device tool call times out after 10 s.
pub const MCP_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// LLM ↔ tool round trips per turn, so a model looping on tools still ends.
const MAX_TOOL_ROUNDS: usize = 3;

const WORKING_PROMPT: &str = "You are the voice assistant on a team member's badge while they work \
through their team's task board. Answer in one or two short spoken sentences, in the language the \
user spoke, without markdown or lists.";
const CHAT_PROMPT: &str = "You are a friendly voice assistant on a small badge. Answer in one to \
three short spoken sentences, in the language the user spoke, without markdown or lists. Begin with one \
emoji that shows how you feel (🙂 😆 😂 🤔 😲 😔 😌 😉 😎); use no other emoji.";

/// One utterance to answer.
pub struct ReplyJob {
    pub origin: ConnHandle,
    pub config: Arc<Config>,
    pub utterance: String,
    /// `Working` asks the intent LLM first; other purposes go straight to chat.
    pub purpose: LlmPurpose,
    /// Replaces the purpose's system prompt (a greeting, a goodbye).
    pub system_prompt: Option<String>,
    /// Earlier exchanges of this connection, oldest first.
    pub history: Vec<ChatMessage>,
    /// Working mode: the sender's group's tasks in storage order, for the intent prompt.
    pub group_tasks: Vec<Value>,
    /// This turn's number.
    pub turn: u64,
    /// The connection's current turn number: when it differs from `turn`
    /// the turn was aborted or superseded and the job stops.
    pub gate: Arc<AtomicU64>,
    /// Synthesize speech (a TTS is configured and the mode does not mute it).
    pub speak: bool,
    /// The device's MCP tools as OpenAI function tools; empty when it has none.
    pub tools: Vec<Value>,
}

impl ReplyJob {
    fn cancelled(&self) -> bool {
        self.gate.load(Ordering::Acquire) != self.turn
    }
}

/// What a turn sends its connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssistantEvent {
    /// The intent LLM recognized a task command; the turn ends here.
    Command { turn: u64, command: VoiceCommand },
    /// One sentence to show and, when `packets` is not empty, to play
    /// (60 ms Opus packets, 16 kHz mono, without binary framing).
    Sentence {
        turn: u64,
        text: String,
        packets: Vec<Vec<u8>>,
        /// The badge's face: the first emotion emoji of the answer so far
        /// (the sentence text has its emoji removed); shown at the first
        /// sentence of the turn.
        emotion: Emotion,
    },
    /// The answer is complete. `reply` is the LLM's whole answer for the
    /// conversation history; `None` when a fallback spoke instead.
    Done {
        turn: u64,
        utterance: String,
        reply: Option<String>,
        /// `chat.enable_stop_tts_notify`'s sound, to play before `tts stop`
        /// (loaded here, off the connection thread).
        notify: Option<NotifyPackets>,
    },
}

impl AssistantEvent {
    pub fn turn(&self) -> u64 {
        match self {
            AssistantEvent::Command { turn, .. }
            | AssistantEvent::Sentence { turn, .. }
            | AssistantEvent::Done { turn, .. } => *turn,
        }
    }
}

/// A device tool call the LLM asked for, to be sent by the connection
/// (`tools/call` with its next id); the answer goes back on `reply`.
#[derive(Debug)]
pub struct McpCall {
    pub name: String,
    pub arguments: Value,
    pub reply: Sender<Result<Value, String>>,
}

pub struct AssistantService {
    jobs: Sender<ReplyJob>,
}

impl AssistantService {
    pub fn start() -> AssistantService {
        let (jobs, queue) = crossbeam_channel::bounded::<ReplyJob>(QUEUE);
        for index in 0..WORKERS {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("assistant-{index}"))
                .spawn(move || {
                    for job in queue.iter() {
                        run(&job);
                    }
                });
            if let Err(e) = spawned {
                ::log::error!("cannot start assistant worker {index}: {e}");
            }
        }
        AssistantService { jobs }
    }

    /// Queues a turn; when the workers are saturated the device gets the
    /// fallback text at once (unspoken) rather than silence.
    pub fn submit(&self, job: ReplyJob) {
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) =
            self.jobs.try_send(job)
        {
            ::log::warn!(
                "assistant busy: {} gets the fallback reply",
                job.origin.device_id
            );
            let text = fallback_text(&job).to_string();
            send(
                &job,
                AssistantEvent::Sentence {
                    turn: job.turn,
                    text,
                    packets: Vec::new(),
                    emotion: emotion::DEFAULT,
                },
            );
            // This is the device's own thread: no notify sound (loading one reads and decodes a file).
            send(&job, done(&job, None, None));
        }
    }
}

fn send(job: &ReplyJob, event: AssistantEvent) {
    job.origin.send(ConnEvent::Assistant(event));
}

/// Ends the turn from an assistant worker, with the notify sound when it is configured.
fn finish(job: &ReplyJob, reply: Option<String>) {
    let chat = &job.config.chat;
    let notify = (job.speak && chat.enable_stop_tts_notify)
        .then(|| notify::sound(&chat.stop_tts_notify_voice))
        .flatten();
    send(job, done(job, reply, notify));
}

fn done(job: &ReplyJob, reply: Option<String>, notify: Option<NotifyPackets>) -> AssistantEvent {
    AssistantEvent::Done {
        turn: job.turn,
        utterance: job.utterance.clone(),
        reply,
        notify,
    }
}

fn fallback_text(job: &ReplyJob) -> &'static str {
    match job.purpose {
        LlmPurpose::Working => fallback::working_hint(&job.utterance),
        _ => fallback::chat_unavailable(&job.utterance),
    }
}

/// Runs one turn: a command, or sentences then `Done` (unless cancelled).
pub fn run(job: &ReplyJob) {
    if job.cancelled() {
        return;
    }
    if job.purpose == LlmPurpose::Working
        && job.config.selected_module.intent == "llm"
        && let Some(Intent::Command(command)) = recognize_intent(job)
    {
        send(
            job,
            AssistantEvent::Command {
                turn: job.turn,
                command,
            },
        );
        return;
    }
    if job.cancelled() {
        return;
    }
    let mut speaker = Speaker::new(job);
    match chat(job, &mut speaker) {
        Ok(reply) => {
            if !speaker.cancelled {
                finish(job, Some(reply));
            }
        }
        Err(e) => {
            if job.cancelled() {
                return;
            }
            ::log::warn!(
                "{} turn for {} failed ({e}); {}",
                job.purpose,
                job.origin.device_id,
                if speaker.sentences == 0 {
                    "sending the fallback"
                } else {
                    "ending the turn"
                }
            );
            if speaker.sentences == 0 {
                speaker.say(fallback_text(job));
            }
            finish(job, None);
        }
    }
}

fn recognize_intent(job: &ReplyJob) -> Option<Intent> {
    let client = LlmRegistry::global().resolve(&job.config, LlmPurpose::Intent)?;
    let options = ChatOptions {
        max_tokens: Some(INTENT_MAX_TOKENS),
        temperature: Some(0.0),
        ..ChatOptions::default()
    };
    let messages = intent_messages(&job.utterance, &job.group_tasks);
    match client.chat(&messages, &options, Instant::now() + INTENT_DEADLINE) {
        Ok(answer) => {
            let intent = parse_intent(&answer.content);
            ::log::info!(
                "intent for {} by {}: {:?} ({} ms)",
                job.origin.device_id,
                client.name(),
                intent,
                answer.elapsed.as_millis()
            );
            intent
        }
        Err(e) => {
            ::log::warn!(
                "intent for {} failed ({e}); trying chat",
                job.origin.device_id
            );
            None
        }
    }
}

/// Turns the streamed answer into sentences, speaks each one and sends it.
struct Speaker<'j> {
    job: &'j ReplyJob,
    splitter: SentenceSplitter,
    tts: Option<(Arc<dyn Tts>, SpeechEncoder)>,
    /// The first emotion emoji seen in the raw answer: the splitter strips
    /// emoji from sentences, so it is looked for before splitting.
    emotion: Option<Emotion>,
    sentences: usize,
    /// The turn stopped being current while we streamed.
    cancelled: bool,
}

impl<'j> Speaker<'j> {
    fn new(job: &'j ReplyJob) -> Self {
        let tts = job
            .speak
            .then(|| crate::tts::resolve(&job.config))
            .flatten()
            .and_then(|tts| match SpeechEncoder::new() {
                Ok(encoder) => Some((tts, encoder)),
                Err(e) => {
                    ::log::warn!("no Opus encoder for speech ({e}); answering in text");
                    None
                }
            });
        Speaker {
            job,
            splitter: SentenceSplitter::default(),
            tts,
            emotion: None,
            sentences: 0,
            cancelled: false,
        }
    }

    /// One streamed piece of the answer; `Break` once the turn is cancelled.
    fn delta(&mut self, delta: &str) -> ControlFlow<()> {
        if self.emotion.is_none() {
            self.emotion = emotion::first_in(delta);
        }
        for sentence in self.splitter.push(delta) {
            self.say(&sentence);
        }
        if self.job.cancelled() {
            self.cancelled = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Whatever the splitter still holds.
    fn flush(&mut self) {
        if let Some(rest) = self.splitter.finish() {
            self.say(&rest);
        }
    }

    fn say(&mut self, text: &str) {
        if self.cancelled || self.job.cancelled() {
            self.cancelled = true;
            return;
        }
        let packets = match &mut self.tts {
            Some((tts, encoder)) => {
                let spoken = tts
                    .synthesize(text, Instant::now() + TTS_DEADLINE)
                    .map_err(|e| e.to_string())
                    .and_then(|pcm| encoder.encode(&pcm).map_err(|e| e.to_string()));
                spoken.unwrap_or_else(|e| {
                    // The text still goes out: the badge shows it.
                    ::log::warn!("TTS by {} failed ({e}); sentence sent as text", tts.name());
                    Vec::new()
                })
            }
            None => Vec::new(),
        };
        self.sentences += 1;
        send(
            self.job,
            AssistantEvent::Sentence {
                turn: self.job.turn,
                text: text.to_string(),
                packets,
                emotion: self.emotion.unwrap_or(emotion::DEFAULT),
            },
        );
    }
}

/// The streamed chat answer, spoken sentence by sentence as it arrives; the
/// device's tools are called when the LLM asks for them. Returns the whole
/// answer text.
fn chat(job: &ReplyJob, speaker: &mut Speaker) -> Result<String, LlmError> {
    let Some(client) = LlmRegistry::global().resolve(&job.config, job.purpose) else {
        return Err(LlmError::Unavailable("no LLM configured".into()));
    };
    let prompt = job.system_prompt.as_deref().unwrap_or(match job.purpose {
        LlmPurpose::Working => WORKING_PROMPT,
        _ => CHAT_PROMPT,
    });
    let mut messages = Vec::with_capacity(job.history.len() + 2);
    messages.push(ChatMessage::system(prompt));
    messages.extend(job.history.iter().cloned());
    messages.push(ChatMessage::user(job.utterance.clone()));
    let options = ChatOptions {
        max_tokens: Some(CHAT_MAX_TOKENS),
        tools: job.tools.clone(),
        ..ChatOptions::default()
    };
    let deadline = Instant::now() + CHAT_DEADLINE;
    let mut answer = String::new();
    for round in 0..=MAX_TOOL_ROUNDS {
        let reply = client.chat_stream(&messages, &options, deadline, &mut |delta| {
            speaker.delta(delta)
        })?;
        answer.push_str(&reply.content);
        if reply.tool_calls.is_empty() || round == MAX_TOOL_ROUNDS {
            // The answer's tail without a sentence end is spoken before the
            // count is logged, so the log matches what the badge got.
            speaker.flush();
            ::log::info!(
                "{} reply for {} by {}: {} chars, {} sentences ({} ms)",
                job.purpose,
                job.origin.device_id,
                client.name(),
                answer.chars().count(),
                speaker.sentences,
                reply.elapsed.as_millis()
            );
            return Ok(answer.trim().to_string());
        }
        messages.push(ChatMessage::assistant_tool_calls(reply.tool_calls.clone()));
        for call in &reply.tool_calls {
            let result = call_device_tool(job, &call.name, &call.arguments);
            messages.push(ChatMessage::tool_result(call.id.clone(), result));
        }
        if job.cancelled() {
            return Err(LlmError::Cancelled);
        }
    }
    Ok(answer.trim().to_string())
}

/// Asks the device to run one of its MCP tools; the result (or the error)
/// as the text the LLM reads back.
fn call_device_tool(job: &ReplyJob, name: &str, arguments: &str) -> String {
    let arguments: Value =
        serde_json::from_str(arguments).unwrap_or(Value::Object(Default::default()));
    let (reply, answer) = crossbeam_channel::bounded(1);
    let call = McpCall {
        name: name.to_string(),
        arguments,
        reply,
    };
    if !job.origin.send(ConnEvent::McpCall(call)) {
        return format!("{{\"error\":\"device unreachable for tool {name}\"}}");
    }
    match answer.recv_timeout(MCP_CALL_TIMEOUT) {
        Ok(Ok(result)) => result.to_string(),
        Ok(Err(message)) => serde_json::json!({"error": message}).to_string(),
        Err(_) => {
            ::log::warn!(
                "device {} did not answer tools/call {name} within {} s",
                job.origin.device_id,
                MCP_CALL_TIMEOUT.as_secs()
            );
            serde_json::json!({"error": format!("tool {name} timed out")}).to_string()
        }
    }
}
