//! Coding-mode signal extraction and heuristic insights over the log corpus in
//! `tests/fixtures/logs/` (PROTOCOL.md §3.5).
//!
//! Each `<name>.log` is fed line by line the way a badge client sends it: the
//! line normalized, its level guessed from the text. The sibling
//! `<name>.expected.json` lists the signal fields that matter (same names as
//! the `Signals` JSON), plus `buildSuccess` (the stats after the last line)
//! and `mentions` (strings the heuristic insight must contain).

use std::path::PathBuf;

use huddle::modes::coding::heuristics::{
    Insight, MAX_ACTIONS, MAX_INSIGHTS, MAX_NEXT_STEPS, MAX_RISKS, fill_weak, finish, heuristic,
    heuristic_lang,
};
use huddle::modes::coding::signals::{
    LineLevel, LogLine, Signals, Stats, extract, is_immediate, mostly_chinese, normalize_line,
    update_stats,
};
use serde_json::Value;

const FIXTURES: &[&str] = &[
    "cargo_test_failure",
    "pytest_traceback",
    "npm_build_error",
    "maven_surefire_failure",
    "oom_kill",
    "dns_failure",
    "clean_build",
    "go_test_failure",
    "jest_failure",
];

/// `coding.per_message_max_len`.
const MAX_LEN: usize = 512;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs")
}

/// The level a client would give the line: error when it mentions an error,
/// a failure or a traceback, warn for warnings, else info.
fn guess_level(text: &str) -> LineLevel {
    let lower = text.to_lowercase();
    if lower.contains("error") || text.contains("FAILED") || text.contains("Traceback") {
        LineLevel::Error
    } else if lower.contains("warning") {
        LineLevel::Warn
    } else {
        LineLevel::Info
    }
}

/// The log as the server receives it: one normalized line per message, blank
/// lines not sent.
fn load(name: &str) -> Vec<LogLine> {
    let path = fixture_dir().join(format!("{name}.log"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.lines()
        .map(|raw| normalize_line(raw, MAX_LEN))
        .filter(|l| !l.is_empty())
        .map(|l| LogLine {
            level: guess_level(&l),
            text: l,
        })
        .collect()
}

fn expected(name: &str) -> Value {
    let path = fixture_dir().join(format!("{name}.expected.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn stats_of(lines: &[LogLine]) -> Stats {
    let mut stats = Stats::default();
    for line in lines {
        update_stats(&mut stats, line);
    }
    stats
}

fn items(insight: &Insight) -> Vec<&String> {
    [
        &insight.insights,
        &insight.risks,
        &insight.actions,
        &insight.next_steps,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Input lines an output must never contain: longer than 20 characters, and
/// not a lone identifier (cargo's `failures:` list prints bare test names,
/// which the insight is meant to name).
fn quotable(lines: &[LogLine]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.text.as_str())
        .filter(|t| t.chars().count() > 20 && t.contains(' '))
        .collect()
}

fn assert_no_quotes<'a>(
    name: &str,
    what: &str,
    outputs: impl IntoIterator<Item = &'a String>,
    lines: &[LogLine],
) {
    let quotable = quotable(lines);
    for out in outputs {
        for line in &quotable {
            assert!(
                !out.contains(line),
                "{name}: {what} {out:?} quotes the log line {line:?}"
            );
        }
    }
}

fn all_entries(s: &Signals) -> Vec<&String> {
    [
        &s.failed_tests,
        &s.import_errors,
        &s.build_errors,
        &s.oom,
        &s.timeouts,
        &s.network_errors,
        &s.lint_warnings,
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn assert_complete(name: &str, insight: &Insight) {
    assert!(!insight.insights.is_empty(), "{name}: {insight:?}");
    assert!(!insight.risks.is_empty(), "{name}: {insight:?}");
    assert!(!insight.actions.is_empty(), "{name}: {insight:?}");
    assert!(!insight.next_steps.is_empty(), "{name}: {insight:?}");
    assert!(insight.insights.len() <= MAX_INSIGHTS, "{name}");
    assert!(insight.risks.len() <= MAX_RISKS, "{name}");
    assert!(insight.actions.len() <= MAX_ACTIONS, "{name}");
    assert!(insight.next_steps.len() <= MAX_NEXT_STEPS, "{name}");
    assert!(
        items(insight).iter().all(|i| !i.trim().is_empty()),
        "{name}"
    );
}

#[test]
fn corpus_signals_match_expected() {
    let mut mismatches = Vec::new();
    for name in FIXTURES {
        let lines = load(name);
        assert!(lines.len() >= 10, "{name}: fixture too short");
        let signals = extract(&lines);
        let stats = stats_of(&lines);
        let got = serde_json::to_value(&signals).unwrap();
        let want = expected(name);
        let want = want.as_object().unwrap();
        for (key, value) in want {
            match key.as_str() {
                "buildSuccess" => {
                    if stats.build_success != value.as_bool() {
                        mismatches.push(format!("{name}: buildSuccess, stats {stats:?}"));
                    }
                }
                "mentions" => {}
                _ => {
                    assert!(got.get(key).is_some(), "{name}: unknown field {key}");
                    if got.get(key) != Some(value) {
                        mismatches.push(format!(
                            "{name}: {key}\n want: {value}\n  got: {}",
                            got[key]
                        ));
                    }
                }
            }
        }
        assert_no_quotes(name, "signal", all_entries(&signals), &lines);
        assert!(
            all_entries(&signals)
                .iter()
                .all(|e| e.chars().count() <= 120),
            "{name}: {signals:?}"
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn corpus_heuristics_name_the_problem_without_quoting() {
    for name in FIXTURES {
        let lines = load(name);
        let signals = extract(&lines);
        let stats = stats_of(&lines);
        let insight = heuristic(&signals, &stats);
        assert_complete(name, &insight);
        let text = items(&insight)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let want = expected(name);
        let mentions = want["mentions"].as_array().expect("mentions");
        assert!(!mentions.is_empty(), "{name}");
        for m in mentions {
            let m = m.as_str().unwrap();
            assert!(text.contains(m), "{name}: {m:?} not in\n{text}");
        }
        // The first failing test, missing module, OOM and network problem
        // are each named (a test by its leaf name, a network entry by host);
        // a build error when nothing else was found.
        let mut subjects: Vec<&String> = [
            &signals.failed_tests,
            &signals.import_errors,
            &signals.oom,
            &signals.network_errors,
        ]
        .into_iter()
        .filter_map(|list| list.first())
        .collect();
        if subjects.is_empty() {
            subjects.extend(signals.build_errors.first());
        }
        for subject in subjects {
            let leaf = subject.rsplit(" › ").next().unwrap();
            let leaf = leaf.rsplit(": ").next().unwrap();
            assert!(
                text.contains(leaf),
                "{name}: {subject:?} not named in\n{text}"
            );
        }
        assert_no_quotes(name, "insight", items(&insight), &lines);

        // A useless LLM answer is completed to the heuristic.
        let filled = fill_weak(Insight::default(), &insight);
        assert_eq!(filled, finish(insight.clone()), "{name}");
        let weak = Insight {
            insights: vec!["Something failed".into()],
            ..Default::default()
        };
        let filled = fill_weak(weak, &insight);
        assert_eq!(filled.insights, ["Something failed"]);
        assert_eq!(filled.risks, insight.risks, "{name}");
        assert_complete(name, &filled);

        // Serialized with the protocol's field names.
        let json = serde_json::to_value(&insight).unwrap();
        for key in ["insights", "risks", "actions", "nextSteps"] {
            assert!(json[key].is_array(), "{name}: {key}");
        }
    }
}

#[test]
fn clean_build_has_no_error_signals() {
    let lines = load("clean_build");
    let signals = extract(&lines);
    assert!(signals.is_empty(), "{signals:?}");
    assert!(!signals.has_errors());
    let stats = stats_of(&lines);
    assert_eq!(stats.build_success, Some(true));
    assert!(!stats.build_running);
    assert_eq!((stats.error_count, stats.tests_failed), (0, 0));
    assert!(lines.iter().all(|l| !is_immediate(l)), "no line is urgent");
    let insight = heuristic(&signals, &stats);
    assert_eq!(insight.insights, ["The build succeeded with no errors"]);
}

#[test]
fn failing_logs_have_immediate_lines_and_failed_builds() {
    for name in FIXTURES.iter().filter(|n| **n != "clean_build") {
        let lines = load(name);
        assert!(lines.iter().any(is_immediate), "{name}");
        let signals = extract(&lines);
        assert!(signals.has_errors(), "{name}: {signals:?}");
        let stats = stats_of(&lines);
        assert_eq!(stats.build_success, Some(false), "{name}");
        assert!(!stats.build_running, "{name}");
        // Counting over the whole log agrees with extract's test count.
        assert!(signals.failed_test_count >= stats.tests_failed, "{name}");
    }
}

#[test]
fn info_level_lines_alone_still_trigger_on_failures() {
    // A client that sends everything as info: the text decides.
    let lines: Vec<LogLine> = load("cargo_test_failure")
        .into_iter()
        .map(|l| LogLine {
            level: LineLevel::Info,
            text: l.text,
        })
        .collect();
    let urgent: Vec<&str> = lines
        .iter()
        .filter(|l| is_immediate(l))
        .map(|l| l.text.as_str())
        .collect();
    assert!(
        urgent.iter().any(|t| t.contains("... FAILED")),
        "{urgent:?}"
    );
    assert!(
        urgent.iter().any(|t| t.contains("panicked at")),
        "{urgent:?}"
    );
    assert!(
        urgent.iter().any(|t| t.starts_with("test result: FAILED")),
        "{urgent:?}"
    );
    assert!(
        !urgent.iter().any(|t| t.starts_with("Compiling")),
        "{urgent:?}"
    );
}

#[test]
fn whole_log_in_one_message() {
    // Some clients batch lines with newlines; extraction is the same.
    for name in ["cargo_test_failure", "go_test_failure", "jest_failure"] {
        let lines = load(name);
        let joined = LogLine {
            level: LineLevel::Error,
            text: lines
                .iter()
                .map(|l| l.text.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        };
        assert_eq!(extract(&[joined]), extract(&lines), "{name}");
    }
}

#[test]
fn chinese_session_gets_chinese_heuristics() {
    let mut lines = vec![
        LogLine {
            level: LineLevel::Info,
            text: "开始跑单元测试".into(),
        },
        LogLine {
            level: LineLevel::Info,
            text: "登录模块改完了，看看结果".into(),
        },
        LogLine {
            level: LineLevel::Error,
            text: "test auth::tests::token_expiry ... FAILED".into(),
        },
        LogLine {
            level: LineLevel::Info,
            text: "好像是过期判断的问题".into(),
        },
    ];
    assert!(mostly_chinese(&lines));
    let signals = extract(&lines);
    let stats = stats_of(&lines);
    let insight = heuristic_lang(&signals, &stats, mostly_chinese(&lines));
    assert_complete("zh", &insight);
    assert!(insight.insights[0].contains("个测试失败"), "{insight:?}");
    assert!(
        insight.actions[0].contains("cargo test auth::tests::token_expiry"),
        "{insight:?}"
    );
    lines.extend(load("cargo_test_failure"));
    assert!(!mostly_chinese(&lines));
}

#[test]
fn truncated_and_odd_lines_never_panic() {
    let mut texts: Vec<String> = Vec::new();
    for name in FIXTURES {
        for line in load(name) {
            let t = line.text;
            // Every prefix and suffix on a char boundary, plus multibyte tails.
            for (i, _) in t.char_indices() {
                texts.push(t[..i].to_string());
                texts.push(t[i..].to_string());
            }
            texts.push(format!("{t}é"));
            texts.push(format!("{t} 失败"));
        }
    }
    for needle in [
        "---- ",
        "error[E",
        "error TS",
        ".java:[",
        " ... FAILED",
        "✕",
        "●",
        "FAILED ",
        "--- FAIL: ",
        "Killed",
        "timed out",
        "ENOTFOUND ",
        "dial tcp ",
        "://",
        "No module named ",
        "```",
        "> ",
        "test result: ",
        "Tests: ",
        "Tests run: ",
        "Found ",
        "warning: ",
        ": error: ",
        "--> ",
    ] {
        for tail in [
            "", " ", "é", " é", "'", "`", ":", "(", ")", "[", "]", " (5 ms)", "ms",
        ] {
            texts.push(format!("{needle}{tail}"));
            texts.push(format!("x{needle}{tail}é"));
        }
    }
    let mut stats = Stats::default();
    for t in &texts {
        let line = LogLine {
            level: guess_level(t),
            text: t.clone(),
        };
        let _ = is_immediate(&line);
        update_stats(&mut stats, &line);
        let signals = extract(std::slice::from_ref(&line));
        let _ = heuristic(&signals, &stats);
        let _ = normalize_line(t, 7);
    }
    let all: Vec<LogLine> = texts
        .into_iter()
        .map(|text| LogLine {
            level: LineLevel::Info,
            text,
        })
        .collect();
    let signals = extract(&all);
    assert_complete("odd", &heuristic(&signals, &stats));
}
