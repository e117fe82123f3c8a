//! Device authentication during the upgrade (PROTOCOL.md §1.4). Only the
//! `static` mode exists in this release; the config loader refuses the others.

use crate::config::Config;
use crate::http::request::RequestHead;

/// Why a device was refused; the text goes into the 401 envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRefused(pub String);

/// Accepts when auth is off, when the device is allow-listed, or when the
/// token is one of the configured static tokens.
pub fn authorize(config: &Config, head: &RequestHead, device_id: &str) -> Result<(), AuthRefused> {
    let auth = &config.server.auth;
    if !auth.enabled {
        return Ok(());
    }
    if auth
        .allowed_devices
        .iter()
        .any(|d| crate::net::identity::normalize_id(d) == device_id)
    {
        return Ok(());
    }
    let Some(token) = bearer_token(head.header("authorization")) else {
        return Err(AuthRefused("missing Authorization token".to_string()));
    };
    if auth
        .tokens
        .iter()
        .any(|t| constant_time_eq(t.token.as_bytes(), token.as_bytes()))
    {
        Ok(())
    } else {
        Err(AuthRefused("invalid token".to_string()))
    }
}

/// `Bearer <t>` (scheme matched case-insensitively) or a bare token.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    if value.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    };
    (!token.is_empty()).then_some(token)
}

/// Compares without an early exit, so timing does not reveal a token's prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("abc")), Some("abc"));
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
