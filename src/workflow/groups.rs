//! Workflow groups (PROTOCOL.md §3.4): a device's default group is the first
//! 8 characters of its device-id, and every stored `groupKey` is normalized and
//! cut to the same length, so `94:A9:90:07:9D:88` and `94:a9:90` land together.

use crate::net::identity::normalize_id;

/// Length of a group key in characters (`94:a9:90`: the MAC's vendor prefix).
pub const GROUP_LEN: usize = 8;

/// The default group of a device: its normalized id cut to [`GROUP_LEN`].
pub fn group_of_device(device_id: &str) -> String {
    normalize_group(device_id)
}

/// Normalizes a group key the same way device-ids are normalized (trim, strip
/// quotes, lowercase) and cuts it to [`GROUP_LEN`] characters. Cuts on chars,
/// not bytes, so a non-ASCII key cannot split a code point.
pub fn normalize_group(key: &str) -> String {
    normalize_id(key).chars().take(GROUP_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_group_is_the_normalized_prefix() {
        assert_eq!(group_of_device("94:a9:90:07:9d:88"), "94:a9:90");
        assert_eq!(group_of_device(" \"94:A9:90:07:9D:88\" "), "94:a9:90");
        assert_eq!(group_of_device("short"), "short");
    }

    #[test]
    fn group_keys_are_normalized_and_cut() {
        assert_eq!(normalize_group("94:A9:90:FF"), "94:a9:90");
        assert_eq!(normalize_group("  Team "), "team");
        assert_eq!(normalize_group("研发组一二三四五六"), "研发组一二三四五");
    }
}
