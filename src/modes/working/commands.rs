//! Workflow voice commands in working mode (PROTOCOL.md §3.4).
//!
//! [`match_command`] turns one utterance into a [`VoiceCommand`]: an intent
//! (assign, complete, refresh) and an optional 1-based task index.
//! [`pick_task`] resolves the command against the sender's group's tasks.
//!
//! Matching follows the phrase rule of §3.1: the text is squeezed (fullwidth
//! ASCII folded to ASCII, whitespace and ASCII/CJK punctuation removed,
//! lowercased); the squeezed text must be at most 16 characters and contain a
//! squeezed phrase. Because an index is often said *inside* a phrase, two
//! more ways to contain a phrase are accepted (the 16-character limit still
//! applies to the whole squeezed text):
//! - the squeezed text with the index expression cut out contains the phrase
//!   (`认领第二个任务` → `认领任务`; `第N个`/`第N条` is cut whole, in `任务N` only
//!   the `N`, a bare number is cut);
//! - English only: the words of a multi-word ASCII phrase occur as whole
//!   words, in order, with any other words between them (`mark task two done`
//!   has `mark` … `done`).
//!
//! When several phrases match, the longest squeezed phrase wins; on a tie the
//! earlier one in [`PHRASES`] (assign, then complete, then refresh).
//!
//! Index words, first found wins: `第N` (optionally followed by `个`/`条`),
//! `任务N`, then the English words `first`…`tenth`, `1st`…`10th`, `task N` /
//! `number N` (N in digits or `one`…`ten`), then a bare Arabic number. N in
//! Chinese is `一`…`九`, `十` and their compounds up to 99 (`十二`, `二十三`);
//! Arabic digits work everywhere. Refresh never carries an index.

use std::ops::Range;

use serde_json::Value;

/// What a voice command asks for (the `intent` of the `workflow` `command` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandIntent {
    Assign,
    Complete,
    Refresh,
}

impl CommandIntent {
    /// The wire name: `assign`, `complete` or `refresh`.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandIntent::Assign => "assign",
            CommandIntent::Complete => "complete",
            CommandIntent::Refresh => "refresh",
        }
    }
}

/// A recognized voice command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceCommand {
    pub intent: CommandIntent,
    /// 1-based position among the open tasks (see [`pick_task`]); `None` when
    /// no index was said, and always `None` for refresh. An index of 0 is kept
    /// as said and, like one past the end, picks nothing.
    pub index: Option<usize>,
}

/// Longest squeezed utterance the phrase rule fires on (§3.1).
const MAX_SQUEEZED_CHARS: usize = 16;

/// The command phrases of §3.4, plus `refresh` (an English synonym of
/// `刷新`, an addition beyond the contract's list).
pub const PHRASES: [(CommandIntent, &str); 23] = [
    (CommandIntent::Assign, "认领任务"),
    (CommandIntent::Assign, "领取任务"),
    (CommandIntent::Assign, "我来做"),
    (CommandIntent::Assign, "接收"),
    (CommandIntent::Assign, "接受"),
    (CommandIntent::Assign, "接手"),
    (CommandIntent::Assign, "接单"),
    (CommandIntent::Assign, "assign to me"),
    (CommandIntent::Assign, "claim task"),
    (CommandIntent::Complete, "完成任务"),
    (CommandIntent::Complete, "标记完成"),
    (CommandIntent::Complete, "做完了"),
    (CommandIntent::Complete, "搞定了"),
    (CommandIntent::Complete, "已完成"),
    (CommandIntent::Complete, "mark done"),
    (CommandIntent::Complete, "complete task"),
    (CommandIntent::Refresh, "刷新列表"),
    (CommandIntent::Refresh, "刷新任务"),
    (CommandIntent::Refresh, "拉取任务"),
    (CommandIntent::Refresh, "刷新"),
    (CommandIntent::Refresh, "update list"),
    (CommandIntent::Refresh, "pull"),
    (CommandIntent::Refresh, "refresh"),
];

/// Matches one utterance against the working-mode commands (module docs).
pub fn match_command(text: &str) -> Option<VoiceCommand> {
    let squeezed = squeeze(text);
    if squeezed.is_empty() || squeezed.len() > MAX_SQUEEZED_CHARS {
        return None;
    }
    let words = words(text);
    let found = find_index(&squeezed, &words);
    let without_index: Option<Vec<char>> = found.as_ref().and_then(|(_, span)| {
        span.as_ref().map(|span| {
            let mut rest = squeezed[..span.start].to_vec();
            rest.extend_from_slice(&squeezed[span.end..]);
            rest
        })
    });

    let mut best: Option<(CommandIntent, usize)> = None;
    for (intent, phrase) in PHRASES {
        let squeezed_phrase = squeeze(phrase);
        let hit = contains(&squeezed, &squeezed_phrase)
            || without_index
                .as_deref()
                .is_some_and(|rest| contains(rest, &squeezed_phrase))
            || (phrase.is_ascii() && phrase.contains(' ') && words_in_order(&words, phrase));
        if hit && best.is_none_or(|(_, len)| squeezed_phrase.len() > len) {
            best = Some((intent, squeezed_phrase.len()));
        }
    }
    let (intent, _) = best?;
    let index = match intent {
        CommandIntent::Refresh => None,
        _ => found.map(|(n, _)| n),
    };
    Some(VoiceCommand { intent, index })
}

/// The id of the task `cmd` applies to, among `tasks` (the sender's group's
/// tasks in storage order), per §3.4.
///
/// Only open tasks (`status` other than `"done"`) with a string `id` count,
/// ordered by `priority` ascending (missing or not an integer 0… last), then
/// storage order. With an index: the N-th of them. Without: assign takes the
/// first one not owned by `speaker`, complete the first one owned by
/// `speaker`, else the first one. Refresh picks nothing.
pub fn pick_task(tasks: &[Value], cmd: &VoiceCommand, speaker: &str) -> Option<String> {
    let open = open_tasks_in_order(tasks);
    let owned = |t: &&Value| t.get("owner").and_then(Value::as_str) == Some(speaker);
    let picked = match (cmd.intent, cmd.index) {
        (CommandIntent::Refresh, _) => None,
        (_, Some(n)) => n.checked_sub(1).and_then(|i| open.get(i)),
        (CommandIntent::Assign, None) => open.iter().find(|t| !owned(t)),
        (CommandIntent::Complete, None) => open.iter().find(|t| owned(t)).or(open.first()),
    };
    picked.and_then(|t| task_id(t)).map(str::to_owned)
}

/// The open tasks (`status` other than `"done"`, string `id`) in the order
/// a spoken index counts them: `priority` ascending (missing or not an
/// integer last), then storage order.
pub fn open_tasks_in_order(tasks: &[Value]) -> Vec<&Value> {
    let mut open: Vec<&Value> = tasks
        .iter()
        .filter(|t| task_id(t).is_some() && t.get("status").and_then(Value::as_str) != Some("done"))
        .collect();
    // Stable: equal priorities keep storage order.
    open.sort_by_key(|t| {
        t.get("priority")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX)
    });
    open
}

fn task_id(task: &Value) -> Option<&str> {
    task.get("id").and_then(Value::as_str)
}

/// Fullwidth ASCII (`Ａ`, `３`, `！`) folded to ASCII.
fn fold_width(c: char) -> char {
    match c as u32 {
        code @ 0xFF01..=0xFF5E => char::from_u32(code - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// ASCII punctuation and the Latin-1, general, CJK and halfwidth punctuation
/// blocks (letters and numerals in those blocks, like `〇`, are kept).
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || (!c.is_alphanumeric()
            && matches!(
                c as u32,
                0x00A1..=0x00BF
                    | 0x2010..=0x205E
                    | 0x3001..=0x303F
                    | 0xFE10..=0xFE19
                    | 0xFE30..=0xFE6B
                    | 0xFF5F..=0xFF65
            ))
}

/// The phrase-matching form of a text (§3.1), as characters.
fn squeeze(text: &str) -> Vec<char> {
    text.chars()
        .map(fold_width)
        .filter(|c| !c.is_whitespace() && !is_punctuation(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Lowercased words, split at whitespace and punctuation.
fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .chars()
        .map(fold_width)
        .flat_map(char::to_lowercase)
        .collect();
    folded
        .split(|c: char| c.is_whitespace() || is_punctuation(c))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn contains(haystack: &[char], needle: &[char]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The words of `phrase` occur in `words` in order, other words allowed between.
fn words_in_order(words: &[String], phrase: &str) -> bool {
    let mut rest = words.iter();
    phrase
        .split_whitespace()
        .all(|wanted| rest.any(|w| w == wanted))
}

/// The index said in the utterance, with its span in `squeezed` when cutting
/// it out may reveal a phrase (module docs).
fn find_index(squeezed: &[char], words: &[String]) -> Option<(usize, Option<Range<usize>>)> {
    // 第N, 第N个, 第N条
    for (i, c) in squeezed.iter().enumerate() {
        if *c == '第'
            && let Some((n, len)) = parse_number(&squeezed[i + 1..])
        {
            let mut end = i + 1 + len;
            if matches!(squeezed.get(end), Some('个' | '条')) {
                end += 1;
            }
            return Some((n, Some(i..end)));
        }
    }
    // 任务N
    for i in 0..squeezed.len().saturating_sub(1) {
        if squeezed[i..].starts_with(&['任', '务'])
            && let Some((n, len)) = parse_number(&squeezed[i + 2..])
        {
            return Some((n, Some(i + 2..i + 2 + len)));
        }
    }
    // first … tenth, 1st … 10th, task N, number N
    for (k, word) in words.iter().enumerate() {
        if let Some(n) = english_ordinal(word) {
            return Some((n, None));
        }
        if matches!(word.as_str(), "task" | "number")
            && let Some(n) = words
                .get(k + 1)
                .and_then(|next| english_number(next).or_else(|| heard_number(words, k + 1)))
        {
            return Some((n, None));
        }
    }
    // A bare Arabic number.
    let start = squeezed.iter().position(char::is_ascii_digit)?;
    let (n, len) = parse_digits(&squeezed[start..])?;
    Some((n, Some(start..start + len)))
}

/// A number at the start of `chars`: Arabic digits or a Chinese numeral up to
/// 99; the value and the characters used.
fn parse_number(chars: &[char]) -> Option<(usize, usize)> {
    parse_digits(chars).or_else(|| parse_chinese(chars))
}

fn parse_digits(chars: &[char]) -> Option<(usize, usize)> {
    let len = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    let digits: String = chars[..len].iter().collect();
    digits.parse().ok().map(|n| (n, len))
}

fn chinese_digit(c: char) -> Option<usize> {
    "一二三四五六七八九"
        .chars()
        .position(|d| d == c)
        .map(|i| i + 1)
}

fn parse_chinese(chars: &[char]) -> Option<(usize, usize)> {
    let digit_at = |i: usize| chars.get(i).copied().and_then(chinese_digit);
    match (chars.first(), digit_at(0)) {
        // 十, 十N
        (Some('十'), _) => Some(match digit_at(1) {
            Some(ones) => (10 + ones, 2),
            None => (10, 1),
        }),
        // N, N十, N十M
        (_, Some(tens)) if chars.get(1) == Some(&'十') => Some(match digit_at(2) {
            Some(ones) => (tens * 10 + ones, 3),
            None => (tens * 10, 2),
        }),
        (_, Some(n)) => Some((n, 1)),
        _ => None,
    }
}

const ENGLISH_NUMBERS: [&str; 10] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
];

const ENGLISH_ORDINALS: [&str; 10] = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
];

/// `one` … `ten` or Arabic digits.
fn english_number(word: &str) -> Option<usize> {
    if let Some(i) = ENGLISH_NUMBERS.iter().position(|w| *w == word) {
        return Some(i + 1);
    }
    let chars: Vec<char> = word.chars().collect();
    parse_digits(&chars)
        .filter(|(_, len)| *len == chars.len())
        .map(|(n, _)| n)
}

/// What speech recognition writes for a number said right after `task` or
/// `number`: Whisper hears "mark task two done" as "mark task to done".
/// Only when the word does not lead on to an object ("assign task to me"
/// keeps its `to`), so the homophone is the number or nothing.
fn heard_number(words: &[String], at: usize) -> Option<usize> {
    let n = match words.get(at)?.as_str() {
        "won" => 1,
        "to" | "too" => 2,
        "for" => 4,
        "ate" => 8,
        _ => return None,
    };
    let object = words.get(at + 1).is_some_and(|next| {
        matches!(
            next.as_str(),
            "me" | "myself" | "him" | "her" | "them" | "us" | "you" | "someone" | "the" | "a"
        )
    });
    (!object).then_some(n)
}

/// `first` … `tenth` or `1st`, `2nd`, `3rd`, `4th` … (any Arabic number).
fn english_ordinal(word: &str) -> Option<usize> {
    if let Some(i) = ENGLISH_ORDINALS.iter().position(|w| *w == word) {
        return Some(i + 1);
    }
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    let expected = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    (suffix == expected).then_some(n)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cmd(intent: CommandIntent, index: Option<usize>) -> Option<VoiceCommand> {
        Some(VoiceCommand { intent, index })
    }

    use CommandIntent::{Assign, Complete, Refresh};

    #[test]
    fn intent_names() {
        assert_eq!(Assign.as_str(), "assign");
        assert_eq!(Complete.as_str(), "complete");
        assert_eq!(Refresh.as_str(), "refresh");
    }

    #[test]
    fn brief_examples() {
        assert_eq!(match_command("完成任务第二个"), cmd(Complete, Some(2)));
        assert_eq!(match_command("认领第二个任务"), cmd(Assign, Some(2)));
        assert_eq!(match_command("mark task two done"), cmd(Complete, Some(2)));
        assert_eq!(match_command("refresh"), cmd(Refresh, None));
        assert_eq!(match_command("claim task 3"), cmd(Assign, Some(3)));
        assert_eq!(match_command("刷新"), cmd(Refresh, None));
        assert_eq!(match_command("今天天气怎么样"), None);
    }

    #[test]
    fn recognizer_homophones_of_numbers_count_after_task() {
        assert_eq!(match_command("Mark task to done."), cmd(Complete, Some(2)));
        assert_eq!(match_command("claim task for"), cmd(Assign, Some(4)));
        // `to` leading on to an object is the preposition, not a number.
        assert_eq!(match_command("assign task to me"), cmd(Assign, None));
    }

    #[test]
    fn over_sixteen_squeezed_chars_never_matches() {
        let long =
            "我想请你帮我把这个列表刷新一下然后告诉我今天还有哪些任务没有做完谢谢你啊好吗呀呀";
        assert_eq!(long.chars().count(), 40);
        assert_eq!(match_command(long), None);
        // 16 squeezed characters is still fine; punctuation and spaces don't count.
        assert_eq!(
            match_command("请帮我刷新一下，好吗？我要看看今天的活"),
            None
        );
        assert_eq!(
            match_command("请帮我刷新一下， 好吗？我要看看今天"),
            cmd(Refresh, None)
        );
        assert_eq!(
            match_command("mark task two done").map(|_| squeeze("mark task two done").len()),
            Some(15)
        );
    }

    #[test]
    fn every_contract_phrase_matches_alone_and_with_punctuation() {
        for (intent, phrase) in PHRASES {
            assert_eq!(match_command(phrase), cmd(intent, None), "{phrase}");
            let decorated = format!("  {}！。", phrase.to_uppercase());
            assert_eq!(match_command(&decorated), cmd(intent, None), "{decorated}");
        }
    }

    #[test]
    fn squeezing_strips_ascii_and_cjk_punctuation_and_folds_width() {
        assert_eq!(match_command("刷新，列表。"), cmd(Refresh, None));
        assert_eq!(match_command("「完成任务」"), cmd(Complete, None));
        assert_eq!(match_command("Mark-Done!"), cmd(Complete, None));
        assert_eq!(
            match_command("ＣＬＡＩＭ ＴＡＳＫ ３"),
            cmd(Assign, Some(3))
        );
        assert_eq!(match_command("……接单～"), cmd(Assign, None));
        assert_eq!(match_command(""), None);
        assert_eq!(match_command("，。！ "), None);
    }

    #[test]
    fn chinese_index_forms() {
        assert_eq!(match_command("完成第3个任务"), cmd(Complete, Some(3)));
        assert_eq!(match_command("认领第五条任务"), cmd(Assign, Some(5)));
        assert_eq!(match_command("认领任务三"), cmd(Assign, Some(3)));
        assert_eq!(match_command("完成任务十"), cmd(Complete, Some(10)));
        assert_eq!(match_command("完成任务十二"), cmd(Complete, Some(12)));
        assert_eq!(match_command("完成第二十三个任务"), cmd(Complete, Some(23)));
        assert_eq!(match_command("任务一做完了"), cmd(Complete, Some(1)));
        assert_eq!(match_command("接手任务4"), cmd(Assign, Some(4)));
        assert_eq!(match_command("领取第一个任务"), cmd(Assign, Some(1)));
        assert_eq!(match_command("标记第二条完成"), cmd(Complete, Some(2)));
    }

    #[test]
    fn english_index_forms() {
        assert_eq!(match_command("claim task three"), cmd(Assign, Some(3)));
        assert_eq!(match_command("claim first task"), cmd(Assign, Some(1)));
        assert_eq!(match_command("mark second done"), cmd(Complete, Some(2)));
        assert_eq!(match_command("mark tenth done"), cmd(Complete, Some(10)));
        assert_eq!(match_command("complete task 7"), cmd(Complete, Some(7)));
        assert_eq!(match_command("complete 2nd task"), cmd(Complete, Some(2)));
        assert_eq!(match_command("mark 3rd done"), cmd(Complete, Some(3)));
        assert_eq!(match_command("assign 2 to me"), cmd(Assign, Some(2)));
        assert_eq!(match_command("assign to me"), cmd(Assign, None));
        // Bare numbers, Arabic digits only.
        assert_eq!(match_command("接单 2"), cmd(Assign, Some(2)));
        assert_eq!(match_command("2 做完了"), cmd(Complete, Some(2)));
    }

    #[test]
    fn english_words_in_order_with_words_between() {
        assert_eq!(match_command("mark it done"), cmd(Complete, None));
        assert_eq!(match_command("update the list"), cmd(Refresh, None));
        assert_eq!(match_command("assign it to me"), cmd(Assign, None));
        // Order matters, whole words only.
        assert_eq!(match_command("done mark"), None);
        assert_eq!(match_command("marker doneness"), None);
        // Chinese phrases are not spread over other words.
        assert_eq!(match_command("完成了这个任务"), None);
    }

    #[test]
    fn refresh_carries_no_index() {
        assert_eq!(match_command("刷新任务三"), cmd(Refresh, None));
        assert_eq!(match_command("pull 2"), cmd(Refresh, None));
    }

    #[test]
    fn longest_phrase_wins() {
        // 刷新任务 (refresh, 4) beats 接收 (assign, 2).
        assert_eq!(match_command("接收刷新任务"), cmd(Refresh, None));
        // 完成任务 (complete, 4) beats 刷新 (refresh, 2).
        assert_eq!(match_command("刷新完成任务"), cmd(Complete, None));
        // complete task (12) beats pull (4).
        assert_eq!(match_command("pull complete task"), cmd(Complete, None));
        // Tie of equal length: the earlier intent in PHRASES.
        assert_eq!(match_command("刷新接单"), cmd(Assign, None));
    }

    #[test]
    fn index_zero_is_kept_and_picks_nothing() {
        assert_eq!(match_command("claim task 0"), cmd(Assign, Some(0)));
        let tasks = [json!({"id": "T-1"})];
        assert_eq!(
            pick_task(
                &tasks,
                &VoiceCommand {
                    intent: Assign,
                    index: Some(0)
                },
                "me"
            ),
            None
        );
    }

    #[test]
    fn english_ordinal_suffixes() {
        assert_eq!(english_ordinal("1st"), Some(1));
        assert_eq!(english_ordinal("11th"), Some(11));
        assert_eq!(english_ordinal("12th"), Some(12));
        assert_eq!(english_ordinal("22nd"), Some(22));
        assert_eq!(english_ordinal("2st"), None);
        assert_eq!(english_ordinal("th"), None);
        assert_eq!(english_ordinal("task"), None);
    }

    fn tasks() -> Vec<Value> {
        vec![
            json!({"id": "T-1", "title": "no priority", "status": "open", "owner": "me"}),
            json!({"id": "T-2", "title": "p2 done", "priority": 2, "status": "done"}),
            json!({"id": "T-3", "title": "p2", "priority": 2, "status": "open", "owner": "other"}),
            json!({"id": "T-4", "title": "p0", "priority": 0, "owner": "me"}),
            json!({"id": "T-5", "title": "p2 later", "priority": 2, "status": "open"}),
            json!({"id": "T-6", "title": "p0 done", "priority": 0, "status": "done"}),
            json!({"title": "no id", "priority": 0}),
        ]
    }

    fn pick(intent: CommandIntent, index: Option<usize>, speaker: &str) -> Option<String> {
        pick_task(&tasks(), &VoiceCommand { intent, index }, speaker)
    }

    #[test]
    fn index_picks_nth_open_task_by_priority_then_storage_order() {
        // Open, by priority: T-4 (0), T-3 (2), T-5 (2, later), T-1 (missing).
        assert_eq!(pick(Assign, Some(1), "me").as_deref(), Some("T-4"));
        assert_eq!(pick(Assign, Some(2), "me").as_deref(), Some("T-3"));
        assert_eq!(pick(Complete, Some(3), "me").as_deref(), Some("T-5"));
        assert_eq!(pick(Complete, Some(4), "me").as_deref(), Some("T-1"));
        assert_eq!(pick(Complete, Some(5), "me"), None);
        // The index ignores ownership: T-4 is the speaker's, T-3 someone else's.
        assert_eq!(pick(Complete, Some(2), "me").as_deref(), Some("T-3"));
    }

    #[test]
    fn assign_without_index_takes_first_open_task_not_owned_by_speaker() {
        assert_eq!(pick(Assign, None, "me").as_deref(), Some("T-3"));
        assert_eq!(pick(Assign, None, "other").as_deref(), Some("T-4"));
        let all_mine = [
            json!({"id": "A", "owner": "me"}),
            json!({"id": "B", "status": "done"}),
        ];
        let cmd = VoiceCommand {
            intent: Assign,
            index: None,
        };
        assert_eq!(pick_task(&all_mine, &cmd, "me"), None);
    }

    #[test]
    fn complete_without_index_prefers_speakers_task_else_first_open() {
        assert_eq!(pick(Complete, None, "me").as_deref(), Some("T-4"));
        assert_eq!(pick(Complete, None, "other").as_deref(), Some("T-3"));
        assert_eq!(pick(Complete, None, "nobody").as_deref(), Some("T-4"));
    }

    #[test]
    fn refresh_and_empty_lists_pick_nothing() {
        assert_eq!(pick(Refresh, None, "me"), None);
        assert_eq!(pick(Refresh, Some(1), "me"), None);
        let cmd = VoiceCommand {
            intent: Complete,
            index: None,
        };
        assert_eq!(pick_task(&[], &cmd, "me"), None);
        let done = [json!({"id": "X", "status": "done", "owner": "me"})];
        assert_eq!(pick_task(&done, &cmd, "me"), None);
    }

    #[test]
    fn non_integer_priority_counts_as_missing() {
        let list = [
            json!({"id": "S", "priority": "high"}),
            json!({"id": "F", "priority": 1.5}),
            json!({"id": "P", "priority": 3}),
        ];
        let cmd = VoiceCommand {
            intent: Assign,
            index: Some(1),
        };
        assert_eq!(pick_task(&list, &cmd, "me").as_deref(), Some("P"));
        let cmd = VoiceCommand {
            intent: Assign,
            index: Some(2),
        };
        assert_eq!(pick_task(&list, &cmd, "me").as_deref(), Some("S"));
    }
}
