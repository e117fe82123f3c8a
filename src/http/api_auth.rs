//! The meeting/workflow API token (PROTOCOL.md §5.1): when
//! `server.meeting_api_token` is set, a request must present it as
//! `Authorization: Bearer <t>`, `X-API-Token: <t>` or `?token=<t>`.

use super::request::RequestHead;
use crate::net::auth::{bearer_token, constant_time_eq};

/// `Ok` when no token is configured (an empty one counts as unset) or when
/// any of the three places carries it; `Err` holds the 401 message.
pub fn check(configured: Option<&str>, head: &RequestHead) -> Result<(), &'static str> {
    let Some(expected) = configured.filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let from_query = head.query_param("token");
    let presented = [
        bearer_token(head.header("authorization")),
        head.header("x-api-token").map(str::trim),
        from_query.as_deref(),
    ];
    let mut any = false;
    let mut ok = false;
    for token in presented.into_iter().flatten().filter(|t| !t.is_empty()) {
        any = true;
        // No short-circuit: every presented value is compared.
        ok |= constant_time_eq(expected.as_bytes(), token.as_bytes());
    }
    match (ok, any) {
        (true, _) => Ok(()),
        (false, true) => Err("invalid API token"),
        (false, false) => {
            Err("API token required (Authorization: Bearer <token>, X-API-Token or ?token=)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::test_head;

    fn head(target: &str, headers: &[(&str, &str)]) -> RequestHead {
        test_head("GET", target, headers)
    }

    #[test]
    fn three_places_and_refusals() {
        let t = Some("s3cret");
        assert!(check(None, &head("/m", &[])).is_ok());
        assert!(check(Some(""), &head("/m", &[])).is_ok());
        assert!(check(t, &head("/m", &[("Authorization", "Bearer s3cret")])).is_ok());
        assert!(check(t, &head("/m", &[("X-API-Token", "s3cret")])).is_ok());
        assert!(check(t, &head("/m?token=s3cret", &[])).is_ok());
        assert!(check(t, &head("/m?token=s3cre%74", &[])).is_ok());
        assert_eq!(
            check(t, &head("/m", &[("Authorization", "Bearer nope")])),
            Err("invalid API token")
        );
        assert!(check(t, &head("/m", &[])).unwrap_err().contains("required"));
        assert!(
            check(t, &head("/m?token=", &[]))
                .unwrap_err()
                .contains("required")
        );
        // A wrong header does not hide a right query token.
        assert!(check(t, &head("/m?token=s3cret", &[("X-API-Token", "x")])).is_ok());
    }
}
