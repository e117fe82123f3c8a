//! The coding insight without the LLM (PROTOCOL.md §3.5): built from the
//! extracted [`Signals`] and [`Stats`], and used to fill weak LLM answers so
//! `risks`, `actions` and `nextSteps` are never empty.
//!
//! Findings are ranked OOM, missing imports, build errors, failing tests,
//! network, timeouts, lint; each names its subject (the test, module, error
//! code, host) and gives a concrete command or next step. Strings are built
//! from the short signal entries only, never from raw log lines.
//!
//! Language: [`heuristic`] answers in Chinese when the step/phase names or
//! the signal entries are mostly Chinese, else English; [`heuristic_lang`]
//! takes the choice explicitly, e.g. from
//! [`signals::mostly_chinese`](super::signals::mostly_chinese) over the
//! buffered lines. Commands, test names and codes stay as they are in both
//! languages.

use serde::{Deserialize, Serialize};

use super::signals::{Signals, Stats, is_go_test};

pub const MAX_INSIGHTS: usize = 5;
pub const MAX_RISKS: usize = 4;
pub const MAX_ACTIONS: usize = 6;
pub const MAX_NEXT_STEPS: usize = 6;
/// Longest item kept by [`finish`], in characters.
pub const MAX_ITEM_CHARS: usize = 200;

/// The four lists of an `insight` / `summary` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Insight {
    pub insights: Vec<String>,
    pub risks: Vec<String>,
    pub actions: Vec<String>,
    pub next_steps: Vec<String>,
}

/// Trims and collapses each item, clips it to [`MAX_ITEM_CHARS`], drops empty
/// ones and duplicates, and applies the list caps.
pub fn finish(insight: Insight) -> Insight {
    Insight {
        insights: clean(insight.insights, MAX_INSIGHTS),
        risks: clean(insight.risks, MAX_RISKS),
        actions: clean(insight.actions, MAX_ACTIONS),
        next_steps: clean(insight.next_steps, MAX_NEXT_STEPS),
    }
}

/// Fills the lists the LLM left empty (after [`finish`]ing it) from the
/// heuristic `fallback`, then [`finish`]es the result.
pub fn fill_weak(from_llm: Insight, fallback: &Insight) -> Insight {
    let mut out = finish(from_llm);
    for (mine, theirs) in [
        (&mut out.insights, &fallback.insights),
        (&mut out.risks, &fallback.risks),
        (&mut out.actions, &fallback.actions),
        (&mut out.next_steps, &fallback.next_steps),
    ] {
        if mine.is_empty() {
            mine.clone_from(theirs);
        }
    }
    finish(out)
}

fn clean(items: Vec<String>, cap: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(cap.min(items.len()));
    for item in items {
        let collapsed = item.split_whitespace().collect::<Vec<_>>().join(" ");
        let item: String = collapsed.chars().take(MAX_ITEM_CHARS).collect();
        if item.is_empty() || out.contains(&item) {
            continue;
        }
        out.push(item);
        if out.len() == cap {
            break;
        }
    }
    out
}

/// One ranked finding: an insight, its risk, actions and a next step.
struct Finding {
    insight: String,
    risk: String,
    actions: Vec<String>,
    next: String,
}

/// English or Chinese, chosen once per call.
#[derive(Clone, Copy)]
struct Lang {
    zh: bool,
}

impl Lang {
    fn t(self, en: String, zh: String) -> String {
        if self.zh { zh } else { en }
    }
}

/// The insight from signals and counts alone, in Chinese when the step or
/// phase names or the signal entries are mostly Chinese (see
/// [`heuristic_lang`] to choose). Risks, actions and next steps are never
/// empty.
pub fn heuristic(signals: &Signals, stats: &Stats) -> Insight {
    heuristic_lang(signals, stats, looks_chinese(signals, stats))
}

/// Chinese text in the step/phase names or in most signal entries.
fn looks_chinese(signals: &Signals, stats: &Stats) -> bool {
    let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    if [&stats.last_step, &stats.last_phase]
        .into_iter()
        .flatten()
        .any(|s| cjk(s))
    {
        return true;
    }
    let entries: Vec<&String> = [
        &signals.failed_tests,
        &signals.import_errors,
        &signals.build_errors,
        &signals.oom,
        &signals.timeouts,
        &signals.network_errors,
        &signals.lint_warnings,
    ]
    .into_iter()
    .flatten()
    .collect();
    let zh = entries.iter().filter(|e| cjk(e)).count();
    zh > 0 && zh * 2 >= entries.len()
}

/// [`heuristic`] with the language chosen by the caller: `zh` answers in
/// Chinese (e.g. `signals::mostly_chinese(&lines)`).
pub fn heuristic_lang(signals: &Signals, stats: &Stats, zh: bool) -> Insight {
    let lang = Lang { zh };
    let mut findings = Vec::new();
    findings.extend(oom(signals, lang));
    findings.extend(imports(signals, lang));
    findings.extend(build(signals, lang));
    findings.extend(tests(signals, stats, lang));
    findings.extend(network(signals, lang));
    findings.extend(timeouts(signals, lang));
    findings.extend(lint(signals, lang));
    if findings.is_empty() {
        findings.push(general(stats, lang));
    }
    let mut out = Insight::default();
    for f in findings {
        out.insights.push(f.insight);
        out.risks.push(f.risk);
        out.actions.extend(f.actions);
        out.next_steps.push(f.next);
    }
    finish(out)
}

fn oom(s: &Signals, l: Lang) -> Option<Finding> {
    let first = s.oom.first()?;
    let what = s.oom.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
    let action = if s.oom.iter().any(|o| o.contains("Java ")) {
        l.t(
            "Raise the JVM heap (-Xmx) or the container memory limit".into(),
            "调大 JVM 堆（-Xmx）或容器内存上限".into(),
        )
    } else if first.contains("JavaScript") {
        l.t(
            "Raise Node's heap (NODE_OPTIONS=--max-old-space-size=4096) or the memory limit".into(),
            "调大 Node 堆内存（NODE_OPTIONS=--max-old-space-size=4096）或内存上限".into(),
        )
    } else {
        l.t(
            "Raise the memory limit or reduce parallel jobs (-j)".into(),
            "提高内存上限，或减少并行任务数（-j）".into(),
        )
    };
    Some(Finding {
        insight: l.t(
            format!("Out of memory: {what}"),
            format!("内存不足：{what}"),
        ),
        risk: l.t(
            "Processes killed for memory leave builds and test results incomplete".into(),
            "进程因内存被杀，构建和测试结果不完整".into(),
        ),
        actions: vec![action],
        next: l.t(
            "Re-run with fewer parallel jobs (e.g. -j 2) and watch memory (`free -m`, `docker stats`)"
                .into(),
            "用更少的并行任务（如 -j 2）重跑，并观察内存（`free -m`、`docker stats`）".into(),
        ),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Eco {
    Python,
    Node,
    Rust,
    Java,
    Go,
    Unknown,
}

/// The ecosystem a missing module belongs to: from its shape, else from the
/// other signals.
fn import_eco(module: &str, s: &Signals) -> Eco {
    if module.contains("::") {
        return Eco::Rust;
    }
    if module.contains(" from ") {
        return Eco::Python;
    }
    if module.starts_with("./") || module.starts_with("../") || module.starts_with('@') {
        return Eco::Node;
    }
    let head = module.split('/').next().unwrap_or(module);
    if module.contains('/') && head.contains('.') {
        return Eco::Go;
    }
    if ["java.", "javax.", "org.", "com.", "io.", "net."]
        .iter()
        .any(|p| module.starts_with(p))
        && module.matches('.').count() >= 1
        && s.build_errors.iter().any(|b| b.contains(".java:"))
    {
        return Eco::Java;
    }
    let kinds = |names: &[&str]| {
        s.build_errors.iter().any(|b| {
            names
                .iter()
                .any(|n| b == n || b.ends_with(&format!(".{n}")))
        })
    };
    if kinds(&["ModuleNotFoundError", "ImportError"]) {
        return Eco::Python;
    }
    if s.build_errors
        .iter()
        .any(|b| b == "MODULE_NOT_FOUND" || b.starts_with("TS") || b.starts_with("npm "))
    {
        return Eco::Node;
    }
    if s.build_errors.iter().any(|b| b.contains(".java:")) {
        return Eco::Java;
    }
    match s.failed_tests.first().map(|t| runner(t)) {
        Some(Runner::Pytest) => Eco::Python,
        Some(Runner::Jest) => Eco::Node,
        Some(Runner::Cargo) => Eco::Rust,
        Some(Runner::Go) => Eco::Go,
        Some(Runner::Maven) => Eco::Java,
        _ => Eco::Unknown,
    }
}

/// Import name → PyPI package, where they differ.
fn pip_name(module: &str) -> &str {
    match module {
        "yaml" => "pyyaml",
        "cv2" => "opencv-python",
        "PIL" => "pillow",
        "sklearn" => "scikit-learn",
        "bs4" => "beautifulsoup4",
        "dotenv" => "python-dotenv",
        "jwt" => "PyJWT",
        "dateutil" => "python-dateutil",
        "Crypto" => "pycryptodome",
        "serial" => "pyserial",
        "MySQLdb" => "mysqlclient",
        "attr" => "attrs",
        other => other,
    }
}

fn imports(s: &Signals, l: Lang) -> Option<Finding> {
    let m = s.import_errors.first()?.as_str();
    let listed = s
        .import_errors
        .iter()
        .take(3)
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let eco = import_eco(m, s);
    let (action, next) = match eco {
        _ if m.contains(" from ") => {
            let (name, module) = m.split_once(" from ").unwrap_or((m, m));
            (
                l.t(
                    format!("Check that `{module}` still exports `{name}`: pin the version that has it or update the import"),
                    format!("确认 `{module}` 仍导出 `{name}`：固定到有它的版本，或修改导入"),
                ),
                l.t(
                    format!("Run `pip show {module}` to see the installed version, then re-run"),
                    format!("用 `pip show {module}` 查看已装版本，然后重跑"),
                ),
            )
        }
        Eco::Python => {
            let pkg = pip_name(m.split('.').next().unwrap_or(m));
            (
                l.t(
                    format!("pip install {pkg} / add it to requirements"),
                    format!("pip install {pkg}，并加入 requirements"),
                ),
                l.t(
                    "Re-run in the same virtualenv after `pip install -r requirements.txt`".into(),
                    "在同一个虚拟环境里 `pip install -r requirements.txt` 后重跑".into(),
                ),
            )
        }
        Eco::Node if m.starts_with('.') => (
            l.t(
                format!("Check that `{m}` exists relative to the importing file (path, case, extension)"),
                format!("确认 `{m}` 相对导入文件存在（路径、大小写、扩展名）"),
            ),
            l.t(
                "Re-run the build after fixing the path".into(),
                "修正路径后重新构建".into(),
            ),
        ),
        Eco::Node => (
            l.t(
                format!("npm install {m} and add it to package.json"),
                format!("npm install {m}，并写入 package.json"),
            ),
            l.t(
                "Re-run after `npm install` (or `npm ci`)".into(),
                "执行 `npm install`（或 `npm ci`）后重跑".into(),
            ),
        ),
        Eco::Rust => (
            l.t(
                format!("Check the path `{m}`; add the crate to Cargo.toml if it is external"),
                format!("检查路径 `{m}`；外部 crate 需加入 Cargo.toml"),
            ),
            l.t(
                "Run `cargo check` to confirm it resolves".into(),
                "运行 `cargo check` 确认已能解析".into(),
            ),
        ),
        Eco::Java => (
            l.t(
                format!("Add the Maven/Gradle dependency that provides `{m}`"),
                format!("在 Maven/Gradle 中添加提供 `{m}` 的依赖"),
            ),
            l.t(
                "Run `mvn -q compile` to confirm it resolves".into(),
                "运行 `mvn -q compile` 确认已能解析".into(),
            ),
        ),
        Eco::Go => (
            l.t(format!("go get {m}"), format!("执行 go get {m}")),
            l.t(
                "Run `go mod tidy` and rebuild".into(),
                "运行 `go mod tidy` 后重新构建".into(),
            ),
        ),
        Eco::Unknown => (
            l.t(
                format!("Install `{m}` with the project's package manager (pip install / npm install) and add it to the dependencies"),
                format!("用项目的包管理器安装 `{m}`（pip install / npm install），并加入依赖清单"),
            ),
            l.t(
                "Re-run after installing the dependencies".into(),
                "安装依赖后重跑".into(),
            ),
        ),
    };
    Some(Finding {
        insight: l.t(
            format!("Missing module: {listed}"),
            format!("缺少模块：{listed}"),
        ),
        risk: if m.starts_with('.') {
            l.t(
                format!("Everything that imports `{m}` fails until the path resolves"),
                format!("路径 `{m}` 解析成功之前，所有依赖它的代码都会失败"),
            )
        } else {
            l.t(
                format!("Everything that imports `{m}` fails until it is installed"),
                format!("安装 `{m}` 之前，所有依赖它的代码都会失败"),
            )
        },
        actions: vec![action],
        next,
    })
}

/// Build errors that only restate a missing import.
fn is_import_echo(entry: &str) -> bool {
    ["E0432", "E0433", "TS2307"]
        .iter()
        .any(|c| entry.starts_with(c))
        || matches!(
            entry.rsplit('.').next().unwrap_or(entry),
            "ModuleNotFoundError" | "ImportError"
        )
        || entry == "MODULE_NOT_FOUND"
        || entry.contains("does not exist (")
        || entry.contains("no required module provides package")
        || entry.contains("cannot find package")
}

fn is_exception_kind(entry: &str) -> bool {
    !entry.contains(' ')
        && (entry.ends_with("Error") || entry.ends_with("Exception"))
        && entry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '$')
}

fn build(s: &Signals, l: Lang) -> Option<Finding> {
    let errors: Vec<&String> = s
        .build_errors
        .iter()
        .filter(|e| s.import_errors.is_empty() || !is_import_echo(e))
        // A compile killed for memory is the OOM finding, not a code error.
        .filter(|e| s.oom.is_empty() || !e.starts_with("could not compile"))
        .collect();
    let first = errors.first()?.as_str();
    let more = errors.len() - 1;
    if is_exception_kind(first) {
        let kind = first;
        return Some(Finding {
            insight: l.t(
                format!("Uncaught {kind}"),
                format!("未捕获的异常：{kind}"),
            ),
            risk: l.t(
                format!("{kind} will recur on the same input until the code handles it"),
                format!("在代码处理之前，相同输入会再次触发 {kind}"),
            ),
            actions: vec![l.t(
                format!("Find where {kind} is raised (the traceback's last frame in your code) and fix its input or handle it"),
                format!("找到抛出 {kind} 的位置（调用栈中属于你代码的最后一帧），修正输入或加以处理"),
            )],
            next: l.t(
                "Reproduce it with the same input and confirm the fix".into(),
                "用相同输入复现并确认修复".into(),
            ),
        });
    }
    let insight = if more > 0 {
        l.t(
            format!("Build error: {first} (+{more} more)"),
            format!("编译错误：{first}（另有 {more} 个）"),
        )
    } else {
        l.t(
            format!("Build error: {first}"),
            format!("编译错误：{first}"),
        )
    };
    let code = first.split(' ').next().unwrap_or("");
    let rust_code =
        code.len() == 5 && code.starts_with('E') && code[1..].chars().all(|c| c.is_ascii_digit());
    let next = if rust_code || first.starts_with("could not compile") || first.contains(".rs:") {
        l.t(
            "Run `cargo check` after the fix".into(),
            "修复后运行 `cargo check`".into(),
        )
    } else if code.starts_with("TS") && code[2..].chars().all(|c| c.is_ascii_digit()) {
        l.t(
            "Run `npx tsc --noEmit` after the fix".into(),
            "修复后运行 `npx tsc --noEmit`".into(),
        )
    } else if first.contains(".java:") {
        l.t(
            "Run `mvn -q compile` after the fix".into(),
            "修复后运行 `mvn -q compile`".into(),
        )
    } else if first.contains(".go:") {
        l.t(
            "Run `go build ./...` and `go vet ./...` after the fix".into(),
            "修复后运行 `go build ./...` 和 `go vet ./...`".into(),
        )
    } else if let Some(npm) = first.strip_prefix("npm ") {
        l.t(
            format!("Look up npm error {npm} and re-run `npm install`"),
            format!("查明 npm 错误 {npm} 的原因后重跑 `npm install`"),
        )
    } else {
        l.t(
            "Re-run the build after the fix".into(),
            "修复后重新构建".into(),
        )
    };
    let action = if first.starts_with("could not compile") {
        l.t(
            "Scroll up to the first `error` line above this one and fix it".into(),
            "往上找到第一条 `error` 并先修复它".into(),
        )
    } else {
        l.t(
            format!("Fix {first} first; later errors often cascade from it"),
            format!("先修复 {first}，后面的错误常由它引起"),
        )
    };
    Some(Finding {
        insight,
        risk: l.t(
            "Nothing downstream (tests, packaging) runs until this compiles".into(),
            "编译通过之前，测试和打包都无法进行".into(),
        ),
        actions: vec![action],
        next,
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Runner {
    Cargo,
    Pytest,
    Go,
    Jest,
    Maven,
    Unknown,
}

fn runner(name: &str) -> Runner {
    if name.contains(".py") {
        Runner::Pytest
    } else if name.contains(" › ") || name.contains(" > ") || name.contains(' ') {
        Runner::Jest
    } else if name.contains("::") {
        Runner::Cargo
    } else if is_go_test(name) {
        Runner::Go
    } else if let Some((class, method)) = name.split_once('.')
        && class.starts_with(|c: char| c.is_ascii_uppercase())
        && !method.contains('.')
    {
        Runner::Maven
    } else if name.contains('_') && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        Runner::Cargo
    } else {
        Runner::Unknown
    }
}

fn tests(s: &Signals, st: &Stats, l: Lang) -> Option<Finding> {
    // Named go subtests are not counted twice with their parent.
    let count = match s.failed_test_count.max(st.tests_failed) {
        0 => s.failed_tests.len() as u32,
        n => n,
    };
    if count == 0 {
        return None;
    }
    let Some(first) = s.failed_tests.first() else {
        return Some(Finding {
            insight: l.t(
                format!("{count} failing test(s)"),
                format!("{count} 个测试失败"),
            ),
            risk: l.t(
                "Failing tests block CI and can hide other regressions".into(),
                "失败的测试会阻塞 CI，也可能掩盖其它回归".into(),
            ),
            actions: vec![l.t(
                "Find the first failing test in the runner's output and read its assertion".into(),
                "在测试输出中找到第一个失败的测试，阅读它的断言".into(),
            )],
            next: l.t(
                "Re-run the suite with verbose output to get the failing names".into(),
                "用详细输出重跑测试，拿到失败用例名".into(),
            ),
        });
    };
    let names = s
        .failed_tests
        .iter()
        .take(2)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let kind = runner(first);
    let (alone, suite) = match kind {
        Runner::Cargo => (format!("cargo test {first}"), "cargo test".to_string()),
        Runner::Pytest => (format!("pytest {first} -x"), "pytest".to_string()),
        Runner::Go => {
            let mut parts = first.split('/');
            let top = parts.next().unwrap_or(first);
            let pattern = match parts.next() {
                Some(sub) => format!("^{top}$/^{sub}$"),
                None => format!("^{top}$"),
            };
            (
                format!("go test -run '{pattern}' ./..."),
                "go test ./...".to_string(),
            )
        }
        Runner::Jest => {
            let leaf = first
                .rsplit(" › ")
                .next()
                .and_then(|x| x.rsplit(" > ").next())
                .unwrap_or(first);
            (format!("npx jest -t '{leaf}'"), "npx jest".to_string())
        }
        Runner::Maven => {
            let (class, method) = first.split_once('.').unwrap_or((first, ""));
            (
                format!("mvn -Dtest={class}#{method} test"),
                "mvn test".to_string(),
            )
        }
        Runner::Unknown => (first.clone(), String::new()),
    };
    let run_alone = if kind == Runner::Unknown {
        l.t(
            format!("Re-run only `{first}` and read its assertion"),
            format!("单独重跑 `{first}`，阅读它的断言"),
        )
    } else {
        l.t(
            format!("Run `{alone}` alone and read its assertion"),
            format!("单独运行 `{alone}`，阅读它的断言"),
        )
    };
    let next = if suite.is_empty() {
        l.t(
            "After the fix, re-run the whole suite to confirm nothing else broke".into(),
            "修复后重跑全部测试，确认没有别的回归".into(),
        )
    } else {
        l.t(
            format!("After the fix, re-run `{suite}` to confirm nothing else broke"),
            format!("修复后重跑 `{suite}`，确认没有别的回归"),
        )
    };
    let insight = l.t(
        format!("{count} failing test(s): {names}"),
        format!("{count} 个测试失败：{names}"),
    );
    Some(Finding {
        insight,
        risk: l.t(
            format!("The code under `{first}` may have regressed; merging now could ship the bug"),
            format!("`{first}` 覆盖的代码可能已回归，现在合并可能把问题带上线"),
        ),
        actions: vec![
            run_alone,
            l.t(
                "Compare expected vs actual and check recent changes to that code".into(),
                "对比期望值与实际值，检查这段代码最近的改动".into(),
            ),
        ],
        next,
    })
}

fn network(s: &Signals, l: Lang) -> Vec<Finding> {
    s.network_errors
        .iter()
        .take(2)
        .map(|entry| network_finding(entry, l))
        .collect()
}

fn network_finding(entry: &str, l: Lang) -> Finding {
    let (what, host) = match entry.split_once(": ") {
        Some((w, h)) => (w, Some(h)),
        None => (entry, None),
    };
    let target = host.unwrap_or("the remote host");
    let target_zh = host.unwrap_or("远端主机");
    match what {
        "DNS lookup failed" => {
            let (en, zh) = match host {
                Some(h) => (format!(" for {h}"), format!("：{h}")),
                None => (String::new(), String::new()),
            };
            Finding {
                insight: l.t(
                    format!("DNS lookup failed{en}"),
                    format!("DNS 解析失败{zh}"),
                ),
                risk: l.t(
                    "Downloads and remote calls fail, so the build cannot finish".into(),
                    "依赖下载和远程调用会失败，构建无法完成".into(),
                ),
                actions: vec![l.t(
                    format!(
                        "Check DNS for {target} (`nslookup {target}`), the proxy and VPN settings"
                    ),
                    format!("检查 {target_zh} 的 DNS（`nslookup {target_zh}`）以及代理和 VPN 设置"),
                )],
                next: l.t(
                    format!("Retry once {target} resolves, or use a reachable mirror"),
                    format!("等 {target_zh} 能解析后重试，或换用可访问的镜像"),
                ),
            }
        }
        "connection refused" => Finding {
            insight: l.t(
                format!("Connection refused by {target}"),
                format!("{target_zh} 拒绝连接"),
            ),
            risk: l.t(
                format!("Everything that needs {target} fails until it is up"),
                format!("{target_zh} 启动之前，依赖它的部分都会失败"),
            ),
            actions: vec![l.t(
                format!("Start the service at {target} or fix the configured host and port"),
                format!("启动 {target_zh} 上的服务，或修正配置的主机和端口"),
            )],
            next: l.t(
                "Check that it listens (`nc -z <host> <port>`, `docker ps`) and re-run".into(),
                "确认服务在监听（`nc -z <host> <port>`、`docker ps`）后重跑".into(),
            ),
        },
        "connection reset" => Finding {
            insight: l.t(
                format!("Connection reset by {target}"),
                format!("与 {target_zh} 的连接被重置"),
            ),
            risk: l.t(
                "A flaky network makes runs fail at random".into(),
                "网络不稳定会让构建随机失败".into(),
            ),
            actions: vec![l.t(
                "Retry; if it repeats, check the proxy, VPN or firewall".into(),
                "先重试；反复出现时检查代理、VPN 或防火墙".into(),
            )],
            next: l.t(
                "Re-run the step and add retries to downloads".into(),
                "重跑这一步，并给下载加上重试".into(),
            ),
        },
        "TLS certificate error" => Finding {
            insight: l.t(
                format!("TLS certificate check failed for {target}"),
                format!("{target_zh} 的 TLS 证书校验失败"),
            ),
            risk: l.t(
                "Turning verification off would hide a real man-in-the-middle risk".into(),
                "关闭证书校验会掩盖真实的中间人风险".into(),
            ),
            actions: vec![
                l.t(
                    "Install the right CA bundle or proxy certificate; don't disable verification"
                        .into(),
                    "安装正确的 CA 证书或代理证书，不要关闭校验".into(),
                ),
            ],
            next: l.t(
                "Re-run after updating certificates (e.g. `update-ca-certificates`)".into(),
                "更新证书（如 `update-ca-certificates`）后重跑".into(),
            ),
        },
        _ => Finding {
            insight: l.t(
                format!("Network problem ({what}) reaching {target}"),
                format!("访问 {target_zh} 时网络出错（{what}）"),
            ),
            risk: l.t(
                format!("Steps that need {target} fail until it is reachable"),
                format!("{target_zh} 可达之前，依赖它的步骤都会失败"),
            ),
            actions: vec![l.t(
                format!("Check connectivity to {target}: proxy, VPN, firewall"),
                format!("检查到 {target_zh} 的连通性：代理、VPN、防火墙"),
            )],
            next: l.t("Retry once it is reachable".into(), "网络恢复后重试".into()),
        },
    }
}

fn timeouts(s: &Signals, l: Lang) -> Option<Finding> {
    let first = s.timeouts.first()?;
    Some(Finding {
        insight: l.t(format!("Timeout: {first}"), format!("超时：{first}")),
        risk: l.t(
            "A hang or slow dependency can stall CI and hide a deadlock".into(),
            "卡住或过慢的依赖会拖住 CI，也可能掩盖死锁".into(),
        ),
        actions: vec![
            l.t(
                "Find what it was waiting on (network, lock, slow test) before raising the timeout"
                    .into(),
                "先查清它在等什么（网络、锁、慢测试），再考虑调大超时".into(),
            ),
        ],
        next: l.t(
            "Re-run the slow step alone with more logging".into(),
            "单独重跑这一步，并打开更详细的日志".into(),
        ),
    })
}

fn lint(s: &Signals, l: Lang) -> Option<Finding> {
    let first = s.lint_warnings.first()?;
    let n = s.lint_warnings.len();
    let code = first.split(' ').next().unwrap_or("");
    let pylint = code.len() >= 4
        && code.starts_with(|c: char| "CRWEFB".contains(c))
        && code[1..].chars().all(|c| c.is_ascii_digit());
    let next = if first.contains(".rs:") || first.contains('`') {
        l.t(
            "Run `cargo clippy` once they are fixed".into(),
            "修完后运行 `cargo clippy`".into(),
        )
    } else if pylint {
        l.t(
            "Re-run `pylint` / `flake8` once they are fixed".into(),
            "修完后重跑 `pylint` / `flake8`".into(),
        )
    } else if code.ends_with(':') && code.contains('-') {
        l.t(
            "Run `npx eslint . --fix`, then fix what remains".into(),
            "运行 `npx eslint . --fix`，再手动修剩下的".into(),
        )
    } else {
        l.t(
            "Re-run the linter once they are fixed".into(),
            "修完后重跑 lint".into(),
        )
    };
    Some(Finding {
        insight: l.t(
            format!("{n} warning(s), e.g. {first}"),
            format!("{n} 条警告，例如 {first}"),
        ),
        risk: l.t(
            "Warnings pile up and hide real problems".into(),
            "警告越积越多，会掩盖真正的问题".into(),
        ),
        actions: vec![l.t(
            format!("Fix {first}, or allow it explicitly if it is intended"),
            format!("修复 {first}；若是有意为之，显式允许它"),
        )],
        next,
    })
}

/// No recognized signal: the counts and build state decide.
fn general(st: &Stats, l: Lang) -> Finding {
    if st.build_success == Some(false) || st.error_count > 0 {
        let insight = if st.build_success == Some(false) {
            l.t(
                format!(
                    "The last build or test run failed ({} error lines)",
                    st.error_count
                ),
                format!("最近一次构建或测试失败（{} 条错误）", st.error_count),
            )
        } else {
            l.t(
                format!("{} error lines in the log", st.error_count),
                format!("日志中有 {} 条错误", st.error_count),
            )
        };
        return Finding {
            insight,
            risk: l.t(
                "The cause did not match a known pattern; it may be earlier in the log".into(),
                "原因不在已知模式里，可能在日志更前面".into(),
            ),
            actions: vec![l.t(
                "Read the first error in the log, not the last".into(),
                "先看日志里的第一条错误，而不是最后一条".into(),
            )],
            next: l.t(
                "Re-run the failing command with verbose output".into(),
                "用详细输出重跑失败的命令".into(),
            ),
        };
    }
    if st.build_running {
        return Finding {
            insight: l.t("The build is still running".into(), "构建仍在进行".into()),
            risk: l.t(
                "No result yet; failures may still come".into(),
                "还没有结果，仍可能失败".into(),
            ),
            actions: vec![l.t(
                "Let it finish before changing anything".into(),
                "等它跑完再改动".into(),
            )],
            next: l.t(
                "Check the result when it finishes".into(),
                "结束后查看结果".into(),
            ),
        };
    }
    if st.build_success == Some(true) {
        let insight = if st.warn_count > 0 {
            l.t(
                format!("The build succeeded with {} warning(s)", st.warn_count),
                format!("构建成功，有 {} 条警告", st.warn_count),
            )
        } else {
            l.t(
                "The build succeeded with no errors".into(),
                "构建成功，没有错误".into(),
            )
        };
        return Finding {
            insight,
            risk: l.t(
                "Nothing is failing now, but untested paths can still hide regressions".into(),
                "目前没有失败，但未覆盖的路径仍可能有回归".into(),
            ),
            actions: vec![l.t(
                "Commit while the build is green".into(),
                "趁构建通过先提交".into(),
            )],
            next: l.t(
                "Run the full test suite before merging".into(),
                "合并前跑一遍完整测试".into(),
            ),
        };
    }
    Finding {
        insight: l.t(
            "No errors in the log so far".into(),
            "目前日志中没有错误".into(),
        ),
        risk: l.t(
            "Nothing to judge yet: no build or test result has been seen".into(),
            "还看不到构建或测试结果，暂无法判断".into(),
        ),
        actions: vec![l.t(
            "Run the build or the tests to get a result".into(),
            "运行构建或测试以得到结果".into(),
        )],
        next: l.t(
            "Send the build or test output as it runs".into(),
            "运行时把构建或测试输出发过来".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(i: &Insight) -> String {
        [&i.insights, &i.risks, &i.actions, &i.next_steps]
            .iter()
            .flat_map(|l| l.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn complete(i: &Insight) {
        assert!(!i.insights.is_empty(), "{i:?}");
        assert!(!i.risks.is_empty(), "{i:?}");
        assert!(!i.actions.is_empty(), "{i:?}");
        assert!(!i.next_steps.is_empty(), "{i:?}");
        assert!(i.insights.len() <= MAX_INSIGHTS);
        assert!(i.risks.len() <= MAX_RISKS);
        assert!(i.actions.len() <= MAX_ACTIONS);
        assert!(i.next_steps.len() <= MAX_NEXT_STEPS);
    }

    #[test]
    fn names_the_failing_cargo_test() {
        let s = Signals {
            failed_tests: vec!["auth::tests::token_expiry".into()],
            failed_test_count: 2,
            ..Default::default()
        };
        let i = heuristic(&s, &Stats::default());
        complete(&i);
        assert!(
            i.actions.contains(
                &"Run `cargo test auth::tests::token_expiry` alone and read its assertion".into()
            ),
            "{i:?}"
        );
        assert!(i.insights[0].starts_with("2 failing test(s)"));
    }

    #[test]
    fn runner_commands() {
        for (name, cmd) in [
            (
                "tests/test_api.py::test_login",
                "pytest tests/test_api.py::test_login -x",
            ),
            (
                "TestLogin/expired",
                "go test -run '^TestLogin$/^expired$' ./...",
            ),
            (
                "AuthService › rejects an expired token",
                "npx jest -t 'rejects an expired token'",
            ),
            ("AuthTest.testLogin", "mvn -Dtest=AuthTest#testLogin test"),
        ] {
            let s = Signals {
                failed_tests: vec![name.into()],
                ..Default::default()
            };
            let i = heuristic(&s, &Stats::default());
            assert!(all(&i).contains(cmd), "{name}: {i:?}");
        }
    }

    #[test]
    fn imports_and_build() {
        let s = Signals {
            import_errors: vec!["yaml".into()],
            build_errors: vec!["ModuleNotFoundError".into()],
            ..Default::default()
        };
        let i = heuristic(&s, &Stats::default());
        assert!(
            i.actions
                .contains(&"pip install pyyaml / add it to requirements".into())
        );
        // The import kind is not repeated as a build error.
        assert_eq!(i.insights.len(), 1, "{i:?}");

        let s = Signals {
            import_errors: vec!["express".into()],
            build_errors: vec!["MODULE_NOT_FOUND".into()],
            ..Default::default()
        };
        assert!(all(&heuristic(&s, &Stats::default())).contains("npm install express"));

        let s = Signals {
            build_errors: vec!["E0308 mismatched types (src/auth.rs:42)".into()],
            ..Default::default()
        };
        let i = heuristic(&s, &Stats::default());
        complete(&i);
        assert!(i.insights[0].contains("E0308 mismatched types"));
        assert!(all(&i).contains("cargo check"));
    }

    #[test]
    fn oom_network_timeouts() {
        let s = Signals {
            oom: vec!["exit code 137 (SIGKILL)".into()],
            network_errors: vec![
                "DNS lookup failed: registry.npmjs.org".into(),
                "connection refused".into(),
            ],
            timeouts: vec!["context deadline exceeded".into()],
            ..Default::default()
        };
        let i = heuristic(&s, &Stats::default());
        complete(&i);
        let text = all(&i);
        assert!(text.contains("Raise the memory limit or reduce parallel jobs (-j)"));
        assert!(text.contains("Check DNS for registry.npmjs.org"));
        assert!(text.contains("Connection refused by the remote host"));
        assert!(text.contains("context deadline exceeded"));
    }

    #[test]
    fn general_cases_are_never_empty() {
        for st in [
            Stats::default(),
            Stats {
                build_success: Some(true),
                ..Default::default()
            },
            Stats {
                build_running: true,
                ..Default::default()
            },
            Stats {
                build_success: Some(false),
                error_count: 3,
                ..Default::default()
            },
            Stats {
                tests_failed: 2,
                ..Default::default()
            },
        ] {
            for zh in [false, true] {
                complete(&heuristic_lang(&Signals::default(), &st, zh));
            }
        }
        let ok = heuristic(
            &Signals::default(),
            &Stats {
                build_success: Some(true),
                ..Default::default()
            },
        );
        assert_eq!(ok.insights, ["The build succeeded with no errors"]);
    }

    #[test]
    fn chinese_detected_from_step_names() {
        let st = Stats {
            last_step: Some("运行单元测试".into()),
            build_success: Some(true),
            ..Default::default()
        };
        assert_eq!(
            heuristic(&Signals::default(), &st).insights,
            ["构建成功，没有错误"]
        );
        let st = Stats {
            last_step: Some("unit tests".into()),
            ..st
        };
        assert_eq!(
            heuristic(&Signals::default(), &st).insights,
            ["The build succeeded with no errors"]
        );
    }

    #[test]
    fn chinese_output() {
        let s = Signals {
            failed_tests: vec!["auth::tests::token_expiry".into()],
            failed_test_count: 1,
            ..Default::default()
        };
        let i = heuristic_lang(&s, &Stats::default(), true);
        complete(&i);
        assert_eq!(i.insights[0], "1 个测试失败：`auth::tests::token_expiry`");
        assert!(i.actions[0].contains("单独运行 `cargo test auth::tests::token_expiry`"));
    }

    #[test]
    fn caps_hold_with_everything_present() {
        let many = |p: &str| (0..10).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let s = Signals {
            failed_tests: many("m::t"),
            failed_test_count: 10,
            import_errors: many("mod"),
            build_errors: many("E030"),
            oom: many("oom "),
            timeouts: many("timeout "),
            network_errors: many("connection reset: h"),
            lint_warnings: many("unused `x"),
        };
        complete(&heuristic(&s, &Stats::default()));
    }

    #[test]
    fn finish_dedupes_caps_and_drops_empty() {
        let i = finish(Insight {
            insights: vec![
                "a".into(),
                " a ".into(),
                "".into(),
                "  ".into(),
                "b\n c".into(),
            ],
            risks: (0..10).map(|i| i.to_string()).collect(),
            actions: vec!["x".repeat(500)],
            next_steps: vec![],
        });
        assert_eq!(i.insights, ["a", "b c"]);
        assert_eq!(i.risks.len(), MAX_RISKS);
        assert_eq!(i.actions[0].chars().count(), MAX_ITEM_CHARS);
        assert!(i.next_steps.is_empty());
    }

    #[test]
    fn fill_weak_fills_only_empty_lists() {
        let fallback = heuristic(
            &Signals {
                failed_tests: vec!["auth::tests::token_expiry".into()],
                ..Default::default()
            },
            &Stats::default(),
        );
        let llm = Insight {
            insights: vec!["Token expiry check regressed".into()],
            risks: vec!["".into(), " ".into()],
            actions: vec![],
            next_steps: vec!["Re-run cargo test".into(), "Re-run cargo test".into()],
        };
        let out = fill_weak(llm, &fallback);
        assert_eq!(out.insights, ["Token expiry check regressed"]);
        assert_eq!(out.risks, fallback.risks);
        assert_eq!(out.actions, fallback.actions);
        assert_eq!(out.next_steps, ["Re-run cargo test"]);
        complete(&fill_weak(Insight::default(), &fallback));
    }

    #[test]
    fn insight_json_shape() {
        let i: Insight = serde_json::from_str(r#"{"insights":["a"],"nextSteps":["b"]}"#).unwrap();
        assert_eq!(i.next_steps, ["b"]);
        assert!(i.risks.is_empty());
        let v = serde_json::to_value(&i).unwrap();
        assert!(v.get("nextSteps").is_some());
    }
}
