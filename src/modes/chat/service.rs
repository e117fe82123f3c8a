//! The assistant workers: a small fixed pool that runs the LLM calls of a
//! turn (intent first in working mode, then chat) so no connection thread
//! ever waits on an LLM. Each job answers with exactly one
//! [`ConnEvent::AssistantReply`] — a task command, an LLM answer or a
//! fallback text — so a badge is never left without a reply.
//!
//! Contract: [`AssistantService::submit`] never blocks; when the queue is
//! full the job is answered at once with the fallback text instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use serde_json::Value;

use super::fallback;
use crate::config::Config;
use crate::llm::client::{ChatMessage, ChatOptions};
use crate::llm::resolve::{LlmPurpose, LlmRegistry};
use crate::modes::working::commands::VoiceCommand;
use crate::modes::working::intent::{Intent, intent_messages, parse_intent};
use crate::net::handle::{ConnEvent, ConnHandle};

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

const WORKING_PROMPT: &str = "You are the voice assistant on a team member's badge while they work \
through their team's task board. Answer in one or two short spoken sentences, in the language the \
user spoke, without markdown or lists.";
const CHAT_PROMPT: &str = "You are a friendly voice assistant on a small badge. Answer in one to \
three short spoken sentences, in the language the user spoke, without markdown or lists.";

/// One utterance to answer.
pub struct ReplyJob {
    pub origin: ConnHandle,
    pub config: Arc<Config>,
    pub utterance: String,
    /// `Working` asks the intent LLM first; `Chat` goes straight to chat.
    pub purpose: LlmPurpose,
    /// Earlier exchanges of this connection, oldest first.
    pub history: Vec<ChatMessage>,
    /// Working mode: the sender's group's tasks in storage order, for the intent prompt.
    pub group_tasks: Vec<Value>,
    /// The connection's turn counter when the job was made: a reply for an
    /// older turn (aborted, or overtaken) is dropped by the connection.
    pub turn: u64,
}

/// What a job produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The intent LLM recognized a task command.
    Command(VoiceCommand),
    /// Words to say back: the LLM's answer, or a fallback when it had none.
    Text { text: String, from_llm: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistantReply {
    pub turn: u64,
    pub utterance: String,
    pub outcome: ReplyOutcome,
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
                        let reply = answer(&job);
                        job.origin.send(ConnEvent::AssistantReply(reply));
                    }
                });
            if let Err(e) = spawned {
                ::log::error!("cannot start assistant worker {index}: {e}");
            }
        }
        AssistantService { jobs }
    }

    /// Queues a turn; when the workers are saturated the device gets the
    /// fallback text at once rather than silence.
    pub fn submit(&self, job: ReplyJob) {
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) =
            self.jobs.try_send(job)
        {
            ::log::warn!(
                "assistant busy: {} gets the fallback reply",
                job.origin.device_id
            );
            let text = fallback_text(&job).to_string();
            job.origin.send(ConnEvent::AssistantReply(AssistantReply {
                turn: job.turn,
                utterance: job.utterance,
                outcome: ReplyOutcome::Text {
                    text,
                    from_llm: false,
                },
            }));
        }
    }
}

fn fallback_text(job: &ReplyJob) -> &'static str {
    match job.purpose {
        LlmPurpose::Working => fallback::working_hint(&job.utterance),
        _ => fallback::chat_unavailable(&job.utterance),
    }
}

/// Runs one job to its single outcome.
pub fn answer(job: &ReplyJob) -> AssistantReply {
    let reply = |outcome| AssistantReply {
        turn: job.turn,
        utterance: job.utterance.clone(),
        outcome,
    };
    if job.purpose == LlmPurpose::Working
        && job.config.selected_module.intent == "llm"
        && let Some(Intent::Command(command)) = recognize_intent(job)
    {
        return reply(ReplyOutcome::Command(command));
    }
    let outcome = match chat(job) {
        Some(text) => ReplyOutcome::Text {
            text,
            from_llm: true,
        },
        None => ReplyOutcome::Text {
            text: fallback_text(job).to_string(),
            from_llm: false,
        },
    };
    reply(outcome)
}

fn recognize_intent(job: &ReplyJob) -> Option<Intent> {
    let client = LlmRegistry::global().resolve(&job.config, LlmPurpose::Intent)?;
    let options = ChatOptions {
        max_tokens: Some(INTENT_MAX_TOKENS),
        temperature: Some(0.0),
        timeout: None,
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

/// The chat LLM's answer, trimmed; `None` when there is no LLM, it failed or
/// it said nothing.
fn chat(job: &ReplyJob) -> Option<String> {
    let client = LlmRegistry::global().resolve(&job.config, job.purpose)?;
    let prompt = match job.purpose {
        LlmPurpose::Working => WORKING_PROMPT,
        _ => CHAT_PROMPT,
    };
    let mut messages = Vec::with_capacity(job.history.len() + 2);
    messages.push(ChatMessage::system(prompt));
    messages.extend(job.history.iter().cloned());
    messages.push(ChatMessage::user(job.utterance.clone()));
    let options = ChatOptions {
        max_tokens: Some(CHAT_MAX_TOKENS),
        ..ChatOptions::default()
    };
    match client.chat(&messages, &options, Instant::now() + CHAT_DEADLINE) {
        Ok(answer) => {
            let text = answer.content.trim().to_string();
            ::log::info!(
                "{} reply for {} by {}: {} chars ({} ms)",
                job.purpose,
                job.origin.device_id,
                client.name(),
                text.chars().count(),
                answer.elapsed.as_millis()
            );
            (!text.is_empty()).then_some(text)
        }
        Err(e) => {
            ::log::warn!(
                "{} reply for {} failed ({e}); sending the fallback",
                job.purpose,
                job.origin.device_id
            );
            None
        }
    }
}
