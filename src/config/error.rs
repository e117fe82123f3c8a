//! `ConfigError`: the one error type of loading, validating and reloading the config.
//!
//! Every error names the dotted key it is about, because an operator fixing `huddle.toml` at 3 a.m. should not have
//! to guess which of 150 keys is wrong.

use std::fmt;

/// Which family an error belongs to; it only decides the wording of the `config: ...` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A key the schema does not know (usually a typo, e.g. `meeting.transcript_interval`).
    UnknownKey,
    /// A well-typed value outside its documented range; `message` is `<value> outside <lo>..=<hi>`.
    OutOfRange,
    /// Wrong type, bad enum value, missing required field or a rule between keys.
    Invalid,
    /// A reload tried to change a key that only takes effect at startup (⟲ in PROTOCOL.md §7).
    RestartRequired,
    /// The file could not be read or is not TOML; `key` is the file path (or empty for in-memory text).
    File,
}

/// Why a config was refused. `key` is the dotted key (`meeting.webhook.url`), `message` the reason without the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
    pub kind: ConfigErrorKind,
}

impl ConfigError {
    pub fn new(kind: ConfigErrorKind, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
            kind,
        }
    }

    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ConfigErrorKind::Invalid, key, message)
    }

    pub fn unknown_key(key: impl Into<String>) -> Self {
        Self::new(ConfigErrorKind::UnknownKey, key, "unknown key")
    }

    /// The text for an `update_config` error reply (PROTOCOL.md §3.7), which carries no `config: ` prefix and
    /// writes ranges as `key: value outside lo..=hi`.
    pub fn reply_message(&self) -> String {
        match self.kind {
            ConfigErrorKind::OutOfRange => format!("{}: {}", self.key, self.message),
            _ => {
                let line = self.to_string();
                line.strip_prefix("config: ").unwrap_or(&line).to_string()
            }
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ConfigErrorKind::UnknownKey => write!(f, "config: unknown key {}", self.key),
            ConfigErrorKind::OutOfRange => write!(f, "config: {} = {}", self.key, self.message),
            ConfigErrorKind::RestartRequired => write!(f, "config: {} {}", self.key, self.message),
            ConfigErrorKind::Invalid | ConfigErrorKind::File if self.key.is_empty() => {
                write!(f, "config: {}", self.message)
            }
            ConfigErrorKind::Invalid | ConfigErrorKind::File => {
                write!(f, "config: {}: {}", self.key, self.message)
            }
        }
    }
}

impl std::error::Error for ConfigError {}
