//! The badge's face for an answer (PROTOCOL.md §3.1 `llm`: one emoji and an
//! emotion name): the first emoji in the LLM's answer that names one of the
//! firmware's emotions, as the upstream xiaozhi server picks it. The spoken
//! and displayed sentences drop every emoji (`sentences::speakable`), so the
//! face is the only place the LLM's emoji shows.

/// One face the firmware knows: the emoji sent as `text` and its `emotion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emotion {
    pub emoji: char,
    pub name: &'static str,
}

/// The face when the answer carries no emotion emoji (the contract's example).
pub const DEFAULT: Emotion = Emotion {
    emoji: '😊',
    name: "happy",
};

/// Emoji → the firmware's emotion names. Upstream's table, plus the common
/// faces LLMs reach for first (😊, 😀, 😄, 😢, 😡, 😐) mapped to their nearest
/// name, so a cheerful answer does not fall through to the default by chance.
const FACES: [(char, &str); 27] = [
    ('😂', "funny"),
    ('😭', "crying"),
    ('😠', "angry"),
    ('😔', "sad"),
    ('😍', "loving"),
    ('😲', "surprised"),
    ('😱', "shocked"),
    ('🤔', "thinking"),
    ('😌', "relaxed"),
    ('😴', "sleepy"),
    ('😜', "silly"),
    ('🙄', "confused"),
    ('😶', "neutral"),
    ('🙂', "happy"),
    ('😆', "laughing"),
    ('😳', "embarrassed"),
    ('😉', "winking"),
    ('😎', "cool"),
    ('🤤', "delicious"),
    ('😘', "kissy"),
    ('😏', "confident"),
    ('😊', "happy"),
    ('😀', "happy"),
    ('😄', "laughing"),
    ('😢', "sad"),
    ('😡', "angry"),
    ('😐', "neutral"),
];

/// The first emotion emoji in `text`, if any (other emoji are skipped).
pub fn first_in(text: &str) -> Option<Emotion> {
    text.chars().find_map(|c| {
        FACES
            .iter()
            .find(|(emoji, _)| *emoji == c)
            .map(|&(emoji, name)| Emotion { emoji, name })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_known_face_wins_and_other_emoji_are_skipped() {
        let found = first_in("🎉 Hmm 🤔 let me see 😂").expect("a face");
        assert_eq!((found.emoji, found.name), ('🤔', "thinking"));
        assert_eq!(first_in("Sure! 😊").map(|e| e.name), Some("happy"));
        assert_eq!(first_in("没问题😭").map(|e| e.name), Some("crying"));
    }

    #[test]
    fn text_without_a_known_face_has_none() {
        assert_eq!(first_in("It is sunny today."), None);
        assert_eq!(first_in("🎉🚀"), None);
        assert_eq!(first_in(""), None);
    }

    #[test]
    fn every_face_is_listed_once() {
        for (i, (emoji, _)) in FACES.iter().enumerate() {
            assert!(
                FACES[i + 1..].iter().all(|(other, _)| other != emoji),
                "{emoji} listed twice"
            );
        }
    }
}
