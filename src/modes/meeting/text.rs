//! Segment text normalization (PROTOCOL.md §3.3): whitespace collapsed, cut to
//! 2 KB on a character boundary, and the `meeting.term_map` scope picked by a
//! zh/en guess applied.

use std::collections::BTreeMap;

/// Segment text limit: 2 KB of UTF-8.
pub const MAX_TEXT_BYTES: usize = 2048;

/// Trims and collapses whitespace runs to one space.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts to at most `max` bytes on a character boundary.
pub fn cut_to_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `zh` when CJK characters dominate the letters, else `en`.
pub fn detect_language(text: &str) -> &'static str {
    let cjk = text
        .chars()
        .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
        .count();
    let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    if cjk * 2 >= latin && cjk > 0 {
        "zh"
    } else {
        "en"
    }
}

/// Applies the term maps of scope `*`, the detected language and
/// `industry:<x>`, in that order (later scopes win on the same term).
pub fn apply_term_map(
    text: &str,
    term_map: &BTreeMap<String, BTreeMap<String, String>>,
    industry: Option<&str>,
) -> String {
    let mut out = text.to_string();
    let industry_scope = industry.map(|i| format!("industry:{i}"));
    let scopes = ["*", detect_language(text)]
        .into_iter()
        .map(str::to_string)
        .chain(industry_scope);
    for scope in scopes {
        if let Some(table) = term_map.get(&scope) {
            for (term, replacement) in table {
                if !term.is_empty() {
                    out = out.replace(term.as_str(), replacement);
                }
            }
        }
    }
    out
}

/// The full normalization of one accepted text.
pub fn normalize(
    text: &str,
    term_map: &BTreeMap<String, BTreeMap<String, String>>,
    industry: Option<&str>,
) -> String {
    let mapped = apply_term_map(&collapse_whitespace(text), term_map, industry);
    cut_to_bytes(&mapped, MAX_TEXT_BYTES).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_cut() {
        assert_eq!(collapse_whitespace("  a \n b\t\tc "), "a b c");
        let long = "登".repeat(1000); // 3000 bytes
        let cut = cut_to_bytes(&long, MAX_TEXT_BYTES);
        assert!(cut.len() <= 2048 && cut.len() > 2040);
        assert!(cut.chars().all(|c| c == '登'));
    }

    #[test]
    fn term_map_scopes() {
        let mut map = BTreeMap::new();
        map.insert(
            "*".to_string(),
            BTreeMap::from([("k8s".to_string(), "Kubernetes".to_string())]),
        );
        map.insert(
            "zh".to_string(),
            BTreeMap::from([("扫马".to_string(), "扫码".to_string())]),
        );
        map.insert(
            "en".to_string(),
            BTreeMap::from([("lazy nog".to_string(), "lazy dog".to_string())]),
        );
        assert_eq!(
            normalize("登录页改成扫马 k8s", &map, None),
            "登录页改成扫码 Kubernetes"
        );
        assert_eq!(normalize("the lazy nog", &map, None), "the lazy dog");
        assert_eq!(detect_language("登录页改成扫码"), "zh");
        assert_eq!(detect_language("hello"), "en");
    }
}
