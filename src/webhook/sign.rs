//! `X-Meeting-Signature` (PROTOCOL.md §6): lowercase hex HMAC-SHA256, keyed
//! with the configured secret's UTF-8 bytes, over the exact body bytes, with
//! no `sha256=` prefix. Also the short body digest the delivery logs carry.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Lowercase hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length (long ones are hashed first), so this
    // cannot fail; the fallback only keeps the signature total without unwrap.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// First 8 hex digits of SHA-256(`body`): enough to match a log line to a
/// receiver's record without putting the (possibly sensitive) body in the log.
pub fn body_digest_prefix(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    hex(&digest[..4])
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_test_vector() {
        let body = br#"{"sessionId":"3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c","durationMs":5000}"#;
        assert_eq!(body.len(), 70);
        assert_eq!(
            signature("s3cr3t", body),
            "68eb00eafdbcc86c4cd3245718a5a54367e1d582fa7653f78f0d724465668c49"
        );
    }

    #[test]
    fn other_keys_and_bodies_differ() {
        let body = br#"{"durationMs":5000}"#;
        let a = signature("s3cr3t", body);
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(a, signature("s3cr3T", body));
        assert_ne!(a, signature("s3cr3t", br#"{"durationMs":5001}"#));
        // Keys longer than SHA-256's block are valid too.
        assert_eq!(signature(&"k".repeat(200), body).len(), 64);
    }

    #[test]
    fn digest_prefix_is_eight_hex_digits() {
        // SHA-256("") = e3b0c442...
        assert_eq!(body_digest_prefix(b""), "e3b0c442");
        assert_eq!(body_digest_prefix(b"abc"), "ba7816bf");
    }
}
