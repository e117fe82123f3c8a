//! Cutting a streamed LLM answer into speakable sentences (PROTOCOL.md §3.1: one `sentence_start` / audio /
//! `sentence_end` group per sentence), so the first sentence is spoken while the rest is still being generated.
//!
//! Cuts fall after `。！？；!?;`, after a newline, and after `.` followed by whitespace (not inside "3.5", not after
//! "e.g." or "Mr."). Closing quotes and brackets and repeated marks stay with their sentence (`“好的。”`, `Really?!`),
//! which is why a mark at the very end of the text so far waits for the next delta before it is decided. A piece
//! shorter than [`MIN_CHARS`] ("OK.", "好。") is merged into the next sentence: alone it would cost a synthesis
//! round trip and sound clipped. A run-on past [`SOFT_LIMIT_CHARS`] is cut at its last comma so the badge does
//! not stay silent for a whole paragraph.
//!
//! What comes out is cleaned for speech and display by [`speakable`]: markdown marks and emoji removed,
//! whitespace collapsed, trimmed, never empty. The result does not depend on how the answer was split into deltas.

/// Sentences shorter than this (in characters, after cleaning) are merged into the next one.
pub const MIN_CHARS: usize = 4;

/// A sentence that has run this many characters without a sentence mark is cut at its last comma.
pub const SOFT_LIMIT_CHARS: usize = 100;

/// A comma cut needs at least this many characters before it, so a run-on does not shed tiny clauses.
const MIN_CLAUSE_CHARS: usize = 10;

/// Marks that end a sentence wherever they appear.
fn is_stop(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '；' | '!' | '?' | ';')
}

/// Marks that follow a sentence's end and belong to it: closing quotes and brackets, and markdown emphasis.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '”' | '’' | ')' | '）' | ']' | '」' | '』' | '】' | '》' | '*' | '`'
    )
}

/// Where a run-on may be cut; ASCII ones only when whitespace follows (not "1,000" or "10:30").
fn is_comma(c: char) -> bool {
    matches!(c, '，' | '、' | '：')
}

fn is_ascii_comma(c: char) -> bool {
    matches!(c, ',' | ':')
}

/// Words whose `.` is not a sentence end. "etc." and "no." are left out: they end sentences as often as not, and a
/// missed cut only delays speech while a wrong one breaks a name.
const ABBREVIATIONS: [&str; 10] = [
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "fig",
];

/// Whether the token ending `before` (the text up to a `.`) is an abbreviation.
fn is_abbreviation(before: &str) -> bool {
    let word = before
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or("")
        .trim_start_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() {
        return false;
    }
    // "e.g", "i.e", "U.S", "a.m": letters with inner dots.
    let chars: Vec<char> = word.chars().collect();
    let dotted = chars
        .windows(3)
        .any(|w| w[0].is_alphabetic() && w[1] == '.' && w[2].is_alphabetic())
        && chars.iter().all(|&c| c.is_alphabetic() || c == '.');
    // An initial ("J. K. Rowling"), but not the pronoun.
    let initial = chars.len() == 1 && chars[0].is_ascii_uppercase() && chars[0] != 'I';
    dotted || initial || ABBREVIATIONS.contains(&word.to_lowercase().as_str())
}

/// Pictographs, emoji and their joiners/modifiers: the badge shows emotion separately, a TTS engine would read
/// their names aloud.
fn is_emoji(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1F000..=0x1FAFF
            | 0x2600..=0x27BF
            | 0x2B00..=0x2BFF
            | 0x231A..=0x231B
            | 0x23E9..=0x23FA
            | 0x200D
            | 0x20E3
            | 0xFE0E..=0xFE0F
            | 0xE0020..=0xE007F
    )
}

/// Whether `text` has anything to say (a letter, digit or CJK character).
fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// `text` cleaned for speech and display: `*` and backticks dropped, `#` dropped unless it follows a letter or
/// digit ("C#" stays), emoji dropped, a leading list or quote marker dropped, whitespace collapsed, trimmed.
pub fn speakable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    for c in text.chars() {
        let drop = match c {
            '*' | '`' => true,
            '#' => !prev.is_some_and(char::is_alphanumeric),
            c => is_emoji(c),
        };
        prev = Some(c);
        if drop {
            continue;
        }
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    let mut rest = out.trim();
    while let Some(stripped) = ["- ", "+ ", "> ", "• "]
        .iter()
        .find_map(|marker| rest.strip_prefix(marker))
    {
        rest = stripped.trim_start();
    }
    rest.to_string()
}

/// What the scanner decided.
enum Cut {
    /// A sentence ends at this byte offset.
    Sentence(usize),
    /// A run-on is cut after a comma at this byte offset.
    Clause(usize),
}

/// What one character means for the text before it.
enum Decision {
    No,
    Cut(usize),
    /// The character may end a sentence but what follows is not here yet.
    NeedMore,
}

/// Splits one streamed answer; make a new one (or call [`SentenceSplitter::finish`]) per answer.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    /// Text received and not yet returned.
    buf: String,
    /// Bytes of `buf` already decided to hold no cut (short merged fragments included).
    scanned: usize,
    /// Characters in `buf[..scanned]`.
    chars: usize,
    /// End of the last comma seen in `buf[..scanned]`, and the characters before that end.
    last_comma: Option<(usize, usize)>,
}

impl SentenceSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next piece of the answer; returns the sentences it completed, in order.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buf.push_str(delta);
        let mut out = Vec::new();
        while let Some(cut) = self.next_cut() {
            match cut {
                Cut::Sentence(end) => {
                    let text = speakable(&self.buf[..end]);
                    if has_words(&text) && text.chars().count() < MIN_CHARS {
                        // Too short alone: keep it as the start of the next sentence.
                        self.scanned = end;
                        self.chars = self.buf[..end].chars().count();
                        continue;
                    }
                    self.take(end, text, &mut out);
                }
                Cut::Clause(end) => {
                    let text = speakable(&self.buf[..end]);
                    self.take(end, text, &mut out);
                }
            }
        }
        out
    }

    /// The end of the answer: whatever is left, cleaned, however short; `None` when nothing speakable is left.
    /// The splitter is empty afterwards.
    pub fn finish(&mut self) -> Option<String> {
        let text = speakable(&self.buf);
        *self = Self::default();
        has_words(&text).then_some(text)
    }

    /// Drops `buf[..end]`, returning `text` (its cleaned form) unless there is nothing to say in it.
    fn take(&mut self, end: usize, text: String, out: &mut Vec<String>) {
        if has_words(&text) {
            out.push(text);
        }
        self.buf.drain(..end);
        self.scanned = 0;
        self.chars = 0;
        self.last_comma = None;
    }

    /// Scans from `scanned` to the next cut, or to the end of the text (`None`, ready for the next delta).
    fn next_cut(&mut self) -> Option<Cut> {
        while let Some(c) = self.buf[self.scanned..].chars().next() {
            let at = self.scanned;
            let after = at + c.len_utf8();
            match self.decide(at, c) {
                Decision::Cut(end) => return Some(Cut::Sentence(end)),
                Decision::NeedMore => return None,
                Decision::No => {}
            }
            if is_comma(c) {
                self.last_comma = Some((after, self.chars + 1));
            } else if c.is_whitespace()
                && self.buf[..at]
                    .chars()
                    .next_back()
                    .is_some_and(is_ascii_comma)
            {
                self.last_comma = Some((at, self.chars));
            }
            self.scanned = after;
            self.chars += 1;
            if self.chars > SOFT_LIMIT_CHARS
                && let Some((end, before)) = self.last_comma
                && before >= MIN_CLAUSE_CHARS
            {
                return Some(Cut::Clause(end));
            }
        }
        None
    }

    /// Whether the sentence ends at character `c` (at byte `at`), looking ahead over the marks that follow it.
    fn decide(&self, at: usize, c: char) -> Decision {
        let after = at + c.len_utf8();
        if c == '\n' || c == '\r' {
            return Decision::Cut(after);
        }
        let dot = c == '.';
        if !dot && !is_stop(c) {
            return Decision::No;
        }
        let mut end = after;
        let next = loop {
            match self.buf[end..].chars().next() {
                None => return Decision::NeedMore,
                Some(n) if is_stop(n) || n == '.' || is_closer(n) => end += n.len_utf8(),
                Some(n) => break n,
            }
        };
        if !dot {
            return Decision::Cut(end);
        }
        // "3.5", "e.g.x", "file.txt": a dot inside a token.
        if !next.is_whitespace() {
            return Decision::No;
        }
        if end == after && is_abbreviation(&self.buf[..at]) {
            return Decision::No;
        }
        Decision::Cut(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `text` gives when pushed in one piece.
    fn split(text: &str) -> Vec<String> {
        split_chunked(text, usize::MAX)
    }

    /// Everything `text` gives when pushed `size` characters at a time.
    fn split_chunked(text: &str, size: usize) -> Vec<String> {
        let mut splitter = SentenceSplitter::new();
        let chars: Vec<char> = text.chars().collect();
        let mut out = Vec::new();
        for chunk in chars.chunks(size.min(chars.len().max(1))) {
            out.extend(splitter.push(&chunk.iter().collect::<String>()));
        }
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn chinese_splits_at_full_width_marks() {
        assert_eq!(
            split("今天天气很好。我们去公园吧！你觉得怎么样？我先走了；明天见"),
            [
                "今天天气很好。",
                "我们去公园吧！",
                "你觉得怎么样？",
                "我先走了；",
                "明天见"
            ]
        );
    }

    #[test]
    fn english_splits_at_marks_and_period_space() {
        assert_eq!(
            split("Hello there. How are you today? I am fine! Thanks; really.\nBye for now"),
            [
                "Hello there.",
                "How are you today?",
                "I am fine!",
                "Thanks;",
                "really.",
                "Bye for now"
            ]
        );
    }

    #[test]
    fn mixed_language_answers_split_on_both_kinds_of_marks() {
        assert_eq!(
            split("好的，我来帮你写 Python 代码。First, install it. 然后运行 pip install！Done?"),
            [
                "好的，我来帮你写 Python 代码。",
                "First, install it.",
                "然后运行 pip install！",
                "Done?"
            ]
        );
    }

    #[test]
    fn decimals_abbreviations_and_tokens_with_dots_do_not_split() {
        assert_eq!(
            split(
                "Pi is about 3.14 today. Use e.g. a list, i.e. an array. Mr. Smith met Dr. Who. Open config.toml now."
            ),
            [
                "Pi is about 3.14 today.",
                "Use e.g. a list, i.e. an array.",
                "Mr. Smith met Dr. Who.",
                "Open config.toml now."
            ]
        );
        assert_eq!(split("版本 2.5 已发布。"), ["版本 2.5 已发布。"]);
        assert_eq!(
            split("J. K. Rowling wrote it. So did I. Then"),
            ["J. K. Rowling wrote it.", "So did I.", "Then"]
        );
    }

    #[test]
    fn a_mark_at_the_end_of_a_delta_waits_for_what_follows() {
        let mut s = SentenceSplitter::new();
        assert!(s.push("Hello world.").is_empty());
        assert_eq!(s.push(" Next"), ["Hello world."]);
        assert!(s.push(" one is 3.").is_empty());
        assert!(s.push("5 long.").is_empty());
        assert_eq!(s.push("\n"), ["Next one is 3.5 long."]);
        assert!(s.push("你好啊。").is_empty());
        assert_eq!(s.push("”"), Vec::<String>::new());
        assert_eq!(s.push("好"), ["你好啊。”"]);
        assert_eq!(s.finish().as_deref(), Some("好"));
    }

    #[test]
    fn closing_quotes_and_repeated_marks_stay_with_their_sentence() {
        assert_eq!(
            split("他说：“我们走吧。”然后就走了。Really?! Yes... it is (mostly.) Fine"),
            [
                "他说：“我们走吧。”",
                "然后就走了。",
                "Really?!",
                "Yes...",
                "it is (mostly.)",
                "Fine"
            ]
        );
    }

    #[test]
    fn short_fragments_merge_into_the_next_sentence() {
        assert_eq!(split("OK. Let's go now."), ["OK. Let's go now."]);
        assert_eq!(split("好。我们开始吧。"), ["好。我们开始吧。"]);
        assert_eq!(split("Hi!\nHow are you?"), ["Hi! How are you?"]);
        assert_eq!(
            split("1. First step.\n2. Second step."),
            ["1. First step.", "2. Second step."]
        );
        // The end of the answer is spoken however short it is.
        assert_eq!(split("Sure thing. Ok."), ["Sure thing.", "Ok."]);
        assert_eq!(split("嗯。"), ["嗯。"]);
    }

    #[test]
    fn markdown_and_emoji_are_removed() {
        assert_eq!(
            split(
                "## Plan 😊\n**Step one**: run `cargo build`. Then *relax* 🎉🎉!\n- item one\n> quoted line\nI like C# a lot 👍🏽."
            ),
            [
                "Plan",
                "Step one: run cargo build.",
                "Then relax !",
                "item one",
                "quoted line",
                "I like C# a lot ."
            ]
        );
        assert_eq!(speakable("  好的 ❤️  明白了\u{200d}  "), "好的 明白了");
        assert_eq!(speakable("#1 pick"), "1 pick");
    }

    #[test]
    fn nothing_speakable_is_never_returned() {
        assert!(split("").is_empty());
        assert!(split("\n\n---\n***\n😊😊\n。。。\n").is_empty());
        let mut s = SentenceSplitter::new();
        assert!(s.push("   ").is_empty());
        assert_eq!(s.finish(), None);
        for text in [
            "A.\n\nB!\n\n",
            "  Hello .  \n\n  world ?  ",
            "。Hi。。Hello there。",
            "**\n**Bold**\n",
        ] {
            for sentence in split(text) {
                assert!(!sentence.is_empty(), "{text:?}");
                assert_eq!(sentence, sentence.trim(), "{text:?}");
                assert!(has_words(&sentence), "{text:?}");
            }
        }
    }

    #[test]
    fn finish_resets_the_splitter() {
        let mut s = SentenceSplitter::new();
        assert!(s.push("Half a sent").is_empty());
        assert_eq!(s.finish().as_deref(), Some("Half a sent"));
        assert_eq!(s.finish(), None);
        assert!(s.push("New answer.").is_empty());
        assert_eq!(s.finish().as_deref(), Some("New answer."));
    }

    #[test]
    fn run_ons_are_cut_at_their_last_comma() {
        let clause = "我们需要先检查配置文件里的每一个选项，";
        let text = clause.repeat(8) + "最后重启服务。";
        let sentences = split(&text);
        assert!(sentences.len() >= 2, "{sentences:?}");
        for s in &sentences {
            assert!(s.chars().count() <= SOFT_LIMIT_CHARS + 1, "{s}");
        }
        assert_eq!(sentences.concat(), text);
        // English commas count only before whitespace; "1,000" is not cut.
        let text = "We counted 1,000,000 items, ".repeat(6) + "and stopped.";
        let sentences = split(&text);
        assert!(sentences.len() >= 2, "{sentences:?}");
        assert!(
            sentences
                .iter()
                .all(|s| s.ends_with(',') || s.ends_with('.'))
        );
        assert_eq!(sentences.join(" "), text);
    }

    #[test]
    fn how_the_answer_is_chunked_does_not_change_the_sentences() {
        let texts = [
            "今天天气很好。我们去公园吧！你觉得怎么样？",
            "Hello there. Pi is 3.14159. Use e.g. lists. Mr. Smith said \"hi.\" OK! Fine.",
            "他说：“我们走吧。”然后就走了。Really?! Yes... it is.",
            "## Title\n**Bold** text 😊. 1. One.\n2. Two.\n\n- item\r\nend",
            &("很长的一句话，没有句号，".repeat(20) + "结束。"),
            &"Clause number one, clause two, ".repeat(10),
        ];
        for text in texts {
            let whole = split(text);
            for size in [1, 2, 3, 5, 7, 16] {
                assert_eq!(
                    split_chunked(text, size),
                    whole,
                    "{text:?} in chunks of {size}"
                );
            }
        }
    }
}
