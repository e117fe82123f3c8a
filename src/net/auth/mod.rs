//! Device authentication during the upgrade (PROTOCOL.md §1.4): auth off, an allow-listed device id, or a
//! token checked by `server.auth.mode`.
//!
//! - `static`: one of `[[server.auth.tokens]]`, compared in constant time (here).
//! - [`jwt`]: a signed JWT for this device.
//! - [`introspection`]: `oauth2`, an RFC 7662 introspection endpoint that says the token is active.
//! - `mixed`: static, then JWT, then OAuth2, each when it is configured; the first that accepts wins.
//!
//! Runs on the connecting device's own thread before it registers; a refusal is a 401 with the reason.

pub mod introspection;
pub mod jwt;

use crate::config::{AuthConfig, AuthMode, Config};
use crate::http::request::RequestHead;

/// Why a device was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRefused {
    /// Goes into the 401 envelope: about the token, never about the server's setup.
    pub reason: String,
    /// Goes to the log: may name endpoints, errors and config fields.
    pub detail: String,
}

impl AuthRefused {
    /// A refusal the device may read in full.
    pub fn plain(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        AuthRefused {
            detail: reason.clone(),
            reason,
        }
    }

    /// A refusal whose detail stays in the log.
    pub fn hidden(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        AuthRefused {
            reason: reason.into(),
            detail: detail.into(),
        }
    }
}

/// Accepts when auth is off, when the device is allow-listed, or when the
/// token passes the configured mode.
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
        return Err(AuthRefused::plain("missing Authorization token"));
    };
    check_token(auth, token, device_id)
}

fn check_token(auth: &AuthConfig, token: &str, device_id: &str) -> Result<(), AuthRefused> {
    let by_static = || {
        auth.tokens
            .iter()
            .any(|t| constant_time_eq(t.token.as_bytes(), token.as_bytes()))
            .then_some(())
            .ok_or_else(|| AuthRefused::plain("invalid token"))
    };
    let by_jwt = || {
        let verifier = jwt::verifier(&auth.jwt).map_err(|e| {
            AuthRefused::hidden(
                "JWT verification is misconfigured",
                format!("{}: {}", e.field, e.reason),
            )
        })?;
        verifier
            .verify(token, device_id)
            .map_err(AuthRefused::plain)
    };
    let by_introspection = || introspection::verify(&auth.oauth2, token);
    match auth.mode {
        AuthMode::Static => by_static(),
        AuthMode::Jwt => by_jwt(),
        AuthMode::Oauth2 => by_introspection(),
        AuthMode::Mixed => {
            let mut reasons = Vec::new();
            if !auth.tokens.is_empty() {
                match by_static() {
                    Ok(()) => return Ok(()),
                    Err(e) => reasons.push(e),
                }
            }
            if mixed_uses_jwt(auth) {
                match by_jwt() {
                    Ok(()) => return Ok(()),
                    Err(e) => reasons.push(e),
                }
            }
            if auth.oauth2.introspection_url.is_some() {
                match by_introspection() {
                    Ok(()) => return Ok(()),
                    Err(e) => reasons.push(e),
                }
            }
            Err(AuthRefused {
                reason: reasons
                    .iter()
                    .map(|r| r.reason.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
                detail: reasons
                    .iter()
                    .map(|r| r.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            })
        }
    }
}

/// In `mixed` mode JWT is tried when a key for it is configured.
pub fn mixed_uses_jwt(auth: &AuthConfig) -> bool {
    auth.jwt.secret.is_some() || auth.jwt.public_key.is_some()
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
