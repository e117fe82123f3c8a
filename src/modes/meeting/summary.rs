//! The meeting summary (PROTOCOL.md §3.3 "Summary rules", "Fallback path", "Duration"): the prompt, the LLM call,
//! parsing and normalizing its answer, and the fallback when there is no usable answer.
//!
//! Depends only on [`crate::llm`], [`crate::config`] and [`crate::store::model`]; the caller (the summary job)
//! merges pending segments, sends progress messages and persists the result.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::config::{Config, PromptTemplates};
use crate::llm::{ChatMessage, ChatOptions, LlmClient};
use crate::store::model::{Segment, Summary, hhmmss};

/// Title used when the LLM gives none, and by the fallback.
pub const DEFAULT_TITLE: &str = "会议纪要";
/// `bullets` of the fallback summary.
pub const FALLBACK_BULLETS: [&str; 3] = ["会议内容已记录", "LLM服务暂时不可用", "请稍后重试"];
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 30;
/// Most `bullets` kept.
pub const MAX_BULLETS: usize = 6;
/// Most `decisions`, `actions`, `risks`, `nextSteps` kept.
pub const MAX_OTHER_ITEMS: usize = 4;
/// Longest a summary LLM call may take.
pub const SUMMARY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a summary is made from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryInput {
    /// Every segment of the meeting so far, pending ones merged, in order.
    pub segments: Vec<Segment>,
    /// `startedAt`, ms since the epoch.
    pub started_at: u64,
    /// `endedAt` (the finalize request time, or now for a checkpoint), ms since the epoch.
    pub ended_at: u64,
    /// `meeting.min_duration_ms`.
    pub min_duration_ms: u64,
    /// A checkpoint summary (smaller token budget) rather than the final one.
    pub checkpoint: bool,
}

impl SummaryInput {
    /// `durationMs` = max(`endedAt` − `startedAt`, `meeting.min_duration_ms`).
    pub fn duration_ms(&self) -> u64 {
        self.ended_at
            .saturating_sub(self.started_at)
            .max(self.min_duration_ms)
    }
}

/// Which path produced the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryPath {
    /// Parsed from the LLM's answer.
    Llm,
    /// No LLM, LLM error or timeout, or an answer that is not a summary.
    Fallback,
}

/// Progress of [`summarize_with`], for the `llm_start` / `llm_done` progress messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryProgress {
    /// The LLM call is about to be made (`"maxTokens"` of the `llm_start` message).
    LlmStart { max_tokens: u32 },
    /// The LLM call returned, successfully or not.
    LlmDone { elapsed_ms: u64 },
}

/// The result of [`summarize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryOutcome {
    /// All seven fields set, `duration` included.
    pub summary: Summary,
    pub path: SummaryPath,
    /// Time spent in the LLM call (0 when none was made).
    pub llm_elapsed_ms: u64,
    /// Whether an LLM call was made (progress `llm_start` / `llm_done` are sent only then).
    pub llm_called: bool,
    /// Token budget of the call (`meeting.llm.max_tokens`, or `checkpoint_max_tokens`).
    pub max_tokens: u32,
    /// Why the fallback was taken, for the log; `None` on the LLM path and when no LLM is configured.
    pub error: Option<String>,
}

/// `meeting.llm.max_tokens`, or `meeting.llm.checkpoint_max_tokens` for a checkpoint.
pub fn max_tokens(config: &Config, checkpoint: bool) -> u32 {
    if checkpoint {
        config.meeting.llm.checkpoint_max_tokens
    } else {
        config.meeting.llm.max_tokens
    }
}

/// The transcript as the LLM sees it: one line per segment, `[tag] speaker: text`.
pub fn transcript_text(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        let text = s.text.trim();
        if text.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        if let Some(tag) = s.tag.as_deref().filter(|t| !t.is_empty()) {
            out.push('[');
            out.push_str(tag);
            out.push_str("] ");
        }
        if let Some(speaker) = s.speaker_id.as_deref().filter(|t| !t.is_empty()) {
            out.push_str(speaker);
            out.push_str(": ");
        }
        out.push_str(text);
    }
    out
}

/// The last `max_chars` characters of `text` (the end of a meeting holds its conclusions).
pub fn tail_chars(text: &str, max_chars: usize) -> &str {
    if max_chars == 0 {
        return "";
    }
    match text.char_indices().rev().nth(max_chars - 1) {
        Some((start, _)) => &text[start..],
        None => text,
    }
}

fn first_chars(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

const BUILTIN_SYSTEM: &str = "你是专业的会议纪要助手。行业：{industry}；场景：{scenario}。请根据会议转写内容生成结构化会议纪要。";

const BUILTIN_USER: &str = "以下是会议转写（按时间顺序，可能只是会议的后半部分）：\n\n{transcript}";

/// Output rules, appended to every system prompt (built-in, configured or per-industry) because the parser
/// depends on them.
const OUTPUT_RULES: &str = "\n\n输出要求：\n\
- 只输出一个严格的 JSON 对象，不要任何解释、前后缀文字或代码块标记。\n\
- JSON 恰好包含以下 7 个字段：{\"title\": 字符串, \"duration\": \"\", \"bullets\": [字符串], \"decisions\": [字符串], \"actions\": [字符串], \"risks\": [字符串], \"nextSteps\": [字符串]}。\n\
- title 不超过 30 个字符；duration 留空字符串（由系统填写）。\n\
- bullets 为要点，最多 6 条；decisions（决定）、actions（行动项）、risks（风险）、nextSteps（下一步）各最多 4 条；每条 20–40 个字符。\n\
- 使用{target_lang}撰写。\n\
- 某个字段没有合适内容时给空列表 []。\n\
- 只依据转写内容，不得编造转写中没有的信息。";

fn industry_template<'a>(templates: &'a PromptTemplates, industry: &str) -> Option<&'a str> {
    let t = match industry.trim().to_ascii_lowercase().as_str() {
        "tech" => &templates.tech,
        "finance" => &templates.finance,
        "medical" => &templates.medical,
        "education" => &templates.education,
        "legal" => &templates.legal,
        _ => return None,
    };
    t.as_deref().filter(|s| !s.trim().is_empty())
}

/// The value of an optional text key, `None` when unset or blank.
fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn fill(template: &str, config: &Config) -> String {
    let m = &config.meeting;
    template
        .replace(
            "{target_lang}",
            set(&m.target_lang).unwrap_or("与会议转写相同的语言"),
        )
        .replace("{industry}", set(&m.industry).unwrap_or("通用"))
        .replace("{scenario}", set(&m.scenario).unwrap_or("一般会议"))
}

/// The system and user messages of a summary call.
///
/// The transcript is cut to its last `meeting.summary_transcript_max_chars` characters. The system prompt is
/// `meeting.prompts.templates.<industry>`, else `meeting.prompts.system`, else built-in; the user message is
/// `meeting.prompts.user_template`, else built-in. Placeholders `{target_lang}`, `{industry}` and `{scenario}` are
/// filled in both (unset values read "the transcript's language", "通用", "一般会议"); `{transcript}` in the user
/// template takes the transcript, which is appended when the template has no such placeholder. The output rules
/// (strict JSON, the seven fields, lengths, language, nothing invented) always follow the system prompt.
pub fn build_prompt(config: &Config, segments: &[Segment]) -> Vec<ChatMessage> {
    let m = &config.meeting;
    let transcript = transcript_text(segments);
    let transcript = tail_chars(&transcript, m.summary_transcript_max_chars);
    let system = m
        .industry
        .as_deref()
        .and_then(|i| industry_template(&m.prompts.templates, i))
        .or_else(|| set(&m.prompts.system))
        .unwrap_or(BUILTIN_SYSTEM);
    let system = fill(&format!("{system}{OUTPUT_RULES}"), config);
    let user = fill(
        set(&m.prompts.user_template).unwrap_or(BUILTIN_USER),
        config,
    );
    // The transcript goes in last, so braces spoken in the meeting are never taken for placeholders.
    let user = if user.contains("{transcript}") {
        user.replace("{transcript}", transcript)
    } else {
        format!("{user}\n\n{transcript}")
    };
    vec![ChatMessage::system(system), ChatMessage::user(user)]
}

/// Drops `<think>…</think>` blocks some reasoning models put before their answer (they may contain braces).
fn strip_think(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

fn json_object(text: &str) -> Option<Map<String, Value>> {
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text.trim()) {
        return Some(map);
    }
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    if end <= start {
        return None;
    }
    match serde_json::from_str::<Value>(&text[start..=end]) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn items(v: Option<&Value>) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Some(Value::Array(list)) => list.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

const FIELDS: [&str; 8] = [
    "title",
    "duration",
    "bullets",
    "decisions",
    "actions",
    "risks",
    "nextSteps",
    "next_steps",
];

/// The summary in an LLM answer: the whole text as strict JSON, else the outermost `{…}` of it; `None` when neither
/// is a JSON object with at least one of the seven fields. The result is [`normalize`]d; `duration` is left empty
/// (the caller sets it from the meeting's times).
pub fn parse_summary(text: &str) -> Option<Summary> {
    let text = strip_think(text);
    let map = json_object(&text)?;
    if !FIELDS.iter().any(|f| map.contains_key(*f)) {
        return None;
    }
    let title = match map.get("title") {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    Some(normalize(Summary {
        title,
        duration: String::new(),
        bullets: items(map.get("bullets")),
        decisions: items(map.get("decisions")),
        actions: items(map.get("actions")),
        risks: items(map.get("risks")),
        next_steps: items(map.get("nextSteps").or_else(|| map.get("next_steps"))),
    }))
}

fn clean_list(list: Vec<String>, cap: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    list.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && seen.insert(s.clone()))
        .take(cap)
        .collect()
}

/// Applies the content rules: items trimmed, empty ones dropped, lists deduplicated (first occurrence kept),
/// `bullets` ≤ 6 and the other lists ≤ 4; title trimmed, `会议纪要` when empty, at most 30 characters.
pub fn normalize(summary: Summary) -> Summary {
    let title = summary.title.trim();
    let title = if title.is_empty() {
        DEFAULT_TITLE
    } else {
        first_chars(title, MAX_TITLE_CHARS).trim_end()
    };
    Summary {
        title: title.to_string(),
        duration: summary.duration,
        bullets: clean_list(summary.bullets, MAX_BULLETS),
        decisions: clean_list(summary.decisions, MAX_OTHER_ITEMS),
        actions: clean_list(summary.actions, MAX_OTHER_ITEMS),
        risks: clean_list(summary.risks, MAX_OTHER_ITEMS),
        next_steps: clean_list(summary.next_steps, MAX_OTHER_ITEMS),
    }
}

/// The summary when there is no usable LLM answer; `duration` empty until the caller sets it.
pub fn fallback_summary() -> Summary {
    Summary {
        title: DEFAULT_TITLE.to_string(),
        duration: String::new(),
        bullets: FALLBACK_BULLETS.iter().map(|s| s.to_string()).collect(),
        decisions: Vec::new(),
        actions: Vec::new(),
        risks: Vec::new(),
        next_steps: Vec::new(),
    }
}

/// [`summarize_with`] without progress reports.
pub fn summarize(
    client: Option<&dyn LlmClient>,
    config: &Config,
    input: &SummaryInput,
    deadline: Instant,
) -> SummaryOutcome {
    summarize_with(client, config, input, deadline, &mut |_| {})
}

/// Builds the summary: one LLM call (budget [`max_tokens`], at most [`SUMMARY_TIMEOUT`] and never past
/// `deadline`) when `client` is set, its answer parsed by [`parse_summary`]; otherwise, or on any error, timeout or
/// unparseable answer, [`fallback_summary`]. `duration` is set on both paths. Never fails.
pub fn summarize_with(
    client: Option<&dyn LlmClient>,
    config: &Config,
    input: &SummaryInput,
    deadline: Instant,
    on_progress: &mut dyn FnMut(SummaryProgress),
) -> SummaryOutcome {
    let duration = hhmmss(input.duration_ms());
    let budget = max_tokens(config, input.checkpoint);
    let fallback = |error: Option<String>, called: bool, elapsed_ms: u64| SummaryOutcome {
        summary: Summary {
            duration: duration.clone(),
            ..fallback_summary()
        },
        path: SummaryPath::Fallback,
        llm_elapsed_ms: elapsed_ms,
        llm_called: called,
        max_tokens: budget,
        error,
    };
    let Some(client) = client else {
        return fallback(None, false, 0);
    };
    let messages = build_prompt(config, &input.segments);
    let options = ChatOptions {
        max_tokens: Some(budget),
        temperature: None,
        timeout: Some(SUMMARY_TIMEOUT),
        ..ChatOptions::default()
    };
    let deadline = deadline.min(Instant::now() + SUMMARY_TIMEOUT);
    on_progress(SummaryProgress::LlmStart { max_tokens: budget });
    let started = Instant::now();
    let result = client.chat(&messages, &options, deadline);
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    on_progress(SummaryProgress::LlmDone { elapsed_ms });
    match result {
        Ok(reply) => match parse_summary(&reply.content) {
            Some(summary) => SummaryOutcome {
                summary: Summary {
                    duration,
                    ..summary
                },
                path: SummaryPath::Llm,
                llm_elapsed_ms: elapsed_ms,
                llm_called: true,
                max_tokens: budget,
                error: None,
            },
            None => {
                let head: String = reply.content.chars().take(120).collect();
                fallback(
                    Some(format!("answer is not a summary: {head}")),
                    true,
                    elapsed_ms,
                )
            }
        },
        Err(e) => fallback(Some(e.to_string()), true, elapsed_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatReply, LlmError};
    use std::sync::Mutex;

    fn seg(text: &str) -> Segment {
        Segment {
            ts: 1,
            text: text.to_string(),
            speaker_id: None,
            tag: None,
        }
    }

    struct Canned {
        answer: Result<String, LlmError>,
        seen: Mutex<Vec<(Vec<ChatMessage>, ChatOptions)>>,
    }

    impl Canned {
        fn new(answer: Result<&str, LlmError>) -> Self {
            Canned {
                answer: answer.map(str::to_string),
                seen: Mutex::new(Vec::new()),
            }
        }
    }

    impl LlmClient for Canned {
        fn name(&self) -> &str {
            "canned"
        }
        fn model(&self) -> &str {
            "canned"
        }
        fn chat(
            &self,
            messages: &[ChatMessage],
            options: &ChatOptions,
            _deadline: Instant,
        ) -> Result<ChatReply, LlmError> {
            self.seen
                .lock()
                .unwrap()
                .push((messages.to_vec(), options.clone()));
            self.answer.clone().map(|content| ChatReply {
                content,
                ..ChatReply::default()
            })
        }
    }

    fn input(checkpoint: bool) -> SummaryInput {
        SummaryInput {
            segments: vec![seg("登录页改成扫码")],
            started_at: 1_000,
            ended_at: 2_000,
            min_duration_ms: 5_000,
            checkpoint,
        }
    }

    #[test]
    fn tail_keeps_the_last_chars() {
        assert_eq!(tail_chars("abcdef", 3), "def");
        assert_eq!(tail_chars("会议纪要内容", 2), "内容");
        assert_eq!(tail_chars("ab", 5), "ab");
        assert_eq!(tail_chars("ab", 0), "");
    }

    #[test]
    fn transcript_lines_carry_tag_and_speaker() {
        let segments = [
            Segment {
                ts: 1,
                text: "登录页改成扫码".into(),
                speaker_id: Some("spk-1".into()),
                tag: Some("需求".into()),
            },
            seg("  "),
            seg("好的"),
        ];
        assert_eq!(
            transcript_text(&segments),
            "[需求] spk-1: 登录页改成扫码\n好的"
        );
    }

    #[test]
    fn think_blocks_are_ignored() {
        let s = parse_summary("<think>{maybe}</think>{\"title\":\"T\"}").unwrap();
        assert_eq!(s.title, "T");
    }

    #[test]
    fn llm_path_sets_duration_and_budget() {
        let client = Canned::new(Ok(r#"{"title":"周会","bullets":["a","a","b"]}"#));
        let out = summarize(
            Some(&client),
            &Config::default(),
            &input(false),
            Instant::now() + Duration::from_secs(5),
        );
        assert_eq!(out.path, SummaryPath::Llm);
        assert!(out.llm_called);
        assert_eq!(out.summary.duration, "00:00:05");
        assert_eq!(out.summary.bullets, ["a", "b"]);
        let seen = client.seen.lock().unwrap();
        assert_eq!(seen[0].1.max_tokens, Some(800));
        assert_eq!(seen[0].1.timeout, Some(SUMMARY_TIMEOUT));
    }

    #[test]
    fn every_failure_falls_back() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let c = Config::default();
        let out = summarize(None, &c, &input(true), deadline);
        assert_eq!(
            (out.path, out.llm_called, out.max_tokens),
            (SummaryPath::Fallback, false, 400)
        );
        assert_eq!(out.summary.bullets, FALLBACK_BULLETS);
        assert_eq!(out.summary.duration, "00:00:05");
        for answer in [Err(LlmError::Timeout), Ok("no json here")] {
            let client = Canned::new(answer);
            let mut progress = Vec::new();
            let out = summarize_with(Some(&client), &c, &input(false), deadline, &mut |p| {
                progress.push(p)
            });
            assert_eq!(out.path, SummaryPath::Fallback);
            assert!(out.llm_called);
            assert!(out.error.is_some());
            assert_eq!(progress.len(), 2);
            assert_eq!(progress[0], SummaryProgress::LlmStart { max_tokens: 800 });
        }
    }
}
