//! An HTTP request head read off a socket, parsed by httparse, owned so it can
//! outlive the read buffer. Both the WebSocket upgrade and the plain HTTP API
//! start from it.

/// Largest request head accepted; devices and the API send a few hundred bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted (OTA and API bodies are small JSON).
pub const MAX_BODY: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The raw query string (after `?`), empty when there is none.
    pub query: String,
    /// Header names lowercased, values trimmed, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Bytes the head occupied in the buffer, so the caller knows where the body starts.
    pub head_len: usize,
}

/// Result of trying to parse the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadParse {
    Complete(RequestHead),
    /// More bytes are needed.
    Partial,
    Invalid(String),
}

pub fn parse_head(buf: &[u8]) -> HeadParse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            HeadParse::Invalid(format!("request head exceeds {MAX_HEAD} bytes"))
        }
        Ok(httparse::Status::Partial) => HeadParse::Partial,
        Err(e) => HeadParse::Invalid(format!("malformed request: {e}")),
        Ok(httparse::Status::Complete(head_len)) => {
            let target = request.path.unwrap_or("/");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), q.to_string()),
                None => (target.to_string(), String::new()),
            };
            let headers = request
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).trim().to_string(),
                    )
                })
                .collect();
            HeadParse::Complete(RequestHead {
                method: request.method.unwrap_or("GET").to_string(),
                path,
                query,
                headers,
                head_len,
            })
        }
    }
}

impl RequestHead {
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Upgrade: websocket` makes the request a device connection, whatever its path.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// Declared body length; `Err` names the limit when it is too large or unreadable.
    pub fn content_length(&self) -> Result<usize, String> {
        match self.header("content-length") {
            None => Ok(0),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => Ok(n),
                Ok(n) => Err(format!(
                    "body of {n} bytes exceeds the {MAX_BODY}-byte limit"
                )),
                Err(_) => Err(format!("content-length {v:?} is not a number")),
            },
        }
    }

    /// Query parameters, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(&self.query)
    }

    /// First query value for `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// First query value for `name`, trimmed; an empty value (`deviceId=`)
    /// counts as absent, as a form's unfilled field would.
    pub fn non_empty_param(&self, name: &str) -> Option<String> {
        self.query_param(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `%XX` and `+` decoding; invalid escapes are kept literally rather than refused.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i] {
            b'%' => bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, other) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed request head for unit tests: `method target` with `headers`.
#[cfg(test)]
pub fn test_head(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestHead {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    match parse_head(raw.as_bytes()) {
        HeadParse::Complete(head) => head,
        other => panic!("test request did not parse: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_upgrade_with_query() {
        let raw = b"GET /supie/v1/?device-id=94%3AA9&client-id=c HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nDevice-Id: 1\r\n\r\nrest";
        let HeadParse::Complete(head) = parse_head(raw) else {
            panic!("incomplete")
        };
        assert_eq!(head.path, "/supie/v1/");
        assert!(head.is_websocket_upgrade());
        assert_eq!(head.header("DEVICE-ID"), Some("1"));
        assert_eq!(head.query_param("device-id").as_deref(), Some("94:A9"));
        assert_eq!(&raw[head.head_len..], b"rest");
    }

    #[test]
    fn partial_and_invalid() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost"), HeadParse::Partial);
        assert!(matches!(
            parse_head(b"\x01\x02 nonsense\r\n\r\n"),
            HeadParse::Invalid(_)
        ));
        let huge = vec![b'a'; MAX_HEAD];
        assert!(matches!(parse_head(&huge), HeadParse::Invalid(_)));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("94%3aa9%3A90"), "94:a9:90");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
