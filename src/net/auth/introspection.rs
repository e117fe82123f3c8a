//! `server.auth.mode = "oauth2"` (PROTOCOL.md §1.4): RFC 7662 token introspection. The token is POSTed as a form
//! to `introspection_url` with HTTP Basic `client_id`:`client_secret`; it is accepted when the answer is
//! `"active": true`.
//!
//! The call runs on the connecting device's own thread during its upgrade (no other connection waits), bounded by
//! [`CALL_TIMEOUT`]. Badges reconnect often, so an active answer is remembered for [`CACHE_TTL`] (or until the
//! token's `exp`, if sooner) under a SHA-256 of the token; refusals and failures are not remembered, so a token
//! activated a moment later works at once.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::OAuth2Config;

/// Longest wait for the introspection endpoint.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an active answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// Cached answers kept at most; the oldest go first when full.
const CACHE_CAPACITY: usize = 4096;

/// Largest introspection answer read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// The parts of an RFC 7662 answer that matter here.
#[derive(Deserialize)]
struct Introspection {
    #[serde(default)]
    active: bool,
    /// Seconds since the epoch when the token expires.
    exp: Option<u64>,
}

/// Active tokens by SHA-256, with when the answer stops being trusted.
struct Cache {
    entries: HashMap<[u8; 32], Instant>,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| {
    Mutex::new(Cache {
        entries: HashMap::new(),
    })
});

static AGENT: LazyLock<ureq::Agent> = LazyLock::new(|| {
    ureq::Agent::config_builder()
        .timeout_global(Some(CALL_TIMEOUT))
        // Any status is an answer to judge, reported with its code.
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
});

/// Accepts `token` when the introspection endpoint says it is active, or says why not.
pub fn verify(config: &OAuth2Config, token: &str) -> Result<(), String> {
    let url = config
        .introspection_url
        .as_deref()
        .ok_or("no server.auth.oauth2.introspection_url")?;
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let now = Instant::now();
    if CACHE
        .lock()
        .entries
        .get(&key)
        .is_some_and(|until| *until > now)
    {
        return Ok(());
    }
    let answer = introspect(config, url, token)?;
    if !answer.active {
        return Err("token is not active (introspection)".into());
    }
    let mut trust_for = CACHE_TTL;
    if let Some(exp) = answer.exp {
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        trust_for = trust_for.min(Duration::from_secs(exp.saturating_sub(now_s)));
    }
    let mut cache = CACHE.lock();
    if cache.entries.len() >= CACHE_CAPACITY {
        cache.entries.retain(|_, until| *until > now);
        if cache.entries.len() >= CACHE_CAPACITY {
            cache.entries.clear();
        }
    }
    cache.entries.insert(key, now + trust_for);
    Ok(())
}

fn introspect(config: &OAuth2Config, url: &str, token: &str) -> Result<Introspection, String> {
    let credentials = format!(
        "{}:{}",
        config.client_id.as_deref().unwrap_or_default(),
        config.client_secret.as_deref().unwrap_or_default()
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut response = AGENT
        .post(url)
        .header("Authorization", format!("Basic {basic}"))
        .header("Accept", "application/json")
        .send_form([("token", token), ("token_type_hint", "access_token")])
        .map_err(|e| format!("token introspection at {url} failed ({e})"))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("token introspection at {url} answered {status}"));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| format!("token introspection at {url}: reading the answer failed ({e})"))?;
    serde_json::from_str(&body)
        .map_err(|e| format!("token introspection at {url} sent no JSON answer ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_url_is_refused_without_a_call() {
        let error = verify(&OAuth2Config::default(), "t").unwrap_err();
        assert!(error.contains("introspection_url"), "{error}");
    }

    #[test]
    fn an_unreachable_endpoint_refuses_naming_it() {
        // A port nothing listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let config = OAuth2Config {
            introspection_url: Some(format!("http://127.0.0.1:{port}/introspect")),
            ..OAuth2Config::default()
        };
        let error = verify(&config, "unreachable-token").unwrap_err();
        assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    }
}
