//! Cleaning recognized text for the device (PROTOCOL.md §3.1: `stt` text has
//! leading and trailing punctuation and emoji removed).

/// Trims whitespace, punctuation (ASCII and CJK) and emoji from both ends.
pub fn clean(text: &str) -> String {
    text.trim_matches(|c: char| c.is_whitespace() || is_punctuation(c) || is_emoji(c))
        .to_string()
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '，' | '。'
                | '！'
                | '？'
                | '、'
                | '；'
                | '：'
                | '“'
                | '”'
                | '‘'
                | '’'
                | '（'
                | '）'
                | '《'
                | '》'
                | '…'
                | '—'
                | '·'
                | '「'
                | '」'
        )
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0xFE0F | 0x200D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_both_ends_only() {
        assert_eq!(clean("  Hello, world!  "), "Hello, world");
        assert_eq!(clean("。登录页改成扫码！"), "登录页改成扫码");
        assert_eq!(clean("😊 ok 👍"), "ok");
        assert_eq!(clean("..."), "");
        assert_eq!(clean("it's"), "it's");
    }
}
