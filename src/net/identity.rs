//! Who a connecting device is (PROTOCOL.md §1.3): device-id and client-id from
//! the query string or headers, normalized so that every map, list and file
//! sees one spelling.

use crate::http::request::RequestHead;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    /// Normalized device-id: the routing key for everything about this device.
    pub device_id: String,
    pub client_id: String,
    /// True when neither the query, the headers nor a client-id named the
    /// device and an `auto-` id was made up (the session still proceeds).
    pub generated: bool,
}

/// Trims, strips one pair of surrounding quotes, lowercases.
///
/// ```
/// assert_eq!(huddle::net::identity::normalize_id(" \"94:A9:90:07:9D:88\" "), "94:a9:90:07:9d:88");
/// ```
pub fn normalize_id(raw: &str) -> String {
    let trimmed = raw.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| {
            trimmed
                .strip_prefix(*q)
                .and_then(|rest| rest.strip_suffix(*q))
        })
        .unwrap_or(trimmed);
    unquoted.trim().to_lowercase()
}

/// Resolves the identity in the contract's order: query > headers > client-id > generated.
pub fn resolve(head: &RequestHead) -> DeviceIdentity {
    let query = head.query_pairs();
    let from_query = |names: &[&str]| {
        names.iter().find_map(|name| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| normalize_id(v))
                .filter(|v| !v.is_empty())
        })
    };
    let from_headers = |names: &[&str]| {
        names.iter().find_map(|name| {
            head.header(name)
                .map(normalize_id)
                .filter(|v| !v.is_empty())
        })
    };
    let client_from_request = from_query(&["client-id", "client_id"])
        .or_else(|| from_headers(&["client-id", "client_id", "x-client-id"]));
    let named_device = from_query(&["device-id", "device_id"])
        .or_else(|| from_headers(&["device-id", "device_id", "x-device-id", "x-device_id"]))
        .or_else(|| client_from_request.clone());
    let (device_id, generated) = match named_device {
        Some(id) => (id, false),
        None => (generated_device_id(), true),
    };
    let client_id = client_from_request.unwrap_or_else(|| device_id.clone());
    DeviceIdentity {
        device_id,
        client_id,
        generated,
    }
}

/// `auto-` and 8 random lowercase hex digits.
fn generated_device_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("auto-{}", &random[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::test_head;

    fn head(target: &str, headers: &[(&str, &str)]) -> RequestHead {
        test_head("GET", target, headers)
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize_id(" \"94:A9:90:07:9D:88\" "), "94:a9:90:07:9d:88");
        assert_eq!(normalize_id("'AbC'"), "abc");
        assert_eq!(normalize_id("\"half"), "\"half");
    }

    #[test]
    fn query_beats_headers() {
        let h = head(
            "/supie/v1/?device-id=94:A9:90:07:9D:88&client-id=C1",
            &[("Device-Id", "11:22"), ("Client-Id", "c2")],
        );
        let id = resolve(&h);
        assert_eq!(id.device_id, "94:a9:90:07:9d:88");
        assert_eq!(id.client_id, "c1");
        assert!(!id.generated);
    }

    #[test]
    fn header_spellings_in_order() {
        assert_eq!(
            resolve(&head("/", &[("X-Device-Id", "AA")])).device_id,
            "aa"
        );
        assert_eq!(
            resolve(&head("/", &[("X-Device-Id", "AA"), ("Device_Id", "BB")])).device_id,
            "bb"
        );
        assert_eq!(
            resolve(&head("/?device_id=Q", &[("Device-Id", "BB")])).device_id,
            "q"
        );
    }

    #[test]
    fn client_id_stands_in_for_the_device() {
        let id = resolve(&head("/", &[("Client-Id", " UUID-1 ")]));
        assert_eq!(
            (id.device_id.as_str(), id.client_id.as_str()),
            ("uuid-1", "uuid-1")
        );
    }

    #[test]
    fn generated_when_nothing_names_the_device() {
        let id = resolve(&head("/xiaozhi/v1/", &[("Device-Id", "  ")]));
        assert!(id.generated);
        assert_eq!(id.device_id.len(), "auto-".len() + 8);
        assert!(id.device_id.starts_with("auto-"));
        assert!(
            id.device_id[5..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(id.client_id, id.device_id);
    }
}
