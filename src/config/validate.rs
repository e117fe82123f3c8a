//! Range and cross-key rules of PROTOCOL.md §7 that serde types cannot express. Ranges validate, they never clamp:
//! a value the operator did not mean to run with is refused rather than silently changed.

use std::fmt::Display;

use super::error::{ConfigError, ConfigErrorKind};
use super::{AsrProvider, AuthConfig, AuthMode, Config, LlmProvider, TtsProvider};

/// Headers the webhook sender sets itself (PROTOCOL.md §6); letting config override them would break signing.
const RESERVED_WEBHOOK_HEADERS: [&str; 4] = [
    "Content-Type",
    "User-Agent",
    "X-Meeting-Delivery",
    "X-Meeting-Signature",
];

fn range<T: PartialOrd + Display>(key: &str, v: T, lo: T, hi: T) -> Result<(), ConfigError> {
    // Written so that NaN is outside every range.
    if lo <= v && v <= hi {
        Ok(())
    } else {
        Err(ConfigError::new(
            ConfigErrorKind::OutOfRange,
            key,
            format!("{v} outside {lo}..={hi}"),
        ))
    }
}

fn url(key: &str, v: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let lower = v.to_ascii_lowercase();
    let ok = schemes.iter().any(|s| {
        lower
            .strip_prefix(s)
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|host| !host.is_empty())
    });
    if ok {
        Ok(())
    } else {
        let list: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        Err(ConfigError::invalid(
            key,
            format!("\"{v}\" is not a {} URL", list.join(" or ")),
        ))
    }
}

/// Checks every rule; the first violation is returned.
pub fn validate(c: &Config) -> Result<(), ConfigError> {
    server(c)?;
    idle(c)?;
    meeting(c)?;
    range(
        "workflow.snapshot_on_register_delay_ms",
        c.workflow.snapshot_on_register_delay_ms,
        0,
        10_000,
    )?;
    coding(c)?;
    range("peer.max_targets", c.peer.max_targets, 1, 50)?;
    range(
        "log.max_message_length",
        c.log.max_message_length,
        200,
        100_000,
    )?;
    vad(c)?;
    range("audio.workers", c.audio.workers, 0, 64)?;
    range("audio.ring_kib", c.audio.ring_kib, 16, 1024)?;
    providers(c)
}

fn server(c: &Config) -> Result<(), ConfigError> {
    let s = &c.server;
    range("server.port", s.port, 1, u16::MAX)?;
    if let Some(http) = s.http_port {
        range("server.http_port", http, 1, u16::MAX)?;
        if http == s.port {
            return Err(ConfigError::invalid(
                "server.http_port",
                format!("{http} must differ from server.port"),
            ));
        }
    }
    range(
        "server.timezone_offset_min",
        s.timezone_offset_min,
        -720,
        840,
    )?;
    range("server.stats_interval_s", s.stats_interval_s, 1, 60)?;
    range("server.ws_ping_interval_s", s.ws_ping_interval_s, 5, 60)?;
    range("server.ws_ping_timeout_s", s.ws_ping_timeout_s, 10, 120)?;
    for (i, t) in s.auth.tokens.iter().enumerate() {
        if t.token.is_empty() {
            return Err(ConfigError::invalid(
                format!("server.auth.tokens[{i}].token"),
                "must not be empty",
            ));
        }
    }
    auth_mode(&s.auth)
}

/// What each `server.auth.mode` needs (PROTOCOL.md §1.4, §7); only the selected mode's settings are checked.
fn auth_mode(auth: &AuthConfig) -> Result<(), ConfigError> {
    let jwt = || {
        // Also builds the shared verifier, so handshakes find the keys parsed.
        crate::net::auth::jwt::verifier(&auth.jwt)
            .map(|_| ())
            .map_err(|e| ConfigError::invalid(e.field, e.reason))
    };
    let oauth2 = || {
        let o = &auth.oauth2;
        match o.introspection_url.as_deref() {
            None => {
                return Err(ConfigError::invalid(
                    "server.auth.oauth2.introspection_url",
                    "is required by mode \"oauth2\"",
                ));
            }
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                return Err(ConfigError::invalid(
                    "server.auth.oauth2.introspection_url",
                    format!("\"{url}\" must be an http:// or https:// URL"),
                ));
            }
            Some(_) => {}
        }
        for (key, value) in [
            ("server.auth.oauth2.client_id", &o.client_id),
            ("server.auth.oauth2.client_secret", &o.client_secret),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::invalid(key, "is required by mode \"oauth2\""));
            }
        }
        Ok(())
    };
    match auth.mode {
        AuthMode::Static => Ok(()),
        AuthMode::Jwt => jwt(),
        AuthMode::Oauth2 => oauth2(),
        AuthMode::Mixed => {
            let uses_jwt = crate::net::auth::mixed_uses_jwt(auth);
            let uses_oauth2 = auth.oauth2.introspection_url.is_some();
            if auth.tokens.is_empty() && !uses_jwt && !uses_oauth2 {
                return Err(ConfigError::invalid(
                    "server.auth.mode",
                    "\"mixed\" needs tokens, a JWT secret or public_key, or an OAuth2 introspection_url",
                ));
            }
            if uses_jwt {
                jwt()?;
            }
            if uses_oauth2 {
                oauth2()?;
            }
            Ok(())
        }
    }
}

fn idle(c: &Config) -> Result<(), ConfigError> {
    let i = &c.idle;
    range("idle.idle_timeout_s", i.idle_timeout_s, 30, 86_400)?;
    range("idle.idle_buffer_s", i.idle_buffer_s, 0, 600)?;
    range("idle.warning_s", i.warning_s, 5, 30)?;
    range("idle.mode_multiplier", i.mode_multiplier, 1, 10)
}

fn meeting(c: &Config) -> Result<(), ConfigError> {
    let m = &c.meeting;
    range(
        "meeting.transcript_push_interval_ms",
        m.transcript_push_interval_ms,
        3000,
        15_000,
    )?;
    range(
        "meeting.manual_listen_fallback_ms",
        m.manual_listen_fallback_ms,
        1000,
        60_000,
    )?;
    range(
        "meeting.threadpool_max_workers",
        m.threadpool_max_workers,
        1,
        16,
    )?;
    range(
        "meeting.checkpoint_interval_min",
        m.checkpoint_interval_min,
        1,
        120,
    )?;
    range("meeting.min_duration_ms", m.min_duration_ms, 0, 600_000)?;
    range(
        "meeting.summary_transcript_max_chars",
        m.summary_transcript_max_chars,
        500,
        32_000,
    )?;
    range("meeting.llm.max_tokens", m.llm.max_tokens, 256, 4000)?;
    range(
        "meeting.llm.checkpoint_max_tokens",
        m.llm.checkpoint_max_tokens,
        128,
        4000,
    )?;
    range("meeting.api_rate_limit", m.api_rate_limit, 0, 1000)?;
    for scope in m.term_map.keys() {
        let ok = matches!(scope.as_str(), "*" | "zh" | "en")
            || scope
                .strip_prefix("industry:")
                .is_some_and(|x| !x.is_empty());
        if !ok {
            return Err(ConfigError::invalid(
                format!("meeting.term_map.{scope}"),
                "scope must be \"*\", \"zh\", \"en\" or \"industry:<name>\"",
            ));
        }
    }
    if let Some(u) = &m.webhook.url {
        url("meeting.webhook.url", u, &["http", "https"])?;
    }
    for (name, value) in &m.webhook.headers {
        let key = format!("meeting.webhook.headers.{name}");
        if let Some(r) = RESERVED_WEBHOOK_HEADERS
            .iter()
            .find(|r| r.eq_ignore_ascii_case(name))
        {
            return Err(ConfigError::invalid(
                key,
                format!("{r} is set by the webhook sender and cannot be overridden"),
            ));
        }
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(ConfigError::invalid(key, "not a valid HTTP header name"));
        }
        if value.contains(['\r', '\n']) {
            return Err(ConfigError::invalid(
                key,
                "header value may not contain CR or LF",
            ));
        }
    }
    Ok(())
}

fn coding(c: &Config) -> Result<(), ConfigError> {
    let k = &c.coding;
    range(
        "coding.insight_debounce_ms",
        k.insight_debounce_ms,
        300,
        10_000,
    )?;
    range(
        "coding.per_message_max_len",
        k.per_message_max_len,
        64,
        4096,
    )?;
    range("coding.history_max_lines", k.history_max_lines, 10, 2000)?;
    range("coding.insight_max_chars", k.insight_max_chars, 200, 8000)?;
    range("coding.insight_max_items", k.insight_max_items, 1, 10)?;
    range("coding.summary_max_items", k.summary_max_items, 1, 10)
}

fn vad_params(
    prefix: &str,
    threshold: f64,
    silence_ms: u64,
    speech_ms: u64,
) -> Result<(), ConfigError> {
    range(&format!("{prefix}.threshold"), threshold, 0.0, 1.0)?;
    range(
        &format!("{prefix}.min_silence_duration_ms"),
        silence_ms,
        50,
        5000,
    )?;
    range(&format!("{prefix}.min_speech_ms"), speech_ms, 0, 2000)
}

fn vad(c: &Config) -> Result<(), ConfigError> {
    let e = &c.vad.earshot;
    vad_params(
        "vad.earshot",
        e.threshold,
        e.min_silence_duration_ms,
        e.min_speech_ms,
    )?;
    if let Some(s) = &c.vad.silero {
        vad_params(
            "vad.silero",
            s.threshold,
            s.min_silence_duration_ms,
            s.min_speech_ms,
        )?;
    }
    Ok(())
}

/// Provider timeouts are not in the §7 table; 0 would make every request fail instantly, so they must be
/// 1..=3600 s.
fn timeout(key: &str, v: u64) -> Result<(), ConfigError> {
    range(&format!("{key}.timeout_s"), v, 1, 3600)
}

fn providers(c: &Config) -> Result<(), ConfigError> {
    const HTTP: &[&str] = &["http", "https"];
    for (name, p) in &c.asr {
        let key = format!("asr.{name}");
        match p {
            AsrProvider::Whisper(w) => {
                range(&format!("{key}.threads"), w.threads, 1, 64)?;
                timeout(&key, w.timeout_s)?;
            }
            AsrProvider::Openai(o) => {
                url(&format!("{key}.base_url"), &o.base_url, HTTP)?;
                timeout(&key, o.timeout_s)?;
            }
            AsrProvider::Funasr(f) => {
                url(&format!("{key}.url"), &f.url, &["ws", "wss"])?;
                timeout(&key, f.timeout_s)?;
            }
        }
    }
    for (name, p) in &c.llm {
        let key = format!("llm.{name}");
        match p {
            LlmProvider::Openai(o) => {
                url(&format!("{key}.base_url"), &o.base_url, HTTP)?;
                timeout(&key, o.timeout_s)?;
            }
        }
    }
    for (name, p) in &c.tts {
        if let TtsProvider::Openai(o) = p {
            url(&format!("tts.{name}.base_url"), &o.base_url, HTTP)?;
        }
    }
    Ok(())
}
