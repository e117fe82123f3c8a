//! The deployment examples in `deploy/` stay in step with the server: `deploy/huddle.toml` loads, lists every key
//! of the effective default config and differs from the defaults only in its documented paths; its commented-out
//! settings are valid keys too; `deploy/huddle.service` keeps the directives the issue asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Top-level provider sections: their example tables may be commented out.
const PROVIDER_SECTIONS: [&str; 3] = ["asr", "llm", "tts"];

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_file(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// An empty scratch directory unique to this test process and `name`.
fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("huddle-deploy-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `huddle check-config [path]` in `cwd`, asserts exit 0 and parses the printed effective config.
fn check_config(cwd: &Path, path: Option<&Path>) -> toml::Table {
    let mut command = Command::new(env!("CARGO_BIN_EXE_huddle"));
    command.arg("check-config").current_dir(cwd);
    if let Some(path) = path {
        command.arg(path);
    }
    let output = command.output().expect("run huddle check-config");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "huddle check-config {path:?} failed ({}): {stderr}",
        output.status
    );
    let stdout = String::from_utf8(output.stdout).expect("check-config prints UTF-8");
    toml::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check-config output is not TOML: {e}\n{stdout}"))
}

/// The config used without any file (check-config in an empty directory).
fn default_config() -> toml::Table {
    let dir = scratch_dir("defaults");
    let table = check_config(&dir, None);
    let _ = std::fs::remove_dir_all(&dir);
    table
}

fn parse(text: &str, what: &str) -> toml::Table {
    toml::from_str(text).unwrap_or_else(|e| panic!("{what} is not TOML: {e}"))
}

/// Every dotted key path of `table`, tables included (`server`, `server.auth`, `server.auth.mode`, ...).
fn key_paths(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let toml::Value::Table(inner) = value {
            key_paths(inner, &path, out);
        }
        out.insert(path);
    }
}

/// Every non-table value of `table` by dotted path.
fn leaves(table: &toml::Table, prefix: &str, out: &mut BTreeMap<String, toml::Value>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => leaves(inner, &path, out),
            other => {
                out.insert(path, other.clone());
            }
        }
    }
}

fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// The example with its commented-out settings (`#key = value`, `#[table]`; explanations are `# text`) enabled.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(['[', '"']) || rest.starts_with(char::is_alphabetic) => {
                rest
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn example_config_loads_and_differs_from_the_defaults_only_in_its_paths() {
    let example_path = repo_file("deploy/huddle.toml");
    let example = parse(&read("deploy/huddle.toml"), "deploy/huddle.toml");
    let dir = scratch_dir("example");
    let effective = check_config(&dir, Some(&example_path));
    let _ = std::fs::remove_dir_all(&dir);

    // What the file sets is what runs.
    let mut set = BTreeMap::new();
    leaves(&example, "", &mut set);
    for (path, value) in &set {
        assert_eq!(
            lookup(&effective, path),
            Some(value),
            "{path}: the effective config differs from deploy/huddle.toml"
        );
    }

    // And everything else is the default: the documented path changes are the only differences.
    let mut expected = default_config();
    expected["storage"]
        .as_table_mut()
        .unwrap()
        .insert("data_dir".into(), "/var/lib/huddle".into());
    let whisper: toml::Table = toml::from_str(
        r#"
        type = "whisper"
        model = "/usr/local/share/huddle/models/ggml-tiny.en-q8_0.bin"
        language = "auto"
        threads = 1
        timeout_s = 30
        "#,
    )
    .unwrap();
    expected["asr"]
        .as_table_mut()
        .unwrap()
        .insert("whisper".into(), toml::Value::Table(whisper));
    assert_eq!(
        effective, expected,
        "deploy/huddle.toml must use the defaults except storage.data_dir and [asr.whisper] model"
    );
}

#[test]
fn example_config_lists_every_key_of_the_default_config() {
    let text = read("deploy/huddle.toml");
    let example = parse(&text, "deploy/huddle.toml");
    let mut present = BTreeSet::new();
    key_paths(&example, "", &mut present);
    let mut wanted = BTreeSet::new();
    key_paths(&default_config(), "", &mut wanted);
    assert!(wanted.len() > 80, "suspiciously few keys: {wanted:?}");

    let missing: Vec<&String> = wanted
        .iter()
        .filter(|path| !present.contains(*path))
        .filter(|path| {
            // Provider tables may be commented-out examples.
            !(PROVIDER_SECTIONS.contains(&path.as_str()) && text.contains(&format!("\n#[{path}.")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys of the effective default config missing from deploy/huddle.toml: {missing:?}"
    );
}

#[test]
fn example_config_commented_settings_are_valid_keys() {
    let text = uncommented(&read("deploy/huddle.toml"));
    let all = parse(&text, "deploy/huddle.toml with its settings uncommented");
    let dir = scratch_dir("uncommented");
    let path = dir.join("huddle.toml");
    std::fs::write(&path, &text).unwrap();
    let effective = check_config(&dir, Some(&path));
    let _ = std::fs::remove_dir_all(&dir);

    // Some optional keys and every provider type really were enabled by uncommenting.
    for path in [
        "server.http_port",
        "server.admin_secret",
        "meeting.webhook.url",
        "llm_by_mode.meeting.alias",
        "log.file",
        "vad.silero.model",
        "asr.remote.type",
        "asr.funasr.type",
        "llm.local.type",
        "tts.espeak.type",
        "tts.remote.type",
    ] {
        assert!(
            lookup(&all, path).is_some(),
            "{path} is not among the commented settings"
        );
        assert!(
            lookup(&effective, path).is_some(),
            "{path} is missing from the effective config"
        );
    }
}

#[test]
fn service_unit_keeps_its_required_directives() {
    let unit = read("deploy/huddle.service");
    let directives: Vec<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let has = |wanted: &str| directives.contains(&wanted);
    for wanted in [
        "[Unit]",
        "[Service]",
        "[Install]",
        "Type=simple",
        "ExecStart=/usr/local/bin/huddle serve --config /etc/huddle/huddle.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/huddle",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "WantedBy=multi-user.target",
    ] {
        assert!(has(wanted), "deploy/huddle.service lacks `{wanted}`");
    }
    for prefix in ["TimeoutStopSec=", "RestartSec=", "LimitNOFILE="] {
        assert!(
            directives.iter().any(|l| l.starts_with(prefix)),
            "deploy/huddle.service lacks {prefix}"
        );
    }

    // The writable path is the example config's data dir.
    let example = parse(&read("deploy/huddle.toml"), "deploy/huddle.toml");
    assert_eq!(
        lookup(&example, "storage.data_dir").and_then(|v| v.as_str()),
        Some("/var/lib/huddle")
    );
}
