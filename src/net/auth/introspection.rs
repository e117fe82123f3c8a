//! `server.auth.mode = "oauth2"` (PROTOCOL.md §1.4): RFC 7662 token introspection. The token is POSTed as a form
//! to `introspection_url` with HTTP Basic `client_id`:`client_secret`; it is accepted when the answer is
//! `"active": true`.
//!
//! The call runs on the connecting device's own thread during its upgrade (no other connection waits), bounded by
//! [`CALL_TIMEOUT`], which leaves the handshake time to answer. Badges reconnect often, so an answer is remembered
//! under a SHA-256 of the endpoint and the token: an active one for [`ACTIVE_TTL`] (or until the token's `exp`, if
//! sooner), an inactive one for [`INACTIVE_TTL`]. At most [`MAX_CALLS`] calls are in flight, so a flood of junk
//! tokens cannot tie up threads or the endpoint. Failures are not remembered. What a refused device is told is
//! short; the endpoint and the error go to the log.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::AuthRefused;
use crate::config::OAuth2Config;

/// Longest wait for the introspection endpoint (the whole handshake has 5 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How long an active answer is reused.
pub const ACTIVE_TTL: Duration = Duration::from_secs(60);

/// How long an inactive answer is reused: short, so a token activated a moment later works soon.
pub const INACTIVE_TTL: Duration = Duration::from_secs(5);

/// Introspection calls in flight at once, over all devices.
pub const MAX_CALLS: usize = 16;

/// Cached answers kept at most; expired ones go first when full.
const CACHE_CAPACITY: usize = 4096;

/// Largest introspection answer read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// What the device is told when the endpoint could not answer.
const UNAVAILABLE: &str = "token introspection is unavailable";

/// The parts of an RFC 7662 answer that matter here.
#[derive(Deserialize)]
struct Introspection {
    #[serde(default)]
    active: bool,
    /// Seconds since the epoch when the token expires (some servers send a float).
    exp: Option<f64>,
}

/// A remembered answer.
#[derive(Clone, Copy)]
struct Answer {
    active: bool,
    until: Instant,
}

static CACHE: LazyLock<Mutex<HashMap<[u8; 32], Answer>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Calls in flight; see [`MAX_CALLS`].
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

static AGENT: LazyLock<ureq::Agent> = LazyLock::new(|| {
    ureq::Agent::config_builder()
        .timeout_global(Some(CALL_TIMEOUT))
        // Any status is an answer to judge, reported with its code.
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
});

/// Accepts `token` when the introspection endpoint says it is active.
pub fn verify(config: &OAuth2Config, token: &str) -> Result<(), AuthRefused> {
    let Some(url) = config.introspection_url.as_deref() else {
        return Err(AuthRefused::hidden(
            UNAVAILABLE,
            "no server.auth.oauth2.introspection_url",
        ));
    };
    // Keyed by endpoint too: after a reload to another endpoint, its own answer counts.
    let key: [u8; 32] = Sha256::new()
        .chain_update(url.as_bytes())
        .chain_update([0u8])
        .chain_update(token.as_bytes())
        .finalize()
        .into();
    let now = Instant::now();
    let remembered = CACHE.lock().get(&key).copied().filter(|a| a.until > now);
    let active = match remembered {
        Some(answer) => answer.active,
        None => {
            let answer = call_limited(config, url, token)?;
            remember(key, &answer, now);
            answer.active
        }
    };
    if active {
        Ok(())
    } else {
        Err(AuthRefused::plain("token is not active (introspection)"))
    }
}

/// One call, unless [`MAX_CALLS`] are already in flight.
fn call_limited(
    config: &OAuth2Config,
    url: &str,
    token: &str,
) -> Result<Introspection, AuthRefused> {
    if IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_CALLS {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return Err(AuthRefused::hidden(
            UNAVAILABLE,
            format!("token introspection at {url}: {MAX_CALLS} calls already in flight"),
        ));
    }
    let answer = introspect(config, url, token);
    IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    answer.map_err(|detail| AuthRefused::hidden(UNAVAILABLE, detail))
}

fn remember(key: [u8; 32], answer: &Introspection, now: Instant) {
    let mut ttl = if answer.active {
        ACTIVE_TTL
    } else {
        INACTIVE_TTL
    };
    if let Some(exp) = answer.exp.filter(|e| e.is_finite()) {
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        ttl = ttl.min(Duration::from_secs_f64((exp - now_s).clamp(0.0, 86_400.0)));
    }
    let mut cache = CACHE.lock();
    if cache.len() >= CACHE_CAPACITY {
        cache.retain(|_, a| a.until > now);
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
    }
    cache.insert(
        key,
        Answer {
            active: answer.active,
            until: now + ttl,
        },
    );
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
        assert!(error.detail.contains("introspection_url"), "{error:?}");
        assert_eq!(error.reason, UNAVAILABLE);
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
        assert!(
            error.detail.contains(&format!("127.0.0.1:{port}")),
            "{error:?}"
        );
        // The device is not told where the endpoint is.
        assert!(!error.reason.contains("127.0.0.1"), "{error:?}");
    }
}
