//! Coding-mode log signals (PROTOCOL.md §3.5): input line normalization, the
//! "send an insight now" test, running counts ([`Stats`]) and the extraction
//! of short, named signals ([`Signals`]) from build and test output.
//!
//! Recognized tools: cargo/rustc/clippy, pytest and Python tracebacks, go test
//! and the go compiler, jest/vitest, tsc, eslint, pylint/flake8, Maven
//! surefire/javac, Gradle, gcc/clang/ld, npm, curl/pip/git network errors and
//! OOM kills. Lines may arrive one per [`LogLine`] (as badges send them) or
//! several joined by `\n`; whitespace is collapsed before matching, so both
//! raw and [`normalize_line`]d text work.
//!
//! Every signal entry is a short description or identifier (a test name, a
//! module, an error code and its message clipped to [`MAX_ENTRY_CHARS`], a
//! host), never a whole log line: the insights built from them must not quote
//! the log. Each list is deduplicated and capped at [`MAX_PER_LIST`].

use std::collections::BTreeSet;

use serde::Serialize;

/// Entries kept per signal list.
pub const MAX_PER_LIST: usize = 10;
/// Longest signal entry, in characters.
pub const MAX_ENTRY_CHARS: usize = 120;
/// Longest error or warning message kept inside an entry, in characters
/// (longer ones are cut at a word boundary and end in `…`).
const MAX_MESSAGE_CHARS: usize = 60;
/// Lines after `Traceback (most recent call last)` searched for its final
/// `XError: message` line.
const TRACEBACK_WINDOW: u32 = 80;

/// Severity the device gave a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineLevel {
    Info,
    Warn,
    Error,
}

/// One `coding` `log` event: its level and (normalized) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LineLevel,
    pub text: String,
}

impl LogLine {
    pub fn new(level: LineLevel, text: impl Into<String>) -> Self {
        LogLine {
            level,
            text: text.into(),
        }
    }
}

/// Short, named facts pulled out of the log for the LLM and the heuristic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signals {
    /// Failing test names (`auth::tests::token_expiry`,
    /// `tests/test_auth.py::test_login`, `TestLogin`, `AuthTest.testLogin`,
    /// `AuthService › rejects an expired token`).
    pub failed_tests: Vec<String>,
    /// Failed tests according to the runners' summaries (or the named ones
    /// when no summary was seen); not capped.
    pub failed_test_count: u32,
    /// Modules or packages that could not be found or imported.
    pub import_errors: Vec<String>,
    /// Compiler errors (`E0308 mismatched types (src/auth.rs:42)`), uncaught
    /// exception kinds (`KeyError`), npm error codes.
    pub build_errors: Vec<String>,
    /// Out-of-memory conditions and kills.
    pub oom: Vec<String>,
    /// Timeouts and deadlines.
    pub timeouts: Vec<String>,
    /// DNS, connection and TLS failures, with the host when known.
    pub network_errors: Vec<String>,
    /// Compiler and linter warnings.
    pub lint_warnings: Vec<String>,
}

impl Signals {
    /// True when nothing was recognized (a zero count included).
    pub fn is_empty(&self) -> bool {
        self.failed_tests.is_empty()
            && self.failed_test_count == 0
            && self.import_errors.is_empty()
            && self.build_errors.is_empty()
            && self.oom.is_empty()
            && self.timeouts.is_empty()
            && self.network_errors.is_empty()
            && self.lint_warnings.is_empty()
    }

    /// True when any error-like signal is present (lint warnings excluded).
    pub fn has_errors(&self) -> bool {
        !self.failed_tests.is_empty()
            || self.failed_test_count > 0
            || !self.import_errors.is_empty()
            || !self.build_errors.is_empty()
            || !self.oom.is_empty()
            || !self.timeouts.is_empty()
            || !self.network_errors.is_empty()
    }
}

/// Running counts over a coding session's log, as sent to the LLM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// `log`, `step` or `phase`: [`update_stats`] sets `log`; the session
    /// sets the others.
    pub last_event: String,
    pub error_count: u32,
    pub warn_count: u32,
    pub last_step: Option<String>,
    pub last_phase: Option<String>,
    /// Outcome of the last finished build or test run (`None`: none seen).
    /// Failing tests count as a failed run.
    pub build_success: Option<bool>,
    pub build_running: bool,
    /// Failed tests in the current run, from runner summaries and go's
    /// `--- FAIL:` lines; reset when a new build or run starts.
    pub tests_failed: u32,
}

/// Markdown code-fence info strings dropped even when code follows on the
/// same line (`` ```rust fn main() {} ``` ``).
const FENCE_LANGS: &[&str] = &[
    "bash",
    "c",
    "c++",
    "console",
    "cpp",
    "css",
    "diff",
    "dockerfile",
    "go",
    "html",
    "ini",
    "java",
    "javascript",
    "js",
    "json",
    "jsx",
    "kotlin",
    "log",
    "output",
    "plaintext",
    "powershell",
    "py",
    "python",
    "rb",
    "rs",
    "ruby",
    "rust",
    "sh",
    "shell",
    "sql",
    "swift",
    "terminal",
    "text",
    "toml",
    "ts",
    "tsx",
    "txt",
    "typescript",
    "xml",
    "yaml",
    "yml",
    "zsh",
];

/// Input line normalization (PROTOCOL.md §3.5): code fences (```` ``` ````,
/// with their language tag) removed, whitespace collapsed, cut to `max_len`
/// characters.
pub fn normalize_line(text: &str, max_len: usize) -> String {
    let unfenced = strip_fences(text);
    let collapsed = collapse(&unfenced);
    if collapsed.chars().count() <= max_len {
        return collapsed;
    }
    let cut: String = collapsed.chars().take(max_len).collect();
    cut.trim_end().to_string()
}

/// Replaces each run of 3+ backticks with a space; an opening fence also
/// loses its info string: the rest of its line when that is one short token,
/// or a known language name followed by code on the same line.
fn strip_fences(text: &str) -> String {
    if !text.contains("```") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut opening = true;
    while let Some(pos) = rest.find("```") {
        out.push_str(&rest[..pos]);
        out.push(' ');
        let after = rest[pos..].trim_start_matches('`');
        rest = after;
        if opening {
            let line_end = after.find('\n').unwrap_or(after.len());
            let info = after[..line_end].trim_end();
            let token_end = after
                .find(|c: char| c.is_whitespace() || c == '`')
                .unwrap_or(after.len());
            let token = &after[..token_end];
            let is_tag = |t: &str| {
                !t.is_empty()
                    && t.len() <= 20
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+#._-".contains(c))
            };
            if is_tag(info) && !info.contains(' ') {
                rest = &after[info.len()..];
            } else if is_tag(token) && FENCE_LANGS.contains(&token.to_ascii_lowercase().as_str()) {
                rest = &after[token_end..];
            }
        }
        opening = !opening;
    }
    out.push_str(rest);
    out
}

/// Whether a line should trigger an insight without the debounce: error
/// level, traceback and panic starts, stack frames, test failures and
/// failure summaries, OOM kills.
pub fn is_immediate(line: &LogLine) -> bool {
    line.level == LineLevel::Error
        || line
            .text
            .split('\n')
            .any(|sub| immediate_text(&collapse(sub)))
}

fn immediate_text(l: &str) -> bool {
    const NEEDLES: &[&str] = &[
        "Traceback (most recent call last)",
        "panicked at",
        "Exception in thread",
        "Caused by: ",
        "FATAL ERROR",
        "Segmentation fault",
        "core dumped",
        "<<< FAILURE!",
        "<<< ERROR!",
        "--- FAIL:",
        "BUILD FAILURE",
        "BUILD FAILED",
        "FAILURE: Build failed",
        "error: could not compile",
        "error: test failed",
        "npm ERR!",
        "OOMKilled",
        "OutOfMemoryError",
        "heap out of memory",
    ];
    if l.is_empty() {
        return false;
    }
    if NEEDLES.iter().any(|n| l.contains(n)) {
        return true;
    }
    let first = first_token(l);
    if first == "FAIL" || first == "FAILED" || first == "✕" || first == "×" || first == "●" {
        return true;
    }
    if l.ends_with(" FAILED") || l.starts_with("panic: ") {
        return true;
    }
    if l.starts_with("goroutine ") && l.contains("[running]") {
        return true;
    }
    if is_stack_frame(l) || oom_kill(l).is_some() {
        return true;
    }
    matches!(summary(l), Some(s) if s.failed() > 0 || s.marked_failed())
}

/// `at java.base/…(…)`, `at com.example.Foo.bar(Foo.java:12)`,
/// `at Object.<anonymous> (/app/x.js:3:9)`.
fn is_stack_frame(l: &str) -> bool {
    let Some(rest) = l.strip_prefix("at ") else {
        return false;
    };
    if rest.starts_with("java.") || rest.starts_with("javax.") || rest.starts_with("jdk.") {
        return true;
    }
    let tok = first_token(rest);
    l.ends_with(')') && tok.contains('.') && (tok.contains('(') || l.contains(".js:"))
}

/// True when most non-empty lines contain CJK characters: the heuristic
/// answers in Chinese then.
pub fn mostly_chinese(lines: &[LogLine]) -> bool {
    let mut total = 0usize;
    let mut cjk = 0usize;
    for line in lines {
        if line.text.trim().is_empty() {
            continue;
        }
        total += 1;
        if line.text.chars().any(is_cjk) {
            cjk += 1;
        }
    }
    total > 0 && cjk * 2 > total
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

/// Updates the counts with one log line: `lastEvent`, error/warn counts by
/// level, and build state from the text (compiles and test runs starting,
/// `Finished`, `BUILD SUCCESS`/`FAILURE`, `error: could not compile`,
/// `npm ERR!`, cargo/pytest/jest/go/surefire/gradle failure summaries).
pub fn update_stats(stats: &mut Stats, line: &LogLine) {
    stats.last_event = "log".to_string();
    match line.level {
        LineLevel::Error => stats.error_count = stats.error_count.saturating_add(1),
        LineLevel::Warn => stats.warn_count = stats.warn_count.saturating_add(1),
        LineLevel::Info => {}
    }
    for sub in line.text.split('\n') {
        let l = collapse(sub);
        if !l.is_empty() {
            apply_text(stats, &l);
        }
    }
}

fn apply_text(stats: &mut Stats, l: &str) {
    fn done(stats: &mut Stats, ok: bool) {
        stats.build_running = false;
        stats.build_success = Some(ok);
    }
    if let Some(s) = summary(l) {
        let failed = s.failed();
        match s {
            Summary::Cargo { .. } | Summary::MavenClass { .. } => {
                stats.tests_failed = stats.tests_failed.saturating_add(failed);
            }
            _ => stats.tests_failed = failed,
        }
        if failed > 0 || s.marked_failed() {
            done(stats, false);
        } else if stats.tests_failed == 0 {
            done(stats, true);
        } else {
            stats.build_running = false;
        }
        return;
    }
    let go_fails = l
        .match_indices("--- FAIL: ")
        .filter(|(i, m)| !first_token(&l[i + m.len()..]).contains('/'))
        .count() as u32;
    if go_fails > 0 {
        stats.tests_failed = stats.tests_failed.saturating_add(go_fails);
        stats.build_success = Some(false);
        return;
    }
    match outcome(l) {
        Some(Outcome::Start { reset }) => {
            stats.build_running = true;
            if reset {
                stats.tests_failed = 0;
            }
        }
        Some(Outcome::Success) => {
            if stats.tests_failed == 0 {
                done(stats, true);
            } else {
                stats.build_running = false;
            }
        }
        Some(Outcome::Failure) => done(stats, false),
        None => {}
    }
}

enum Outcome {
    /// A build or test run starts; `reset` when it is a new run (not one more
    /// test binary of the same `cargo test`).
    Start {
        reset: bool,
    },
    Success,
    Failure,
}

fn outcome(l: &str) -> Option<Outcome> {
    const FAILURE_NEEDLES: &[&str] = &[
        "error: could not compile",
        "BUILD FAILURE",
        "BUILD FAILED",
        "FAILURE: Build failed",
        "error: test failed",
        "Failed to compile",
        "make: *** ",
        "error Command failed with exit code",
        "ERROR: Job failed",
    ];
    let first = first_token(l);
    if FAILURE_NEEDLES.iter().any(|n| l.contains(n))
        || l.starts_with("npm ERR!")
        || l.starts_with("npm error ")
        || first == "FAIL"
        || oom_kill(l).is_some()
    {
        return Some(Outcome::Failure);
    }
    if let Some(rest) = l.strip_prefix("Found ")
        && count_before(rest, " error").is_some_and(|n| n > 0)
        && first_token(rest).parse::<u32>().is_ok()
    {
        return Some(Outcome::Failure);
    }
    if let Some(code) = after(l, "Process completed with exit code ") {
        return Some(if first_token(code).trim_end_matches('.') == "0" {
            Outcome::Success
        } else {
            Outcome::Failure
        });
    }
    let cargo_finished = first == "Finished" && (l.contains("target(s)") || l.contains("profile"));
    if cargo_finished {
        // `cargo test` prints `Finished` before running the test binaries.
        return Some(Outcome::Success);
    }
    if l.contains("BUILD SUCCESS")
        || l == "PASS"
        || (first == "ok" && l.split_whitespace().count() >= 2)
        || l.contains("ompiled successfully")
        || l.contains("Successfully compiled")
        || (l.contains("built in ") && l.ends_with('s') && l.len() < 40)
    {
        return Some(Outcome::Success);
    }
    let starts_new = ["Compiling ", "Checking ", "Building "]
        .iter()
        .any(|p| l.starts_with(p))
        || (l.starts_with("[INFO] Building ") && !l.contains(" jar:") && !l.contains(" war:"))
        || l.contains("Scanning for projects")
        || l.contains("test session starts")
        || l.contains("building for production")
        || l.contains("Starting a Gradle Daemon")
        || (l.starts_with("> ") && first_token(&l[2..]).contains('@'));
    if starts_new {
        return Some(Outcome::Start { reset: true });
    }
    if (first == "Running" && !l.contains("Running with"))
        || l.starts_with("=== RUN")
        || first == "RUNS"
        || l.starts_with("> Task :")
    {
        return Some(Outcome::Start { reset: false });
    }
    None
}

/// A test runner's summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Summary {
    /// `test result: FAILED. 3 passed; 2 failed; …` (one per test binary).
    Cargo { failed: u32, marked: bool },
    /// `== 2 failed, 5 passed in 1.23s ==` (errors count as failures).
    Pytest { failed: u32 },
    /// `Tests: 2 failed, 8 passed, 10 total` / vitest `Tests 2 failed | 8 passed`.
    Jest { failed: u32 },
    /// surefire per class: `Tests run: 3, Failures: 1, …, Time elapsed: …`.
    MavenClass { failed: u32 },
    /// surefire total: `Tests run: 12, Failures: 1, Errors: 1, Skipped: 0`.
    MavenTotal { failed: u32 },
    /// `5 tests completed, 2 failed`.
    Gradle { failed: u32 },
}

impl Summary {
    fn failed(self) -> u32 {
        match self {
            Summary::Cargo { failed, .. }
            | Summary::Pytest { failed }
            | Summary::Jest { failed }
            | Summary::MavenClass { failed }
            | Summary::MavenTotal { failed }
            | Summary::Gradle { failed } => failed,
        }
    }

    fn marked_failed(self) -> bool {
        matches!(self, Summary::Cargo { marked: true, .. })
    }
}

fn summary(l: &str) -> Option<Summary> {
    if let Some(rest) = after(l, "test result: ") {
        return Some(Summary::Cargo {
            failed: count_before(rest, " failed").unwrap_or(0),
            marked: rest.starts_with("FAILED"),
        });
    }
    if let Some(rest) = l.strip_prefix("Tests:").or_else(|| {
        l.strip_prefix("Tests ")
            .filter(|r| r.contains('|') || r.contains(" total"))
    }) && (rest.contains(" passed") || rest.contains(" failed") || rest.contains(" total"))
    {
        return Some(Summary::Jest {
            failed: count_before(rest, " failed").unwrap_or(0),
        });
    }
    if let Some(rest) = after(l, "Tests run: ")
        && rest.contains("Failures: ")
    {
        let failed = number_after(rest, "Failures: ").unwrap_or(0)
            + number_after(rest, "Errors: ").unwrap_or(0);
        return Some(if rest.contains("Time elapsed") {
            Summary::MavenClass { failed }
        } else {
            Summary::MavenTotal { failed }
        });
    }
    if l.contains(" tests completed, ") {
        return Some(Summary::Gradle {
            failed: count_before(l, " failed").unwrap_or(0),
        });
    }
    pytest_summary(l).map(|failed| Summary::Pytest { failed })
}

/// `==== 2 failed, 5 passed, 1 warning in 1.23s ====` or the `-q` form
/// without the rule: failed + errors.
fn pytest_summary(l: &str) -> Option<u32> {
    const WORDS: &[&str] = &[
        "passed",
        "failed",
        "error",
        "errors",
        "skipped",
        "xfailed",
        "xpassed",
        "warning",
        "warnings",
        "deselected",
        "rerun",
    ];
    let core = l.trim_matches(|c: char| c == '=' || c == ' ');
    let (counts, tail) = core.split_once(" in ")?;
    if !tail.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut failed = 0u32;
    let mut any_result = false;
    for item in counts.split(", ") {
        let (n, word) = item.split_once(' ')?;
        let n: u32 = n.parse().ok()?;
        if !WORDS.contains(&word) {
            return None;
        }
        match word {
            "failed" | "error" | "errors" => {
                failed += n;
                any_result = true;
            }
            "passed" => any_result = true,
            _ => {}
        }
    }
    any_result.then_some(failed)
}

/// Extracts the signals from a window of log lines.
pub fn extract(lines: &[LogLine]) -> Signals {
    let mut p = Parser::default();
    for line in lines {
        for sub in line.text.split('\n') {
            let l = collapse(sub);
            if l.is_empty() {
                p.section = Section::None;
                p.pending = None;
                continue;
            }
            p.line(&l);
            apply_text(&mut p.stats, &l);
        }
    }
    p.finish()
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Section {
    #[default]
    None,
    /// After cargo's `failures:`: one test name per line.
    CargoFailures,
    /// After surefire's `[ERROR] Failures:` / `[ERROR] Errors:`.
    MavenFailures,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Build,
    Lint,
}

#[derive(Default)]
struct Parser {
    sig: Signals,
    stats: Stats,
    section: Section,
    /// Lines left in which a Python traceback's final line may come.
    traceback: u32,
    /// A rustc error or warning whose ` --> file:line:col` may follow.
    pending: Option<(ListKind, usize)>,
    could_not_compile: Option<String>,
    /// Failed test names dropped by the list cap, still counted.
    overflow: BTreeSet<String>,
}

impl Parser {
    fn finish(mut self) -> Signals {
        if self.sig.build_errors.is_empty()
            && let Some(c) = self.could_not_compile.take()
        {
            push(&mut self.sig.build_errors, c);
        }
        let named = self
            .sig
            .failed_tests
            .iter()
            .filter(|n| !(is_go_test(n) && n.contains('/')))
            .count() as u32;
        let named = named + self.overflow.len() as u32;
        self.sig.failed_test_count = self.stats.tests_failed.max(named);
        self.sig
    }

    fn line(&mut self, l: &str) {
        let pending = self.pending.take();
        if let Some(loc) = l.strip_prefix("--> ") {
            if let Some((kind, idx)) = pending {
                self.locate(kind, idx, first_token(loc));
            }
            return;
        }
        self.sections(l);
        self.failed_tests(l);
        self.imports(l);
        self.build_errors(l);
        self.exceptions(l);
        self.oom(l);
        self.timeouts(l);
        self.network(l);
        self.lint(l);
    }

    /// Appends ` (file:line)` to a rustc entry from its `-->` line.
    fn locate(&mut self, kind: ListKind, idx: usize, loc: &str) {
        let Some(loc) = file_line(loc) else {
            return;
        };
        let list = match kind {
            ListKind::Build => &mut self.sig.build_errors,
            ListKind::Lint => &mut self.sig.lint_warnings,
        };
        let Some(entry) = list.get(idx) else {
            return;
        };
        let located = clip(&format!("{entry} ({loc})"), MAX_ENTRY_CHARS);
        if list.contains(&located) {
            list.remove(idx);
        } else {
            list[idx] = located;
        }
    }

    fn sections(&mut self, l: &str) {
        match self.section {
            Section::CargoFailures => {
                if is_rust_path(l) {
                    push_test(
                        &mut self.sig.failed_tests,
                        &mut self.overflow,
                        l.to_string(),
                    );
                } else {
                    self.section = Section::None;
                }
            }
            Section::MavenFailures => {
                let body = l.strip_prefix("[ERROR]").unwrap_or(l).trim_start();
                let tok = first_token(body);
                match java_test_name(tok) {
                    Some(name) if !l.contains("Tests run:") => {
                        push_test(&mut self.sig.failed_tests, &mut self.overflow, name);
                    }
                    _ if tok == "Run" => {}
                    _ => self.section = Section::None,
                }
            }
            Section::None => {}
        }
        if l == "failures:" {
            self.section = Section::CargoFailures;
        } else if matches!(
            l,
            "[ERROR] Failures:" | "[ERROR] Errors:" | "Failed tests:" | "Tests in error:"
        ) {
            self.section = Section::MavenFailures;
        }
    }

    fn failed_tests(&mut self, l: &str) {
        let tests = &mut self.sig.failed_tests;
        // cargo: `test auth::tests::token_expiry ... FAILED`
        for (i, _) in l.match_indices(" ... FAILED") {
            if let Some(t) = l[..i].rfind("test ") {
                let name = &l[t + 5..i];
                if is_rust_path(name) || is_plain_name(name) {
                    push_test(tests, &mut self.overflow, name.to_string());
                }
            }
        }
        // cargo: `---- auth::tests::token_expiry stdout ----`
        for pos in ends_of(l, "---- ") {
            let name = first_token(&l[pos..]);
            let rest = l.get(pos + name.len()..).unwrap_or("");
            if rest.starts_with(" stdout ----") && !name.is_empty() {
                push_test(tests, &mut self.overflow, name.to_string());
            }
        }
        // pytest: `FAILED tests/x.py::test_y - Err`, `tests/x.py::test_y FAILED`
        for (i, m) in l
            .match_indices("FAILED")
            .chain(l.match_indices("ERROR"))
            .collect::<Vec<_>>()
        {
            let next = first_token(&l[i + m.len()..]);
            if l[i + m.len()..].starts_with(' ') && is_pytest_id(next) {
                push_test(tests, &mut self.overflow, next.to_string());
            }
            let prev = l[..i].trim_end().rsplit(' ').next().unwrap_or("");
            if is_pytest_id(prev) {
                push_test(tests, &mut self.overflow, prev.to_string());
            }
        }
        // pytest: uncaught kind after ` - ` in a FAILED line (not assertions).
        if l.starts_with("FAILED ")
            && let Some(kind) = after(l, " - ")
            && let Some(kind) = exception_kind(first_token(kind))
            && !kind.ends_with("AssertionError")
        {
            self.exception(kind);
        }
        let tests = &mut self.sig.failed_tests;
        // go: `--- FAIL: TestLogin (0.00s)`
        for pos in ends_of(l, "--- FAIL: ") {
            let name = first_token(&l[pos..]);
            if !name.is_empty() {
                push_test(tests, &mut self.overflow, name.to_string());
            }
        }
        // jest/vitest: `✕ rejects an expired token (5 ms)`, `● Suite › name`
        let first = first_token(l);
        if matches!(first, "✕" | "×" | "✗" | "●") {
            let name = strip_duration(l[first.len()..].trim());
            let skip = ["Test suite failed to run", "Console"];
            if !name.is_empty() && !skip.contains(&name) && !name.starts_with("Test suite") {
                push_test(tests, &mut self.overflow, clip(name, MAX_ENTRY_CHARS));
            }
        }
        // vitest: `FAIL src/auth.test.ts > AuthService > rejects …`
        if first == "FAIL"
            && let Some(rest) = after(l, " > ")
        {
            push_test(
                tests,
                &mut self.overflow,
                clip(strip_duration(rest), MAX_ENTRY_CHARS),
            );
        }
        // surefire: `[ERROR] testLogin(com.example.AuthTest)  Time elapsed: … <<< FAILURE!`
        if (l.contains("<<< FAILURE!") || l.contains("<<< ERROR!")) && !l.contains("Tests run:") {
            let body = l.strip_prefix("[ERROR]").unwrap_or(l).trim_start();
            if let Some(name) = java_test_name(first_token(body)) {
                push_test(tests, &mut self.overflow, name);
            }
        }
        // gradle: `AuthTest > testLogin() FAILED`
        if let Some(head) = l.strip_suffix(" FAILED")
            && let Some((class, method)) = head.rsplit_once(" > ")
        {
            let class = class.rsplit(['.', ' ']).next().unwrap_or(class);
            let method = method.trim_end_matches("()");
            if !class.is_empty() && !method.is_empty() && !method.contains(' ') {
                push_test(tests, &mut self.overflow, format!("{class}.{method}"));
            }
        }
    }

    fn imports(&mut self, l: &str) {
        let imports = &mut self.sig.import_errors;
        let quoted_after = |needle: &str| -> Vec<String> {
            ends_of(l, needle)
                .filter_map(|p| quoted(&l[p..]).map(str::to_string))
                .collect()
        };
        // Python: `No module named 'x'` (py3) or `No module named x` (py2).
        for pos in ends_of(l, "No module named ") {
            let rest = &l[pos..];
            let name = quoted(rest).unwrap_or_else(|| trim_punct(first_token(rest)));
            push(imports, name);
        }
        // Python: `cannot import name 'foo' from 'bar' (/path)`.
        for pos in ends_of(l, "cannot import name ") {
            let rest = &l[pos..];
            if let Some(name) = quoted(rest) {
                let from = after(rest, " from ").and_then(quoted);
                match from {
                    Some(m) => push(imports, format!("{name} from {m}")),
                    None => push(imports, name),
                };
            }
        }
        for needle in [
            "Cannot find module ",
            "Can't resolve ",
            "Could not resolve ",
            "unresolved import ",
            "use of undeclared crate or module ",
            "cannot find package ",
        ] {
            for name in quoted_after(needle) {
                push(imports, name);
            }
        }
        for pos in ends_of(l, "no required module provides package ") {
            push(
                imports,
                trim_punct(first_token(&l[pos..])).trim_end_matches(';'),
            );
        }
        // javac: `package org.foo does not exist`
        for (i, _) in l.match_indices(" does not exist") {
            if let Some(p) = l[..i].rfind("package ") {
                let name = &l[p + 8..i];
                if !name.is_empty() && !name.contains(' ') {
                    push(imports, name);
                }
            }
        }
        if l.contains("MODULE_NOT_FOUND") {
            push(&mut self.sig.build_errors, "MODULE_NOT_FOUND");
        }
    }

    fn build_errors(&mut self, l: &str) {
        // rustc: `error[E0308]: mismatched types`
        for pos in ends_of(l, "error[E") {
            let rest = &l[pos..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let Some(msg) = rest[digits.len()..].strip_prefix("]: ") else {
                continue;
            };
            let (msg, loc) = split_location(msg);
            let mut entry = format!("E{digits} {}", message(msg));
            if let Some(loc) = loc {
                entry = format!("{entry} ({loc})");
            }
            if let Some(idx) = push(&mut self.sig.build_errors, entry) {
                self.pending = Some((ListKind::Build, idx));
            }
        }
        // cargo: `error: could not compile `x`` (maybe behind a CI prefix).
        if let Some(rest) = after(l, "error: could not compile ") {
            let krate = quoted(rest).unwrap_or_else(|| first_token(rest));
            self.could_not_compile = Some(format!("could not compile `{krate}`"));
        }
        // rustc/cargo: `error: …` without a code.
        if let Some(msg) = l.strip_prefix("error: ")
            && !IGNORED_ERROR_PREFIXES.iter().any(|p| msg.starts_with(p))
        {
            let (msg, _) = split_location(msg);
            if let Some(idx) = push(&mut self.sig.build_errors, message(msg)) {
                self.pending = Some((ListKind::Build, idx));
            }
        }
        // gcc/clang/javac: `src/main.c:12:5: error: msg`, `Foo.java:10: error: msg`
        for needle in [": error: ", ": fatal error: "] {
            for (i, m) in l.match_indices(needle) {
                let msg = &l[i + m.len()..];
                if msg.starts_with("Killed signal") {
                    push(&mut self.sig.oom, "compiler killed (SIGKILL)");
                    continue;
                }
                let tool = l[..i].rsplit(' ').next().unwrap_or("");
                let msg = message(msg.trim_end_matches('.'));
                let entry = match file_line(tool) {
                    Some(loc) => format!("{msg} ({loc})"),
                    None if tool == "collect2" || tool.ends_with("ld") => {
                        format!("linker failed: {msg}")
                    }
                    None if !tool.is_empty() => format!("{tool}: {msg}"),
                    None => msg,
                };
                push(&mut self.sig.build_errors, entry);
            }
        }
        for pos in ends_of(l, "undefined reference to ") {
            let sym = first_token(&l[pos..]).trim_matches(|c| c == '`' || c == '\'');
            push(
                &mut self.sig.build_errors,
                format!("undefined reference to `{sym}`"),
            );
        }
        // tsc: `src/x.ts(12,5): error TS2322: msg` / `src/x.ts:12:5 - error TS2322: msg`
        for (i, _) in l.match_indices("error TS") {
            let rest = &l[i + 6..];
            let code: String = rest
                .chars()
                .take(2)
                .chain(rest.chars().skip(2).take_while(char::is_ascii_digit))
                .collect();
            let Some(msg) = rest[code.len()..].strip_prefix(": ") else {
                continue;
            };
            let msg = message(msg.trim_end_matches('.'));
            let before = l[..i].trim_end().trim_end_matches(" -").trim_end();
            let loc = file_line(before.rsplit(' ').next().unwrap_or(""));
            let entry = match loc {
                Some(loc) => format!("{code} {msg} ({loc})"),
                None => format!("{code} {msg}"),
            };
            push(&mut self.sig.build_errors, entry);
        }
        // javac via Maven: `[ERROR] /src/…/Foo.java:[10,5] cannot find symbol`
        for (i, _) in l.match_indices(".java:[") {
            let start = l[..i].rfind(' ').map_or(0, |s| s + 1);
            let file = basename(&l[start..i + 5]);
            let rest = &l[i + 7..];
            let line_no: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let Some(close) = rest.find("] ") else {
                continue;
            };
            let msg = rest[close + 2..].trim_start_matches("error: ");
            let msg = msg.trim_start_matches("warning: ");
            let entry = format!("{} ({file}:{line_no})", message(msg));
            if l.starts_with("[WARNING]") {
                push(&mut self.sig.lint_warnings, entry);
            } else {
                push(&mut self.sig.build_errors, entry);
            }
        }
        // go: `./auth/token.go:33:2: undefined: foo`
        let first = first_token(l);
        if let Some(path) = first.strip_suffix(':')
            && path.contains(".go:")
            && path.matches(':').count() == 2
            && let Some(loc) = file_line(path)
        {
            let msg = l[first.len()..].trim();
            if !msg.is_empty() {
                push(
                    &mut self.sig.build_errors,
                    format!("{} ({loc})", message(msg)),
                );
            }
        }
        // npm: `npm ERR! code E404`, `npm ERR! Missing script: "build"`
        for prefix in ["npm ERR! ", "npm error "] {
            if let Some(rest) = l.strip_prefix(prefix) {
                if let Some(code) = rest.strip_prefix("code ") {
                    let code = first_token(code);
                    let covered = [
                        "ELIFECYCLE",
                        "ENOTFOUND",
                        "ECONNRESET",
                        "ECONNREFUSED",
                        "ETIMEDOUT",
                        "EAI_AGAIN",
                    ];
                    if !code.is_empty() && !covered.contains(&code) {
                        push(&mut self.sig.build_errors, format!("npm {code}"));
                    }
                } else if let Some(script) = after(rest, "Missing script: ") {
                    let script = quoted(script).unwrap_or(script);
                    push(
                        &mut self.sig.build_errors,
                        format!("missing npm script `{script}`"),
                    );
                }
            }
        }
    }

    /// Uncaught exception kinds: a Python traceback's final `XError: msg`,
    /// `Exception in thread "main" x.Y`, `Caused by: x.Y`, or a line starting
    /// with `SomeError:` (Node, Python, pytest's `E` lines).
    fn exceptions(&mut self, l: &str) {
        if let Some(pos) = ends_of(l, "Traceback (most recent call last)").last() {
            self.traceback = TRACEBACK_WINDOW;
            // Whole traceback joined into one line: its last `Kind:`.
            let kinds: Vec<&str> = l[pos..]
                .split(' ')
                .filter(|t| t.ends_with(':'))
                .filter_map(exception_kind)
                .collect();
            if let Some(kind) = kinds.last() {
                self.exception(kind);
                self.traceback = 0;
            }
            return;
        }
        for needle in ["Exception in thread ", "Caused by: "] {
            if let Some(rest) = after(l, needle)
                && let Some(kind) = rest.split(' ').find_map(|t| {
                    exception_kind(t).filter(|k| k.contains('.') || needle.starts_with('C'))
                })
            {
                self.exception(kind);
                return;
            }
        }
        let mut tokens = l.split(' ');
        let mut first = tokens.next().unwrap_or("");
        let pytest_e = first == "E";
        if pytest_e {
            first = tokens.next().unwrap_or("");
        }
        let lone = tokens.next().is_none();
        if (first.ends_with(':') || lone)
            && let Some(kind) = exception_kind(first)
        {
            let from_traceback = self.traceback > 0;
            if !kind.ends_with("AssertionError") || (from_traceback && !pytest_e) {
                self.exception(kind);
            }
            if from_traceback {
                self.traceback = 0;
            }
        } else if self.traceback > 0 {
            self.traceback -= 1;
        }
    }

    fn exception(&mut self, kind: &str) {
        let simple = kind.rsplit('.').next().unwrap_or(kind);
        match simple {
            "MemoryError" => push(&mut self.sig.oom, "Python MemoryError"),
            "OutOfMemoryError" => None,
            _ => push(&mut self.sig.build_errors, kind),
        };
    }

    fn oom(&mut self, l: &str) {
        let oom = &mut self.sig.oom;
        if l.contains("OOMKilled") {
            push(oom, "OOMKilled (container memory limit)");
        }
        if let Some(rest) = after(l, "OutOfMemoryError") {
            let reason = rest.strip_prefix(": ").map(|r| clip(r, 30));
            match reason {
                Some(r) if !r.is_empty() => push(oom, format!("Java OutOfMemoryError ({r})")),
                _ => push(oom, "Java OutOfMemoryError"),
            };
        }
        if l.contains("JavaScript heap out of memory") {
            push(oom, "JavaScript heap out of memory");
        } else if let Some(rest) = after(l, "Killed process ") {
            let name = after(rest, "(")
                .and_then(|r| r.split(')').next())
                .unwrap_or("");
            if name.is_empty() {
                push(oom, "kernel OOM killer");
            } else {
                push(oom, format!("kernel OOM killer: {name}"));
            }
        } else if l.to_ascii_lowercase().contains("out of memory") {
            push(oom, "out of memory");
        }
        if l.contains("Cannot allocate memory") {
            push(oom, "cannot allocate memory (ENOMEM)");
        }
        if l.contains("memory allocation of ") && l.contains(" failed") {
            push(oom, "memory allocation failed");
        }
        if let Some(kill) = oom_kill(l) {
            push(oom, kill);
        }
    }

    fn timeouts(&mut self, l: &str) {
        let timeouts = &mut self.sig.timeouts;
        let lower = l.to_ascii_lowercase();
        if let Some(rest) = after(l, "timed out after ") {
            push(
                timeouts,
                format!("timed out after {}", trim_punct(first_token(rest))),
            );
        } else if let Some(i) = lower.find("timed out") {
            let subject = l[..i]
                .split(' ')
                .rev()
                .find(|w| !w.is_empty())
                .filter(|w| w.len() <= 12 && w.chars().all(|c| c.is_ascii_alphabetic()))
                .map(str::to_ascii_lowercase);
            match subject {
                Some(s) if s != "has" && s != "was" && s != "have" => {
                    push(timeouts, format!("{s} timed out"))
                }
                _ => push(timeouts, "timed out"),
            };
        }
        if lower.contains("deadline exceeded") {
            if lower.contains("context deadline exceeded") {
                push(timeouts, "context deadline exceeded");
            } else {
                push(timeouts, "deadline exceeded");
            }
        }
        if l.contains("ETIMEDOUT") {
            push(timeouts, "ETIMEDOUT");
        }
        if lower.contains("i/o timeout") {
            push(timeouts, "i/o timeout");
        }
        if let Some(rest) = after(&lower, "timeout of ") {
            let n = first_token(rest);
            let unit = rest.split(' ').nth(1).unwrap_or("");
            if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() {
                push(timeouts, format!("timeout of {n} {}", trim_punct(unit)));
            }
        } else if l.contains("maximum execution time") {
            push(timeouts, "job exceeded its maximum execution time");
        } else if let Some(rest) = after(l, "has been running for over ") {
            let head = l.split(" has been").next().unwrap_or("");
            let name = head.strip_prefix("test ").unwrap_or(head);
            push(
                timeouts,
                format!("{} running over {}", clip(name, 40), first_token(rest)),
            );
        }
    }

    fn network(&mut self, l: &str) {
        let net = &mut self.sig.network_errors;
        let lower = l.to_ascii_lowercase();
        let host = find_host(l);
        let mut add = |what: &str| push_net(net, what, host.as_deref());
        let dns = ["ENOTFOUND", "EAI_AGAIN"].iter().any(|n| l.contains(n))
            || lower.contains("could not resolve host")
            || lower.contains("temporary failure in name resolution")
            || lower.contains("name or service not known")
            || lower.contains("nodename nor servname")
            || lower.contains("no such host")
            || lower.contains("failed to resolve")
            || lower.contains("name resolution");
        if dns {
            add("DNS lookup failed");
        }
        if lower.contains("connection refused") || l.contains("ECONNREFUSED") {
            add("connection refused");
        }
        if l.contains("ECONNRESET")
            || lower.contains("connection reset")
            || lower.contains("socket hang up")
        {
            add("connection reset");
        }
        let tls = lower.contains("certificate verify failed")
            || lower.contains("ssl certificate problem")
            || lower.contains("unable to get local issuer certificate")
            || lower.contains("self signed certificate")
            || lower.contains("self-signed certificate")
            || lower.contains("x509: certificate")
            || l.contains("UNABLE_TO_VERIFY_LEAF_SIGNATURE")
            || l.contains("CERT_HAS_EXPIRED")
            || l.contains("SSLError")
            || lower.contains("tls handshake");
        if tls {
            add("TLS certificate error");
        }
        if lower.contains("network is unreachable") || l.contains("ENETUNREACH") {
            add("network unreachable");
        }
        if l.contains("ETIMEDOUT")
            || lower.contains("connection timed out")
            || lower.contains("connect timed out")
        {
            add("connection timed out");
        }
    }

    fn lint(&mut self, l: &str) {
        // rustc/clippy: `warning: unused variable: `x``
        if let Some(msg) = l.strip_prefix("warning: ") {
            let (msg, loc) = split_location(msg);
            let summary_line = (msg.contains(" generated ") && msg.contains("warning"))
                || msg.starts_with("build failed")
                || msg.starts_with("unused manifest key");
            if !summary_line {
                let mut entry = message(msg);
                if let Some(loc) = loc {
                    entry = format!("{entry} ({loc})");
                }
                if let Some(idx) = push(&mut self.sig.lint_warnings, entry) {
                    self.pending = Some((ListKind::Lint, idx));
                }
            }
            return;
        }
        // gcc/clang/javac: `file.c:3:5: warning: msg [-Wunused]`
        if let Some(i) = l.find(": warning: ") {
            let tool = l[..i].rsplit(' ').next().unwrap_or("");
            if let Some(loc) = file_line(tool) {
                let msg = message(&l[i + 11..]);
                push(&mut self.sig.lint_warnings, format!("{msg} ({loc})"));
                return;
            }
        }
        let tokens: Vec<&str> = l.split(' ').collect();
        // eslint: `12:7 warning 'x' is defined but never used no-unused-vars`
        if tokens.len() >= 4 && is_row_col(tokens[0]) && matches!(tokens[1], "warning" | "error") {
            let rule = tokens[tokens.len() - 1];
            if rule
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-/@".contains(c))
            {
                let msg = tokens[2..tokens.len() - 1].join(" ");
                push(
                    &mut self.sig.lint_warnings,
                    format!("{rule}: {}", message(&msg)),
                );
            }
            return;
        }
        // pylint `app.py:3:0: W0611: Unused import os (unused-import)`,
        // flake8 `app.py:3:1: F401 'os' imported but unused`
        if tokens.len() >= 3
            && tokens[0].contains(".py:")
            && tokens[0].ends_with(':')
            && let Some(code) = lint_code(tokens[1])
        {
            let mut msg = tokens[2..].join(" ");
            if msg.ends_with(')')
                && let Some(open) = msg.rfind(" (")
            {
                msg.truncate(open);
            }
            push(
                &mut self.sig.lint_warnings,
                format!("{code} {}", message(&msg)),
            );
        }
    }
}

/// cargo `error:` lines that are summaries or consequences, not causes.
const IGNORED_ERROR_PREFIXES: &[&str] = &[
    "test failed",
    "aborting due to",
    "build failed",
    "process didn't exit successfully",
    "Recipe ",
    "failed to run custom build command",
    "could not compile",
    "script ",
];

/// OOM-style kills: shell `Killed`, exit code/status 137, `signal: killed`,
/// SIGKILL.
fn oom_kill(l: &str) -> Option<&'static str> {
    const CODES: &[&str] = &[
        "code 137",
        "code: 137",
        "status 137",
        "status: 137",
        "exit 137",
        "with 137",
        "returned 137",
    ];
    if CODES.iter().any(|c| l.contains(c)) {
        return Some("exit code 137 (SIGKILL)");
    }
    let killed_word = l == "Killed"
        || l.ends_with(" Killed")
        || l.contains("signal: killed")
        || l.contains("SIGKILL")
        || l.contains("Killed signal")
        || l.split(' ')
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w[1] == "Killed" && w[0].chars().all(|c| c.is_ascii_digit()));
    killed_word.then_some("killed (SIGKILL)")
}

/// Pushes a deduplicated, clipped entry if the list has room; returns its
/// index when it was added.
fn push(list: &mut Vec<String>, entry: impl AsRef<str>) -> Option<usize> {
    let entry = clip(entry.as_ref().trim(), MAX_ENTRY_CHARS);
    if entry.is_empty() || list.len() >= MAX_PER_LIST || list.contains(&entry) {
        return None;
    }
    list.push(entry);
    Some(list.len() - 1)
}

/// Pushes `what: host` (or `what`), merging an entry without a host into one
/// of the same kind with a host.
fn push_net(list: &mut Vec<String>, what: &str, host: Option<&str>) {
    match host {
        Some(h) => {
            let entry = format!("{what}: {h}");
            if let Some(i) = list.iter().position(|e| e == what) {
                if list.contains(&entry) {
                    list.remove(i);
                } else {
                    list[i] = clip(&entry, MAX_ENTRY_CHARS);
                }
            } else {
                push(list, entry);
            }
        }
        None => {
            let prefix = format!("{what}: ");
            if !list.iter().any(|e| e.starts_with(&prefix)) {
                push(list, what);
            }
        }
    }
}

/// Pushes a test name, merging jest's leaf `name` with `Suite › name`;
/// names beyond the cap go to `overflow` (counted, not listed).
fn push_test(list: &mut Vec<String>, overflow: &mut BTreeSet<String>, name: String) {
    let name = name.trim().to_string();
    if name.is_empty() {
        return;
    }
    if list
        .iter()
        .any(|e| e.ends_with(&format!(" › {name}")) || e.ends_with(&format!(" > {name}")))
    {
        return;
    }
    if let Some(i) = list
        .iter()
        .position(|e| name.ends_with(&format!(" › {e}")) || name.ends_with(&format!(" > {e}")))
    {
        list[i] = clip(&name, MAX_ENTRY_CHARS);
        return;
    }
    if list.len() >= MAX_PER_LIST && !list.contains(&name) {
        overflow.insert(name);
        return;
    }
    push(list, name);
}

/// Collapses whitespace runs to one space and trims.
fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `max` characters, trimmed.
fn clip(s: &str, max: usize) -> String {
    let out: String = s.chars().take(max).collect();
    out.trim().to_string()
}

/// A message cut to [`MAX_MESSAGE_CHARS`] at a word boundary, `…` appended
/// when cut.
fn message(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        return s.to_string();
    }
    let cut: String = s.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > MAX_MESSAGE_CHARS / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end_matches([' ', ',', ';', ':']))
}

/// Byte offsets just past each occurrence of `needle`.
fn ends_of<'a>(hay: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    hay.match_indices(needle).map(|(i, m)| i + m.len())
}

/// The text after the first occurrence of `needle`.
fn after<'a>(hay: &'a str, needle: &str) -> Option<&'a str> {
    hay.find(needle).map(|i| &hay[i + needle.len()..])
}

fn first_token(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// The content of a leading `'…'`, `"…"`, `` `…` `` or `‘…’` quote.
fn quoted(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let open = s.chars().next()?;
    let close = match open {
        '\'' | '"' | '`' => open,
        '‘' => '’',
        '“' => '”',
        _ => return None,
    };
    let rest = &s[open.len_utf8()..];
    let end = rest.find(close)?;
    Some(&rest[..end]).filter(|q| !q.is_empty())
}

fn trim_punct(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, '\'' | '"' | '`' | ',' | ';' | '(' | ')' | '[' | ']'))
        .trim_end_matches(['.', ':'])
}

/// The number right before `word` (`2 failed` → 2), summed over matches.
fn count_before(s: &str, word: &str) -> Option<u32> {
    let mut total = None;
    for (i, _) in s.match_indices(word) {
        let prev = s[..i].rsplit([' ', '|']).next().unwrap_or("");
        if let Ok(n) = prev.parse::<u32>() {
            total = Some(total.unwrap_or(0) + n);
        }
    }
    total
}

/// The number right after `label` (`Failures: 1` → 1).
fn number_after(s: &str, label: &str) -> Option<u32> {
    let rest = after(s, label)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Splits rustc's ` --> src/x.rs:1:2` off a message.
fn split_location(msg: &str) -> (&str, Option<String>) {
    match msg.find(" --> ") {
        Some(i) => (&msg[..i], file_line(first_token(&msg[i + 5..]))),
        None => (msg, None),
    }
}

/// `path:line[:col]` or `path(line,col)` → `path:line` (leading `./` and
/// absolute directories dropped).
fn file_line(tok: &str) -> Option<String> {
    let tok = tok.trim_end_matches(':');
    let (path, line) = if let Some(open) = tok.find('(') {
        let line: String = tok[open + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (&tok[..open], line)
    } else {
        let mut parts = tok.split(':');
        let path = parts.next()?;
        let line = parts.next()?.to_string();
        (path, line)
    };
    let looks_like_file = path.contains('.')
        && !path.contains("://")
        && path
            .chars()
            .all(|c| c.is_alphanumeric() || "./\\_-+@".contains(c));
    if line.is_empty() || !line.chars().all(|c| c.is_ascii_digit()) || !looks_like_file {
        return None;
    }
    let path = path.strip_prefix("./").unwrap_or(path);
    let path = if path.starts_with('/') || path.contains(":\\") {
        shorten_path(path)
    } else {
        path.to_string()
    };
    Some(format!("{path}:{line}"))
}

/// The last two components of an absolute path.
fn shorten_path(path: &str) -> String {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    parts[parts.len().saturating_sub(2)..].join("/")
}

fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// `auth::tests::token_expiry`, `token_expiry`.
fn is_rust_path(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(':')
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':')
        && (s.contains("::") || s.contains('_'))
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(' ')
}

fn is_pytest_id(s: &str) -> bool {
    s.contains(".py::") || (s.contains("::") && s.contains(".py"))
}

/// `TestLogin`, `TestLogin/expired_token`.
pub(crate) fn is_go_test(s: &str) -> bool {
    let head = s.split('/').next().unwrap_or(s);
    head.strip_prefix("Test").is_some_and(|r| {
        r.is_empty() || r.starts_with(|c: char| c.is_ascii_uppercase() || c == '_')
    }) && head.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// surefire/JUnit names → `Class.method`: `testLogin(com.example.AuthTest)`,
/// `com.example.AuthTest.testLogin`, `AuthTest.testLogin:42->helper:9`.
fn java_test_name(tok: &str) -> Option<String> {
    let tok = tok.trim_end_matches(':');
    if let Some(open) = tok.find('(') {
        let head = &tok[..open];
        if !head.contains('.') {
            let class = tok[open + 1..].split(')').next()?.rsplit('.').next()?;
            return java_pair(class, head);
        }
        return java_test_name(head);
    }
    let base = tok.split(':').next()?;
    let mut parts = base.rsplit('.');
    let method = parts.next()?;
    let class = parts.next()?;
    java_pair(class, method)
}

fn java_pair(class: &str, method: &str) -> Option<String> {
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    (class.starts_with(|c: char| c.is_ascii_uppercase()) && ident(class) && ident(method))
        .then(|| format!("{class}.{method}"))
}

/// `KeyError`, `requests.exceptions.ConnectionError`, `java.io.IOException`
/// (a trailing `:` allowed); not bare `Error`.
fn exception_kind(tok: &str) -> Option<&str> {
    let t = tok.trim_end_matches(':');
    let simple = t.rsplit('.').next()?;
    let ident = t.starts_with(|c: char| c.is_ascii_alphabetic())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$');
    let kind = simple.ends_with("Error")
        || simple.ends_with("Exception")
        || matches!(simple, "KeyboardInterrupt" | "SystemExit" | "StopIteration");
    (ident && kind && simple != "Error" && simple.starts_with(|c: char| c.is_ascii_uppercase()))
        .then_some(t)
}

/// `W0611` (pylint) or `F401` (flake8), a trailing `:` allowed.
fn lint_code(tok: &str) -> Option<&str> {
    let t = tok.trim_end_matches(':');
    let mut chars = t.chars();
    let letter = chars.next()?;
    let digits = chars.as_str();
    ("CRWEFB".contains(letter)
        && (digits.len() == 3 || digits.len() == 4)
        && digits.chars().all(|c| c.is_ascii_digit()))
    .then_some(t)
}

fn is_row_col(tok: &str) -> bool {
    tok.split_once(':').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.chars().all(|c| c.is_ascii_digit())
            && b.chars().all(|c| c.is_ascii_digit())
    })
}

/// Drops a trailing jest/vitest duration: `name (5 ms)`, `name 12ms`.
fn strip_duration(s: &str) -> &str {
    let s = s.trim();
    if s.ends_with("ms)") || s.ends_with("s)") {
        if let Some(open) = s.rfind(" (")
            && s[open + 2..].starts_with(|c: char| c.is_ascii_digit())
        {
            return s[..open].trim_end();
        }
    } else if let Some((head, last)) = s.rsplit_once(' ')
        && last.ends_with("ms")
        && last[..last.len() - 2].chars().all(|c| c.is_ascii_digit())
        && last.len() > 2
    {
        return head;
    }
    s
}

/// A host (or host:port) named in a network error line.
fn find_host(l: &str) -> Option<String> {
    const AFTER: &[&str] = &[
        "ENOTFOUND ",
        "EAI_AGAIN ",
        "ECONNREFUSED ",
        "ECONNRESET ",
        "ETIMEDOUT ",
        "resolve host: ",
        "resolve host ",
        "host='",
        "host=\"",
        "lookup ",
        "Failed to resolve ",
        "failed to resolve ",
        "Failed to connect to ",
        "connect to ",
        "dial tcp ",
        "connecting to ",
    ];
    for needle in AFTER {
        if let Some(rest) = after(l, needle) {
            let tok = quoted(rest).unwrap_or_else(|| first_token(rest));
            let tok = tok.split(['\'', '"']).next().unwrap_or("");
            let mut host = trim_punct(tok).to_string();
            if *needle == "Failed to connect to " || *needle == "connect to " {
                // curl: `Failed to connect to host port 443`
                if let Some(port) = after(rest, " port ") {
                    let port = first_token(port);
                    if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() {
                        host = format!("{host}:{port}");
                    }
                }
            }
            if is_host(&host) {
                return Some(host);
            }
        }
    }
    for pos in ends_of(l, "://") {
        let host: String = l[pos..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || ".-:_".contains(*c))
            .collect();
        let host = host.trim_end_matches([':', '.']);
        if is_host(host) {
            return Some(host.to_string());
        }
    }
    None
}

fn is_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 80
        && (h.contains('.') || h.contains(':') || h == "localhost")
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_[]".contains(c))
        && h.chars().any(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> LogLine {
        LogLine::new(LineLevel::Error, text)
    }

    fn info(text: &str) -> LogLine {
        LogLine::new(LineLevel::Info, text)
    }

    fn extract_text(text: &str) -> Signals {
        let lines: Vec<LogLine> = text.lines().map(info).collect();
        extract(&lines)
    }

    #[test]
    fn normalize_collapses_and_strips_fences() {
        assert_eq!(normalize_line("  a \t b\n\n c  ", 512), "a b c");
        assert_eq!(
            normalize_line("```rust\nfn main() {}\n```", 512),
            "fn main() {}"
        );
        assert_eq!(normalize_line("```python print(1)```", 512), "print(1)");
        assert_eq!(
            normalize_line("see ```x = 1``` here", 512),
            "see x = 1 here"
        );
        assert_eq!(normalize_line("````\nplain\n````", 512), "plain");
    }

    #[test]
    fn normalize_cuts_on_char_boundary() {
        assert_eq!(normalize_line("编译失败了吗", 3), "编译失");
        assert_eq!(normalize_line("abc def", 4), "abc");
        assert_eq!(normalize_line("héllo", 2), "hé");
        assert_eq!(normalize_line("", 10), "");
    }

    #[test]
    fn immediate_lines() {
        assert!(is_immediate(&err("anything")));
        for text in [
            "Traceback (most recent call last):",
            "thread 'main' panicked at src/main.rs:3:5:",
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
            "at java.base/java.util.Objects.requireNonNull(Objects.java:233)",
            "at com.example.AuthService.login(AuthService.java:42)",
            "test result: FAILED. 3 passed; 2 failed; 0 ignored",
            "==== 2 failed, 5 passed in 1.20s ====",
            "--- FAIL: TestLogin (0.00s)",
            "FAIL\tgithub.com/acme/auth\t0.012s",
            "Tests: 2 failed, 8 passed, 10 total",
            "Tests run: 5, Failures: 1, Errors: 0, Skipped: 0",
            "Killed",
        ] {
            assert!(is_immediate(&info(text)), "{text}");
        }
        for text in [
            "Compiling huddle v0.1.0",
            "test result: ok. 5 passed; 0 failed; 0 ignored",
            "Tests: 8 passed, 8 total",
            "==== 5 passed in 0.50s ====",
            "at the end of the day",
            "",
        ] {
            assert!(!is_immediate(&info(text)), "{text}");
        }
    }

    #[test]
    fn cargo_tests() {
        let s = extract_text(
            "test auth::tests::token_expiry ... FAILED\n\
             test auth::tests::ok ... ok\n\
             failures:\n\
             \n\
             ---- auth::tests::token_expiry stdout ----\n\
             thread 'auth::tests::token_expiry' panicked at src/auth.rs:88:9:\n\
             \n\
             failures:\n    auth::tests::token_expiry\n    auth::tests::refresh_rotates\n\
             \n\
             test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        assert_eq!(
            s.failed_tests,
            ["auth::tests::token_expiry", "auth::tests::refresh_rotates"]
        );
        assert_eq!(s.failed_test_count, 2);
    }

    #[test]
    fn pytest_and_traceback() {
        let s = extract_text(
            "tests/test_api.py::test_login FAILED [ 50%]\n\
             FAILED tests/test_api.py::test_login - KeyError: 'exp'\n\
             FAILED tests/test_api.py::test_logout - AssertionError: assert 401 == 200\n\
             ==== 2 failed, 5 passed in 1.20s ====",
        );
        assert_eq!(
            s.failed_tests,
            [
                "tests/test_api.py::test_login",
                "tests/test_api.py::test_logout"
            ]
        );
        assert_eq!(s.failed_test_count, 2);
        assert_eq!(s.build_errors, ["KeyError"]);

        let s = extract_text(
            "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    import requests\nModuleNotFoundError: No module named 'requests'",
        );
        assert_eq!(s.import_errors, ["requests"]);
        assert_eq!(s.build_errors, ["ModuleNotFoundError"]);

        // A whole traceback sent as one (normalized) message.
        let s = extract(&[err(&normalize_line(
            "Traceback (most recent call last):\n File \"a.py\", line 1\n    x = d['k']\nKeyError: 'k'",
            512,
        ))]);
        assert_eq!(s.build_errors, ["KeyError"]);
        let s = extract_text(
            "ImportError: cannot import name 'soft_unicode' from 'markupsafe' (/x.py)",
        );
        assert_eq!(s.import_errors, ["soft_unicode from markupsafe"]);
    }

    #[test]
    fn go_and_jest_tests() {
        let s = extract_text(
            "--- FAIL: TestLogin (0.00s)\n    --- FAIL: TestLogin/expired (0.00s)\n--- FAIL: TestRefresh (0.01s)\nFAIL\nFAIL\tgithub.com/acme/auth\t0.012s",
        );
        assert_eq!(
            s.failed_tests,
            ["TestLogin", "TestLogin/expired", "TestRefresh"]
        );
        assert_eq!(s.failed_test_count, 2);

        let s = extract_text(
            "FAIL src/auth.test.ts\n  AuthService\n    ✓ issues a token (3 ms)\n    ✕ rejects an expired token (5 ms)\n  ● AuthService › rejects an expired token\nTests:       1 failed, 4 passed, 5 total",
        );
        assert_eq!(s.failed_tests, ["AuthService › rejects an expired token"]);
        assert_eq!(s.failed_test_count, 1);

        let s = extract_text(
            " FAIL  src/auth.test.ts > AuthService > rejects expired 12ms\n Tests  1 failed | 3 passed (4)",
        );
        assert_eq!(s.failed_tests, ["AuthService > rejects expired"]);
        assert_eq!(s.failed_test_count, 1);
    }

    #[test]
    fn surefire_and_gradle() {
        let s = extract_text(
            "[ERROR] Tests run: 3, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.05 s <<< FAILURE! - in com.example.AuthTest\n\
             [ERROR] testLogin(com.example.AuthTest)  Time elapsed: 0.01 s  <<< FAILURE!\n\
             [ERROR] Failures:\n\
             [ERROR]   AuthTest.testLogin:42 expected:<200> but was:<401>\n\
             [ERROR]   AuthTest.testRefresh:57->assertOk:12 expected:<true>\n\
             [INFO]\n\
             [ERROR] Tests run: 12, Failures: 2, Errors: 0, Skipped: 0",
        );
        assert_eq!(
            s.failed_tests,
            ["AuthTest.testLogin", "AuthTest.testRefresh"]
        );
        assert_eq!(s.failed_test_count, 2);

        let s = extract_text("AuthTest > testLogin() FAILED\n5 tests completed, 1 failed");
        assert_eq!(s.failed_tests, ["AuthTest.testLogin"]);
        assert_eq!(s.failed_test_count, 1);
    }

    #[test]
    fn imports() {
        let s = extract_text(
            "Error: Cannot find module 'express'\n\
             Module not found: Error: Can't resolve './utils' in '/app/src'\n\
             error[E0432]: unresolved import `crate::auth::Token`\n\
             [ERROR] /app/src/main/java/com/x/App.java:[3,24] package org.slf4j does not exist\n\
             main.go:4:2: no required module provides package github.com/acme/log; to add it:\n\
             ImportError: No module named yaml",
        );
        assert_eq!(
            s.import_errors,
            [
                "express",
                "./utils",
                "crate::auth::Token",
                "org.slf4j",
                "github.com/acme/log",
                "yaml"
            ]
        );
    }

    #[test]
    fn build_errors() {
        let s = extract_text(
            "error[E0308]: mismatched types\n  --> src/auth.rs:42:13\n\
             src/main.c:12:5: error: 'count' undeclared (first use in this function)\n\
             src/app.ts(7,3): error TS2322: Type 'string' is not assignable to type 'number'.\n\
             [ERROR] /home/ci/app/src/main/java/com/example/Foo.java:[10,5] cannot find symbol\n\
             ./auth/token.go:33:2: undefined: jwtParse\n\
             collect2: error: ld returned 1 exit status\n\
             npm ERR! code E404",
        );
        assert_eq!(
            s.build_errors,
            [
                "E0308 mismatched types (src/auth.rs:42)",
                "'count' undeclared (first use in this function) (src/main.c:12)",
                "TS2322 Type 'string' is not assignable to type 'number' (src/app.ts:7)",
                "cannot find symbol (Foo.java:10)",
                "undefined: jwtParse (auth/token.go:33)",
                "linker failed: ld returned 1 exit status",
                "npm E404",
            ]
        );
        let s = extract_text("error: could not compile `huddle` (lib) due to 1 previous error");
        assert_eq!(s.build_errors, ["could not compile `huddle`"]);
    }

    #[test]
    fn oom_timeouts_network() {
        let s = extract_text(
            "/bin/sh: line 1:  4242 Killed                  cargo build --release\n\
             Error: Process completed with exit code 137.\n\
             FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n\
             Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n\
             State: OOMKilled",
        );
        assert_eq!(
            s.oom,
            [
                "killed (SIGKILL)",
                "exit code 137 (SIGKILL)",
                "JavaScript heap out of memory",
                "Java OutOfMemoryError (Java heap space)",
                "OOMKilled (container memory limit)",
            ]
        );
        assert!(s.build_errors.is_empty(), "{:?}", s.build_errors);

        let s = extract_text(
            "panic: test timed out after 10m0s\n\
             Error: context deadline exceeded\n\
             thrown: \"Exceeded timeout of 5000 ms for a test.\"",
        );
        assert_eq!(
            s.timeouts,
            [
                "timed out after 10m0s",
                "context deadline exceeded",
                "timeout of 5000 ms"
            ]
        );

        let s = extract_text(
            "npm ERR! request to https://registry.npmjs.org/left-pad failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org\n\
             curl: (6) Could not resolve host: github.com\n\
             psycopg2.OperationalError: connection to server at \"localhost\" (127.0.0.1), port 5432 failed: Connection refused\n\
             Error: read ECONNRESET\n\
             requests.exceptions.SSLError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed')))",
        );
        assert_eq!(
            s.network_errors,
            [
                "DNS lookup failed: registry.npmjs.org",
                "DNS lookup failed: github.com",
                "connection refused",
                "connection reset",
                "TLS certificate error: pypi.org",
            ]
        );
    }

    #[test]
    fn lint() {
        let s = extract_text(
            "warning: unused variable: `token`\n  --> src/auth.rs:10:9\n\
             warning: `huddle` (lib) generated 1 warning\n\
             12:7  warning  'user' is defined but never used  no-unused-vars\n\
             app/main.py:3:0: W0611: Unused import os (unused-import)\n\
             app/main.py:4:1: F401 'sys' imported but unused",
        );
        assert_eq!(
            s.lint_warnings,
            [
                "unused variable: `token` (src/auth.rs:10)",
                "no-unused-vars: 'user' is defined but never used",
                "W0611 Unused import os",
                "F401 'sys' imported but unused",
            ]
        );
        assert!(!s.has_errors());
    }

    #[test]
    fn lists_are_deduped_and_capped() {
        let text: String = (0..30)
            .map(|i| format!("test m::t{i} ... FAILED\ntest m::t{i} ... FAILED\n"))
            .collect();
        let s = extract_text(&text);
        assert_eq!(s.failed_tests.len(), MAX_PER_LIST);
        assert_eq!(s.failed_test_count, 30);
        assert!(s.failed_tests.iter().all(|t| t.len() < 20));
    }

    #[test]
    fn stats_track_builds_and_tests() {
        let mut st = Stats::default();
        let feed = |st: &mut Stats, level, text: &str| update_stats(st, &LogLine::new(level, text));
        feed(&mut st, LineLevel::Info, "Compiling huddle v0.1.0 (/work)");
        assert!(st.build_running);
        assert_eq!(st.build_success, None);
        feed(
            &mut st,
            LineLevel::Info,
            "Finished `test` profile [unoptimized + debuginfo] target(s) in 3.1s",
        );
        assert_eq!(st.build_success, Some(true));
        feed(&mut st, LineLevel::Info, "Running unittests src/lib.rs");
        assert!(st.build_running);
        feed(
            &mut st,
            LineLevel::Error,
            "test result: FAILED. 3 passed; 2 failed; 0 ignored",
        );
        feed(&mut st, LineLevel::Info, "Running tests/api.rs");
        feed(
            &mut st,
            LineLevel::Info,
            "test result: ok. 4 passed; 0 failed",
        );
        assert_eq!(st.build_success, Some(false));
        assert_eq!(st.tests_failed, 2);
        assert!(!st.build_running);
        assert_eq!((st.error_count, st.warn_count), (1, 0));
        assert_eq!(st.last_event, "log");

        feed(&mut st, LineLevel::Warn, "warning: unused import");
        feed(&mut st, LineLevel::Info, "Compiling huddle v0.1.0 (/work)");
        assert_eq!(st.tests_failed, 0);
        feed(
            &mut st,
            LineLevel::Error,
            "error: could not compile `huddle`",
        );
        assert_eq!(st.build_success, Some(false));
        assert_eq!(st.warn_count, 1);

        let mut st = Stats::default();
        for (text, ok, failed) in [
            ("[INFO] BUILD SUCCESS", Some(true), 0),
            ("[INFO] BUILD FAILURE", Some(false), 0),
            ("==== 2 failed, 5 passed in 1.2s ====", Some(false), 2),
            ("FAIL\tgithub.com/acme/auth\t0.01s", Some(false), 2),
            ("Tests: 2 failed, 8 passed, 10 total", Some(false), 2),
            ("npm ERR! code ELIFECYCLE", Some(false), 2),
        ] {
            feed(&mut st, LineLevel::Info, text);
            assert_eq!((st.build_success, st.tests_failed), (ok, failed), "{text}");
        }
    }

    #[test]
    fn chinese_detection() {
        let zh = [info("编译失败"), info("测试没有通过"), info("cargo test")];
        assert!(mostly_chinese(&zh));
        assert!(!mostly_chinese(&[info("编译"), info("a"), info("b")]));
        assert!(!mostly_chinese(&[]));
    }
}
