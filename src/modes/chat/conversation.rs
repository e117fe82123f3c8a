//! One connection's conversation history. Owned by the connection thread; a
//! turn takes a copy of it to the assistant workers and the answer is added
//! when it comes back, so nothing here is shared or locked.

use std::collections::VecDeque;

use crate::llm::client::ChatMessage;

/// Characters of history sent with a turn. A rough stand-in for a token
/// budget (a CJK character is about one token, English about four per
/// token), small enough that a 2-core box's local model answers quickly.
pub const HISTORY_CHAR_BUDGET: usize = 2_000;

#[derive(Debug, Default, Clone)]
pub struct Conversation {
    /// Oldest first; user and assistant messages alternate. Invariant: the
    /// total content length stays within [`HISTORY_CHAR_BUDGET`] after every
    /// [`Conversation::record`], dropping whole exchanges from the front.
    messages: VecDeque<ChatMessage>,
    chars: usize,
}

impl Conversation {
    /// The history to send before the next user message.
    pub fn history(&self) -> Vec<ChatMessage> {
        self.messages.iter().cloned().collect()
    }

    /// Adds one finished exchange and trims the oldest ones over budget.
    pub fn record(&mut self, user: &str, assistant: &str) {
        for message in [ChatMessage::user(user), ChatMessage::assistant(assistant)] {
            self.chars += message.content.chars().count();
            self.messages.push_back(message);
        }
        while self.chars > HISTORY_CHAR_BUDGET {
            let Some(dropped) = self.messages.pop_front() else {
                self.chars = 0;
                break;
            };
            self.chars -= dropped.content.chars().count();
        }
    }

    pub fn clear(&mut self) {
        self.messages.clear();
        self.chars = 0;
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_newest_exchanges_within_the_budget() {
        let mut conversation = Conversation::default();
        conversation.record("first question", "first answer");
        assert_eq!(conversation.history().len(), 2);
        let long = "x".repeat(HISTORY_CHAR_BUDGET / 2);
        conversation.record(&long, &long);
        let history = conversation.history();
        let total: usize = history.iter().map(|m| m.content.chars().count()).sum();
        assert!(total <= HISTORY_CHAR_BUDGET, "{total}");
        assert!(history.iter().all(|m| m.content != "first question"));
        assert_eq!(
            history.last().map(|m| m.content.as_str()),
            Some(long.as_str())
        );
    }
}
