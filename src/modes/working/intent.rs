//! Intent recognition for working-mode utterances that no command phrase
//! matched (PROTOCOL.md §3.1 step 5, §3.4): the `intent` LLM sees the
//! utterance and the group's open tasks, numbered the way a spoken index
//! counts them, and answers in JSON whether the user meant assign, complete
//! or refresh (and which task), or just wants to talk.
//!
//! Only the prompt and the parsing live here; the call runs on the assistant
//! workers ([`crate::modes::chat::service`]), never on a connection thread.

use serde_json::Value;

use super::commands::{CommandIntent, VoiceCommand, open_tasks_in_order};
use crate::llm::client::ChatMessage;

/// Open tasks listed in the prompt: a spoken index rarely goes past ten, and
/// the prompt stays small for a fast answer.
const PROMPT_TASKS: usize = 10;
/// Longest task title quoted in the prompt, in characters.
const TITLE_CHARS: usize = 60;

const SYSTEM_PROMPT: &str = "You route voice commands for a team task board. \
The user spoke one utterance to their badge. Decide whether it asks to claim (assign) a task, \
mark a task done (complete), reload the task list (refresh), or is anything else (chat). \
Answer with JSON only, no prose: {\"intent\":\"assign|complete|refresh|chat\",\"task\":N} \
where N is the number of the open task meant (from the numbered list), or null when no \
particular task was named.";

/// What the intent LLM decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// A task command, to be carried out like a matched phrase.
    Command(VoiceCommand),
    /// Not a task command: the utterance goes on to chat.
    Chat,
}

/// The conversation sent to the intent LLM for `utterance`, given the
/// sender's group's tasks in storage order.
pub fn intent_messages(utterance: &str, group_tasks: &[Value]) -> Vec<ChatMessage> {
    let open = open_tasks_in_order(group_tasks);
    let mut listing = String::from("Open tasks:\n");
    if open.is_empty() {
        listing.push_str("(none)\n");
    }
    for (n, task) in open.iter().take(PROMPT_TASKS).enumerate() {
        let title: String = task
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("(untitled)")
            .chars()
            .take(TITLE_CHARS)
            .collect();
        listing.push_str(&format!("{}. {title}\n", n + 1));
    }
    vec![
        ChatMessage::system(SYSTEM_PROMPT),
        ChatMessage::user(format!("{listing}\nUtterance: {utterance}")),
    ]
}

/// Reads the LLM's answer: a JSON object (possibly inside a ```json fence or
/// surrounded by prose) with `intent` and an optional `task` number. `None`
/// when the answer is not usable, which the caller treats like `Chat`.
pub fn parse_intent(answer: &str) -> Option<Intent> {
    let start = answer.find('{')?;
    let end = answer.rfind('}')?;
    let object: Value = serde_json::from_str(answer.get(start..=end)?).ok()?;
    let intent = match object
        .get("intent")?
        .as_str()?
        .trim()
        .to_lowercase()
        .as_str()
    {
        "assign" | "claim" => CommandIntent::Assign,
        "complete" | "done" | "finish" => CommandIntent::Complete,
        "refresh" | "list" => CommandIntent::Refresh,
        "chat" | "none" | "other" => return Some(Intent::Chat),
        _ => return None,
    };
    let index = match (intent, object.get("task")) {
        (CommandIntent::Refresh, _) => None,
        (_, Some(Value::Number(n))) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        (_, Some(Value::String(s))) => s.trim().parse().ok(),
        _ => None,
    };
    Some(Intent::Command(VoiceCommand { intent, index }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_prompt_numbers_open_tasks_as_a_spoken_index_counts_them() {
        let tasks = [
            json!({"id":"T-3","title":"low","priority":3}),
            json!({"id":"T-1","title":"urgent","priority":0}),
            json!({"id":"T-2","title":"finished","priority":1,"status":"done"}),
        ];
        let messages = intent_messages("finish the urgent one", &tasks);
        let user = &messages[1].content;
        assert!(user.contains("1. urgent\n2. low\n"), "{user}");
        assert!(!user.contains("finished"));
        assert!(user.ends_with("Utterance: finish the urgent one"));
    }

    #[test]
    fn answers_are_read_leniently_but_unknown_intents_are_refused() {
        assert_eq!(
            parse_intent("```json\n{\"intent\":\"complete\",\"task\":2}\n```"),
            Some(Intent::Command(VoiceCommand {
                intent: CommandIntent::Complete,
                index: Some(2)
            }))
        );
        assert_eq!(
            parse_intent(r#"{"intent":"assign","task":null}"#),
            Some(Intent::Command(VoiceCommand {
                intent: CommandIntent::Assign,
                index: None
            }))
        );
        assert_eq!(
            parse_intent(r#"{"intent":"refresh","task":4}"#),
            Some(Intent::Command(VoiceCommand {
                intent: CommandIntent::Refresh,
                index: None
            }))
        );
        assert_eq!(parse_intent(r#"{"intent":"chat"}"#), Some(Intent::Chat));
        assert_eq!(parse_intent(r#"{"intent":"dance"}"#), None);
        assert_eq!(parse_intent("sure, I can help"), None);
    }
}
