//! Integration tests of `huddle::config`: defaults, error messages naming keys, ranges, providers and reloads.

use std::path::PathBuf;
use std::time::Duration;

use huddle::config::{
    AsrProvider, AuthMode, BroadcastMode, Config, ConfigErrorKind, ConfigStore, LlmChoice,
    LlmProvider, LogLevel, TtsProvider, load_file, parse_toml,
};
use serde_json::json;

fn err(text: &str) -> String {
    parse_toml(text)
        .expect_err("config should be rejected")
        .to_string()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "huddle-config-test-{}-{name}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn empty_file_gives_documented_defaults() {
    let c = parse_toml("").unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.server.ip.to_string(), "0.0.0.0");
    assert_eq!(c.server.port, 8000);
    assert_eq!(c.server.http_port, None);
    assert_eq!(c.server.timezone_offset_min, 480);
    assert_eq!(
        (
            c.server.stats_interval_s,
            c.server.ws_ping_interval_s,
            c.server.ws_ping_timeout_s
        ),
        (10, 20, 50)
    );
    assert_eq!(c.server.auth.mode, AuthMode::Static);
    assert!(!c.server.auth.enabled);
    assert_eq!(c.server.auth.jwt.algorithms, vec!["HS256".to_string()]);
    assert_eq!(c.storage.data_dir, PathBuf::from("data"));
    assert_eq!(
        (
            c.idle.idle_timeout_s,
            c.idle.idle_buffer_s,
            c.idle.warning_s,
            c.idle.mode_multiplier
        ),
        (600, 60, 15, 3)
    );
    assert!(c.end_prompt.enable);
    assert_eq!(c.end_prompt.prompt, "用一两句温暖、不舍的话和用户道别。");
    assert_eq!(c.chat.wakeup_words.len(), 11);
    assert_eq!(c.chat.wakeup_words[0], "你好小智");
    assert_eq!(
        c.chat.exit_commands,
        vec!["退出".to_string(), "关闭".to_string()]
    );
    assert_eq!(c.chat.stop_tts_notify_voice, "config/assets/tts_notify.mp3");
    assert_eq!(c.meeting.transcript_push_interval_ms, 5000);
    assert_eq!(c.meeting.manual_listen_fallback_ms, 5000);
    assert!(
        c.meeting.prefer_device_vad && c.meeting.disable_tts && c.meeting.disable_chat_on_snippet
    );
    assert!(c.working.disable_tts);
    assert_eq!(
        (
            c.meeting.threadpool_max_workers,
            c.meeting.checkpoint_interval_min
        ),
        (2, 10)
    );
    assert_eq!(
        (
            c.meeting.min_duration_ms,
            c.meeting.summary_transcript_max_chars
        ),
        (5000, 4000)
    );
    assert_eq!(
        (
            c.meeting.llm.max_tokens,
            c.meeting.llm.checkpoint_max_tokens
        ),
        (800, 400)
    );
    assert_eq!(c.meeting.broadcast.mode, BroadcastMode::Off);
    assert_eq!(c.meeting.api_rate_limit, 10);
    assert_eq!(c.coding.insight_debounce_ms, 1200);
    assert_eq!(c.coding.summary_max_items, 6);
    assert_eq!(c.peer.max_targets, 10);
    assert_eq!(c.log.level, LogLevel::Info);
    assert_eq!(c.log.max_message_length, 2000);
    assert_eq!(c.log.file, None);
    assert_eq!(c.selected_module.vad, "earshot");
    assert_eq!(c.selected_module.asr, "whisper");
    assert_eq!(c.selected_module.intent, "llm");
    assert_eq!(c.vad.earshot.threshold, 0.5);
    assert_eq!(c.vad.silero, None);
    assert!(c.asr.is_empty() && c.llm.is_empty() && c.tts.is_empty());
    assert_eq!(c.idle_deadline(false), Duration::from_secs(660));
    assert_eq!(c.idle_deadline(true), Duration::from_secs(1980));
}

#[test]
fn defaults_round_trip_through_toml() {
    let c = Config::default();
    let text = c.to_toml_string();
    assert_eq!(parse_toml(&text).unwrap(), c);
}

#[test]
fn full_config_round_trips_through_toml() {
    let text = r#"
[server]
http_port = 8080
admin_secret = "s3cr3t"
[[server.auth.tokens]]
token = "abc"
name = "bench"
[meeting]
industry = "tech"
[meeting.term_map."industry:tech"]
"k8s" = "Kubernetes"
[meeting.webhook]
url = "https://example.com/hook"
headers = { Authorization = "Bearer x" }
[llm_by_mode]
chat = "local"
meeting = { alias = "local", overrides = { temperature = 0.2 } }
[vad.silero]
model = "models/silero.onnx"
[asr.whisper]
type = "whisper"
[asr.cloud]
type = "funasr"
hotwords = { "huddle" = 20 }
[llm.local]
type = "openai"
base_url = "http://127.0.0.1:8080/v1"
model = "qwen"
[tts.say]
type = "espeak"
rate = 170
"#;
    let c = parse_toml(text).unwrap();
    assert_eq!(parse_toml(&c.to_toml_string()).unwrap(), c);
    assert_eq!(c.server.auth.tokens[0].name, "bench");
    assert_eq!(c.meeting.term_map["industry:tech"]["k8s"], "Kubernetes");
    assert_eq!(c.llm_by_mode.chat, Some(LlmChoice::Alias("local".into())));
    let meeting = c.llm_by_mode.meeting.as_ref().unwrap();
    assert_eq!(meeting.alias(), "local");
    assert!(
        matches!(meeting, LlmChoice::Table { overrides, .. } if overrides["temperature"].as_float() == Some(0.2))
    );
}

#[test]
fn provider_tables_parse_with_type_defaults() {
    let c = parse_toml(
        r#"
[asr.whisper]
type = "whisper"
[asr.remote]
type = "openai"
base_url = "https://api.example.com/v1"
model = "whisper-1"
[llm.local]
type = "openai"
base_url = "http://127.0.0.1:8080/v1"
model = "qwen2.5"
[tts.cloud]
type = "openai"
base_url = "https://api.example.com/v1"
model = "tts-1"
voice = "alloy"
"#,
    )
    .unwrap();
    let AsrProvider::Whisper(w) = &c.asr["whisper"] else {
        panic!("expected whisper, got {:?}", c.asr["whisper"]);
    };
    assert_eq!(w.model, "models/ggml-tiny.en-q8_0.bin");
    assert_eq!(
        (w.language.as_str(), w.threads, w.timeout_s),
        ("auto", 1, 30)
    );
    assert!(
        matches!(&c.asr["remote"], AsrProvider::Openai(o) if o.timeout_s == 30 && o.api_key.is_none())
    );
    let LlmProvider::Openai(l) = &c.llm["local"];
    assert_eq!(
        (l.base_url.as_str(), l.model.as_str(), l.timeout_s),
        ("http://127.0.0.1:8080/v1", "qwen2.5", 60)
    );
    assert!(
        matches!(&c.tts["cloud"], TtsProvider::Openai(t) if t.voice.as_deref() == Some("alloy"))
    );
    let f = parse_toml("[asr.f]\ntype = \"funasr\"\n").unwrap();
    assert!(matches!(&f.asr["f"], AsrProvider::Funasr(x)
        if x.url == "ws://127.0.0.1:10095" && x.mode == "2pass" && x.chunk_size == [5, 10, 5] && x.itn && x.timeout_s == 10));
}

#[test]
fn provider_errors_name_the_key() {
    assert_eq!(
        err("[asr.x]\ntype = \"vosk\"\n"),
        "config: asr.x.type: unknown type \"vosk\", expected one of whisper, openai, funasr"
    );
    assert_eq!(
        err("[asr.x]\nmodel = \"m\"\n"),
        "config: asr.x.type: required key is missing (one of whisper, openai, funasr)"
    );
    assert_eq!(
        err(
            "[llm.local]\ntype = \"openai\"\nbase_url = \"http://h\"\nmodel = \"m\"\nmodle = \"x\"\n"
        ),
        "config: unknown key llm.local.modle"
    );
    assert_eq!(
        err("[llm.local]\ntype = \"openai\"\nbase_url = \"http://h\"\n"),
        "config: llm.local.model: required key is missing"
    );
    assert_eq!(
        err("[asr.w]\ntype = \"whisper\"\ntimeout_s = \"x\"\n"),
        "config: asr.w.timeout_s: invalid type: string \"x\", expected u64"
    );
    assert_eq!(
        err("[asr.w]\ntype = \"whisper\"\ntimeout_s = 0\n"),
        "config: asr.w.timeout_s = 0 outside 1..=3600"
    );
    assert_eq!(
        err("[llm.l]\ntype = \"openai\"\nbase_url = \"ftp://h\"\nmodel = \"m\"\n"),
        "config: llm.l.base_url: \"ftp://h\" is not a http:// or https:// URL"
    );
}

#[test]
fn unknown_keys_are_named() {
    assert_eq!(
        err("[meeting]\ntranscript_interval = 5000\n"),
        "config: unknown key meeting.transcript_interval"
    );
    assert_eq!(err("colour = 1\n"), "config: unknown key colour");
    assert_eq!(
        err("[server.auth.jwt]\nsecrt = \"x\"\n"),
        "config: unknown key server.auth.jwt.secrt"
    );
    assert_eq!(
        err("[meeting.prompts.templates]\nsports = \"x\"\n"),
        "config: unknown key meeting.prompts.templates.sports"
    );
    let e = parse_toml("[nope]\n").unwrap_err();
    assert_eq!(
        (e.kind, e.key.as_str()),
        (ConfigErrorKind::UnknownKey, "nope")
    );
}

#[test]
fn wrong_types_are_named() {
    assert_eq!(
        err("[server]\nport = \"x\"\n"),
        "config: server.port: invalid type: string \"x\", expected u16"
    );
    assert_eq!(
        err("[server]\nport = 70000\n"),
        "config: server.port: invalid value: integer `70000`, expected u16"
    );
    assert_eq!(
        err("[log]\nlevel = \"verbose\"\n"),
        "config: log.level: unknown variant `verbose`, expected one of `error`, `warn`, `info`, `debug`, `trace`, `off`"
    );
    assert_eq!(
        err("[meeting.broadcast]\nmode = \"all\"\n"),
        "config: meeting.broadcast.mode: unknown variant `all`, expected one of `off`, `group`, `session`"
    );
    assert_eq!(
        err("[[server.auth.tokens]]\ntoken = 5\n"),
        "config: server.auth.tokens[0].token: invalid type: integer `5`, expected a string"
    );
    assert_eq!(
        err("[server]\nip = \"localhost\"\n"),
        "config: server.ip: invalid IP address syntax"
    );
    let e = parse_toml("[server\n").unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::File);
    assert!(
        e.to_string()
            .starts_with("config: TOML parse error at line 1"),
        "{e}"
    );
}

/// `(section, key, accepted values, rejected values, range as printed)`.
type RangeCase = (
    &'static str,
    &'static str,
    &'static [i64],
    &'static [i64],
    &'static str,
);

const RANGES: &[RangeCase] = &[
    (
        "meeting",
        "transcript_push_interval_ms",
        &[3000, 15000],
        &[2999, 15001],
        "3000..=15000",
    ),
    (
        "meeting",
        "manual_listen_fallback_ms",
        &[1000, 60000],
        &[999, 60001],
        "1000..=60000",
    ),
    (
        "meeting",
        "threadpool_max_workers",
        &[1, 16],
        &[0, 17],
        "1..=16",
    ),
    (
        "meeting",
        "checkpoint_interval_min",
        &[1, 120],
        &[0, 121],
        "1..=120",
    ),
    (
        "meeting",
        "min_duration_ms",
        &[0, 600000],
        &[600001],
        "0..=600000",
    ),
    (
        "meeting",
        "summary_transcript_max_chars",
        &[500, 32000],
        &[499, 32001],
        "500..=32000",
    ),
    ("meeting", "api_rate_limit", &[0, 1000], &[1001], "0..=1000"),
    (
        "meeting.llm",
        "max_tokens",
        &[256, 4000],
        &[255, 4001],
        "256..=4000",
    ),
    (
        "meeting.llm",
        "checkpoint_max_tokens",
        &[128, 4000],
        &[127, 4001],
        "128..=4000",
    ),
    (
        "idle",
        "idle_timeout_s",
        &[30, 86400],
        &[29, 86401],
        "30..=86400",
    ),
    ("idle", "idle_buffer_s", &[0, 600], &[601], "0..=600"),
    ("idle", "warning_s", &[5, 30], &[4, 31], "5..=30"),
    ("idle", "mode_multiplier", &[1, 10], &[0, 11], "1..=10"),
    ("server", "stats_interval_s", &[1, 60], &[0, 61], "1..=60"),
    ("server", "ws_ping_interval_s", &[5, 60], &[4, 61], "5..=60"),
    (
        "server",
        "ws_ping_timeout_s",
        &[10, 120],
        &[9, 121],
        "10..=120",
    ),
    ("server", "port", &[1, 65535], &[0], "1..=65535"),
    (
        "log",
        "max_message_length",
        &[200, 100000],
        &[199, 100001],
        "200..=100000",
    ),
    (
        "coding",
        "insight_debounce_ms",
        &[300, 10000],
        &[299, 10001],
        "300..=10000",
    ),
    (
        "coding",
        "per_message_max_len",
        &[64, 4096],
        &[63, 4097],
        "64..=4096",
    ),
    (
        "coding",
        "history_max_lines",
        &[10, 2000],
        &[9, 2001],
        "10..=2000",
    ),
    (
        "coding",
        "insight_max_chars",
        &[200, 8000],
        &[199, 8001],
        "200..=8000",
    ),
    ("coding", "insight_max_items", &[1, 10], &[0, 11], "1..=10"),
    ("coding", "summary_max_items", &[1, 10], &[0, 11], "1..=10"),
    ("peer", "max_targets", &[1, 50], &[0, 51], "1..=50"),
    (
        "workflow",
        "snapshot_on_register_delay_ms",
        &[0, 10000],
        &[10001],
        "0..=10000",
    ),
    (
        "vad.earshot",
        "min_silence_duration_ms",
        &[50, 5000],
        &[49, 5001],
        "50..=5000",
    ),
    (
        "vad.earshot",
        "min_speech_ms",
        &[0, 2000],
        &[2001],
        "0..=2000",
    ),
];

#[test]
fn ranges_accept_bounds_and_reject_just_outside() {
    for (section, key, inside, outside, range) in RANGES {
        for v in *inside {
            let text = format!("[{section}]\n{key} = {v}\n");
            if let Err(e) = parse_toml(&text) {
                panic!("{section}.{key} = {v} should be accepted: {e}");
            }
        }
        for v in *outside {
            let text = format!("[{section}]\n{key} = {v}\n");
            let e = parse_toml(&text).expect_err(&text);
            assert_eq!(
                e.to_string(),
                format!("config: {section}.{key} = {v} outside {range}")
            );
            assert_eq!(e.kind, ConfigErrorKind::OutOfRange);
            assert_eq!(
                e.reply_message(),
                format!("{section}.{key}: {v} outside {range}")
            );
        }
    }
}

#[test]
fn float_and_cross_key_rules() {
    assert!(parse_toml("[vad.earshot]\nthreshold = 1\n").is_ok());
    assert!(parse_toml("[vad.earshot]\nthreshold = 0.0\n").is_ok());
    assert_eq!(
        err("[vad.earshot]\nthreshold = 1.5\n"),
        "config: vad.earshot.threshold = 1.5 outside 0..=1"
    );
    assert_eq!(
        err("[vad.silero]\nthreshold = -0.1\n"),
        "config: vad.silero.threshold = -0.1 outside 0..=1"
    );
    assert_eq!(
        err("[server]\nhttp_port = 8000\n"),
        "config: server.http_port: 8000 must differ from server.port"
    );
    assert_eq!(
        err("[server]\nhttp_port = 0\n"),
        "config: server.http_port = 0 outside 1..=65535"
    );
    assert!(parse_toml("[server]\nport = 9000\nhttp_port = 8000\n").is_ok());
    assert_eq!(
        err("[meeting.term_map.fr]\na = \"b\"\n"),
        "config: meeting.term_map.fr: scope must be \"*\", \"zh\", \"en\" or \"industry:<name>\""
    );
    assert!(
        parse_toml("[meeting.term_map.\"*\"]\na = \"b\"\n[meeting.term_map.zh]\nc = \"d\"\n")
            .is_ok()
    );
}

#[test]
fn auth_modes_name_what_they_are_missing() {
    let cases = [
        (
            "mode = \"jwt\"\n",
            "server.auth.jwt.secret: is required for the HS* algorithms",
        ),
        (
            "mode = \"jwt\"\n[server.auth.jwt]\nalgorithms = [\"RS256\"]\n",
            "server.auth.jwt.public_key: is required for the RS*, PS*, ES* and EdDSA algorithms",
        ),
        (
            "mode = \"jwt\"\n[server.auth.jwt]\nalgorithms = [\"ES256\"]\npublic_key = \"/nonexistent/key.pem\"\n",
            "server.auth.jwt.public_key: is neither PEM text nor a readable PEM file: /nonexistent/key.pem",
        ),
        (
            "mode = \"oauth2\"\n",
            "server.auth.oauth2.introspection_url: is required by mode \"oauth2\"",
        ),
        (
            "mode = \"oauth2\"\n[server.auth.oauth2]\nintrospection_url = \"ftp://x\"\n",
            "server.auth.oauth2.introspection_url: \"ftp://x\" must be an http:// or https:// URL",
        ),
        (
            "mode = \"oauth2\"\n[server.auth.oauth2]\nintrospection_url = \"http://127.0.0.1:9/i\"\nclient_id = \"huddle\"\n",
            "server.auth.oauth2.client_secret: is required by mode \"oauth2\"",
        ),
        (
            "mode = \"mixed\"\n",
            "server.auth.mode: \"mixed\" needs tokens, a JWT secret or public_key, or an OAuth2 introspection_url",
        ),
    ];
    for (auth, expected) in cases {
        let error = err(&format!("[server.auth]\n{auth}"));
        assert!(
            error.starts_with(&format!("config: {expected}")),
            "{auth:?}: {error}"
        );
    }
    for ok in [
        "mode = \"jwt\"\n[server.auth.jwt]\nsecret = \"s\"\n",
        "mode = \"mixed\"\ntokens = [{ token = \"t\" }]\n",
        "mode = \"oauth2\"\n[server.auth.oauth2]\nintrospection_url = \"https://a/i\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
    ] {
        assert!(
            parse_toml(&format!("[server.auth]\nenabled = true\n{ok}")).is_ok(),
            "{ok}"
        );
    }
    assert!(
        err("[server.auth]\nmode = \"ldap\"\n")
            .starts_with("config: server.auth.mode: unknown variant `ldap`")
    );
    assert!(parse_toml("[server.auth]\nenabled = true\nmode = \"static\"\n").is_ok());
}

#[test]
fn webhook_rules() {
    assert_eq!(
        err("[meeting.webhook]\nurl = \"ftp://x\"\n"),
        "config: meeting.webhook.url: \"ftp://x\" is not a http:// or https:// URL"
    );
    assert!(parse_toml("[meeting.webhook]\nurl = \"HTTPS://x/y\"\n").is_ok());
    assert_eq!(
        err("[meeting.webhook.headers]\n\"content-type\" = \"text/plain\"\n"),
        "config: meeting.webhook.headers.content-type: Content-Type is set by the webhook sender and cannot be overridden"
    );
    assert_eq!(
        err("[meeting.webhook.headers]\nX-MEETING-SIGNATURE = \"x\"\n"),
        "config: meeting.webhook.headers.X-MEETING-SIGNATURE: X-Meeting-Signature is set by the webhook sender and cannot be overridden"
    );
    assert_eq!(
        err("[meeting.webhook.headers]\nX-A = \"a\\r\\nX-B: b\"\n"),
        "config: meeting.webhook.headers.X-A: header value may not contain CR or LF"
    );
    assert!(parse_toml("[meeting.webhook.headers]\nAuthorization = \"Bearer t\"\n").is_ok());
}

#[test]
fn missing_file_names_the_path() {
    let path = std::env::temp_dir().join("huddle-config-test-does-not-exist.toml");
    let e = load_file(&path).unwrap_err();
    assert_eq!(e.key, path.display().to_string());
    assert!(
        e.to_string()
            .starts_with(&format!("config: {}: cannot read:", path.display())),
        "{e}"
    );
}

#[test]
fn apply_partial_merges_and_validates() {
    let store = ConfigStore::new(
        parse_toml("[meeting]\nmin_duration_ms = 1000\n").unwrap(),
        None,
    );
    let next = store
        .apply_partial(
            &json!({"meeting": {"transcript_push_interval_ms": 8000, "llm": {"max_tokens": 1000}}}),
        )
        .unwrap();
    assert_eq!(next.meeting.transcript_push_interval_ms, 8000);
    assert_eq!(next.meeting.llm.max_tokens, 1000);
    assert_eq!(next.meeting.llm.checkpoint_max_tokens, 400);
    assert_eq!(
        next.meeting.min_duration_ms, 1000,
        "untouched keys keep their current value"
    );
    assert_eq!(store.current().meeting.transcript_push_interval_ms, 8000);

    let e = store
        .apply_partial(&json!({"meeting": {"transcript_push_interval_ms": 20000}}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "config: meeting.transcript_push_interval_ms = 20000 outside 3000..=15000"
    );
    assert_eq!(
        e.reply_message(),
        "meeting.transcript_push_interval_ms: 20000 outside 3000..=15000"
    );
    assert_eq!(
        store.current().meeting.transcript_push_interval_ms,
        8000,
        "old config stays"
    );

    let e = store
        .apply_partial(&json!({"meeting": {"transcript_interval": 1}}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "config: unknown key meeting.transcript_interval"
    );
    let e = store
        .apply_partial(&json!({"meeting": {"webhook": {"url": null}}}))
        .unwrap_err();
    assert_eq!(e.key, "meeting.webhook.url");
    assert!(store.apply_partial(&json!([1])).is_err());
    assert!(store.apply_partial(&json!({})).is_ok());
}

#[test]
fn apply_partial_handles_providers_and_floats() {
    let store = ConfigStore::new(Config::default(), None);
    let next = store
        .apply_partial(&json!({
            "vad": {"earshot": {"threshold": 0.7}},
            "asr": {"r": {"type": "openai", "base_url": "http://h/v1", "model": "m", "language": "zh"}},
            "chat": {"exit_commands": ["bye"]}
        }))
        .unwrap();
    assert_eq!(next.vad.earshot.threshold, 0.7);
    assert_eq!(next.chat.exit_commands, vec!["bye".to_string()]);
    // A type change replaces the table instead of merging the old type's keys into the new one.
    let next = store
        .apply_partial(&json!({"asr": {"r": {"type": "whisper"}}}))
        .unwrap();
    assert!(matches!(&next.asr["r"], AsrProvider::Whisper(w) if w.language == "auto"));
}

#[test]
fn restart_keys_cannot_change() {
    let store = ConfigStore::new(Config::default(), None);
    for (partial, key) in [
        (json!({"server": {"port": 9000}}), "server.port"),
        (json!({"server": {"ip": "127.0.0.1"}}), "server.ip"),
        (json!({"server": {"http_port": 8080}}), "server.http_port"),
        (
            json!({"storage": {"data_dir": "elsewhere"}}),
            "storage.data_dir",
        ),
    ] {
        let e = store.apply_partial(&partial).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("config: {key} cannot change without a restart")
        );
        assert_eq!(e.kind, ConfigErrorKind::RestartRequired);
    }
    assert!(
        store
            .apply_partial(&json!({"server": {"port": 8000}}))
            .is_ok(),
        "same value is no change"
    );
    assert_eq!(*store.current(), Config::default());
}

#[test]
fn reload_file_drops_overrides_and_keeps_old_on_error() {
    let path = temp_file("reload", "[meeting]\ntranscript_push_interval_ms = 4000\n");
    let store = ConfigStore::new(load_file(&path).unwrap(), Some(path.clone()));
    store
        .apply_partial(
            &json!({"meeting": {"transcript_push_interval_ms": 9000}, "log": {"level": "debug"}}),
        )
        .unwrap();
    assert_eq!(store.current().log.level, LogLevel::Debug);

    let reloaded = store.reload_file().unwrap();
    assert_eq!(reloaded.meeting.transcript_push_interval_ms, 4000);
    assert_eq!(reloaded.log.level, LogLevel::Info);

    std::fs::write(&path, "[meeting]\ntranscript_push_interval_ms = 16000\n").unwrap();
    let e = store.reload_file().unwrap_err();
    assert_eq!(
        e.to_string(),
        "config: meeting.transcript_push_interval_ms = 16000 outside 3000..=15000"
    );
    std::fs::write(&path, "[server]\nport = 1234\n").unwrap();
    assert_eq!(
        store.reload_file().unwrap_err().to_string(),
        "config: server.port cannot change without a restart"
    );
    assert_eq!(store.current().meeting.transcript_push_interval_ms, 4000);

    std::fs::write(&path, "[server\n").unwrap();
    let e = store.reload_file().unwrap_err();
    assert_eq!(e.key, path.display().to_string());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn reload_without_file_restores_defaults() {
    let store = ConfigStore::new(Config::default(), None);
    store
        .apply_partial(&json!({"idle": {"warning_s": 20}}))
        .unwrap();
    assert_eq!(store.reload_file().unwrap().idle.warning_s, 15);
}

#[test]
fn admin_secret() {
    let store = ConfigStore::new(Config::default(), None);
    assert!(!store.admin_secret_matches(""));
    assert!(!store.admin_secret_matches("s3cr3t"));
    let store = ConfigStore::new(
        parse_toml("[server]\nadmin_secret = \"s3cr3t\"\n").unwrap(),
        None,
    );
    assert!(store.admin_secret_matches("s3cr3t"));
    assert!(!store.admin_secret_matches("s3cr3"));
    assert!(!store.admin_secret_matches("s3cr3tt"));
    assert!(!store.admin_secret_matches("S3cr3t"));
    let empty = ConfigStore::new(parse_toml("[server]\nadmin_secret = \"\"\n").unwrap(), None);
    assert!(!empty.admin_secret_matches(""));
}

/// `update_config` runs on a connection thread, so it may not make the server
/// read a key file: it takes PEM text only. A config file may name the file;
/// the loaded config then holds the key's text.
#[test]
fn a_jwt_key_file_is_read_at_load_and_update_config_takes_only_pem_text() {
    let pem_path = std::env::temp_dir().join(format!(
        "huddle-config-test-{}-ec-public.pem",
        std::process::id()
    ));
    let generated = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl ecparam -name prime256v1 -genkey -noout | openssl ec -pubout -out {} 2>/dev/null",
            pem_path.display()
        ))
        .status()
        .expect("openssl (installed by .ci/setup)");
    assert!(generated.success());
    let pem = std::fs::read_to_string(&pem_path).unwrap();
    let store = ConfigStore::new(Config::default(), None);
    let jwt = |key: &str| json!({"server": {"auth": {"mode": "jwt", "jwt": {"algorithms": ["ES256"], "public_key": key}}}});
    let refused = store
        .apply_partial(&jwt(pem_path.to_str().unwrap()))
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("server.auth.jwt.public_key: update_config takes the PEM text"),
        "{refused}"
    );
    let applied = store.apply_partial(&jwt(&pem)).expect("PEM text is taken");
    assert_eq!(
        applied.server.auth.jwt.public_key.as_deref(),
        Some(pem.as_str())
    );
    let file = temp_file(
        "jwt-by-path.toml",
        &format!(
            "[server.auth]\nmode = \"jwt\"\n[server.auth.jwt]\nalgorithms = [\"ES256\"]\npublic_key = \"{}\"\n",
            pem_path.display()
        ),
    );
    let loaded = load_file(&file).expect("loads");
    std::fs::remove_file(&pem_path).unwrap();
    assert_eq!(
        loaded.server.auth.jwt.public_key.as_deref(),
        Some(pem.as_str())
    );
    // With the file gone, updates still work: nothing reads it again.
    let store = ConfigStore::new(loaded, Some(file));
    assert!(
        store
            .apply_partial(
                &json!({"server": {"auth": {"enabled": true, "jwt": {"audience": "huddle"}}}})
            )
            .is_ok()
    );
}
