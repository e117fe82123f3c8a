//! Replies the server gives on its own when the LLM is absent or failed: a
//! badge always gets an answer, in the user's language.

/// True when `text` holds any CJK ideograph: the user speaks Chinese.
pub fn is_chinese(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF))
}

/// Working mode: the utterance was neither a task command nor answered by an
/// LLM, so say what the board understands.
pub fn working_hint(utterance: &str) -> &'static str {
    if is_chinese(utterance) {
        "没有听懂这个任务指令。可以说“认领第二个任务”、“完成任务第一个”或“刷新任务”。"
    } else {
        "I did not catch a task command. Try \"claim task two\", \"mark task one done\" or \"refresh\"."
    }
}

/// Any other mode: the assistant cannot answer right now.
pub fn chat_unavailable(utterance: &str) -> &'static str {
    if is_chinese(utterance) {
        "抱歉，我现在无法回答，请稍后再试。"
    } else {
        "Sorry, I cannot answer right now. Please try again later."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_follows_the_speakers_language() {
        assert!(is_chinese(working_hint("今天天气怎么样")));
        assert!(!is_chinese(working_hint("what's the weather like")));
        assert!(is_chinese(chat_unavailable("你好")));
    }
}
