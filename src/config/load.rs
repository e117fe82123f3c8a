//! Turning TOML text, files and `toml::Value`s into a validated [`Config`], and back into TOML.
//!
//! Deserialization goes through `serde_path_to_error` so that every error carries the dotted key, and through a
//! `toml::Value` first so a file and an `update_config` merge take exactly the same path.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigErrorKind};
use super::providers::{PROVIDER_SECTIONS, PathError};
use super::{AuthMode, Config, validate};

/// Config file looked up in the working directory when no path is given.
pub const DEFAULT_FILE: &str = "huddle.toml";

/// Parses and validates TOML text. Syntax errors carry the line and column, with an empty `key`.
pub fn parse_toml(text: &str) -> Result<Config, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        ConfigError::new(
            ConfigErrorKind::File,
            "",
            e.to_string().trim_end().to_string(),
        )
    })?;
    from_toml_value(toml::Value::Table(table))
}

/// Builds and validates a config from an already parsed TOML tree (a file or a merged `update_config`).
pub fn from_toml_value(v: toml::Value) -> Result<Config, ConfigError> {
    let toml::Value::Table(root) = v else {
        return Err(ConfigError::invalid("", "the config must be a table"));
    };
    check_providers(&root)?;
    let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(root))
        .map_err(|e| path_error("", e))?;
    read_jwt_key_file(&mut config)?;
    validate(&config)?;
    Ok(config)
}

/// A PEM public key is a few KiB at most (RSA-8192 is under 2).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// `server.auth.jwt.public_key` may name a PEM file. The loaded config holds the file's text instead, so no
/// handshake and no `update_config` (both on connection threads) ever reads it, and a rotated key is picked up by
/// the next load (SIGHUP). `update_config` cannot name a file (`ConfigStore::apply_partial`), so this reads only
/// while a file or startup config is loaded, off the connection threads.
fn read_jwt_key_file(config: &mut Config) -> Result<(), ConfigError> {
    // Only a mode that verifies JWTs needs the key; another leaves the setting as written.
    if !matches!(config.server.auth.mode, AuthMode::Jwt | AuthMode::Mixed) {
        return Ok(());
    }
    let Some(value) = config.server.auth.jwt.public_key.as_deref() else {
        return Ok(());
    };
    if is_pem_text(value) {
        return Ok(());
    }
    let unreadable = |why: String| {
        ConfigError::invalid(
            "server.auth.jwt.public_key",
            format!("is neither PEM text nor a readable PEM file: {value}: {why}"),
        )
    };
    // Only a small regular file: never a device or a FIFO that would block or never end.
    let meta = std::fs::metadata(value).map_err(|e| unreadable(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_KEY_FILE_BYTES {
        return Err(unreadable(format!(
            "not a regular file of at most {MAX_KEY_FILE_BYTES} bytes"
        )));
    }
    let mut text = String::new();
    std::fs::File::open(value)
        .and_then(|file| file.take(MAX_KEY_FILE_BYTES).read_to_string(&mut text))
        .map_err(|e| unreadable(e.to_string()))?;
    config.server.auth.jwt.public_key = Some(text);
    Ok(())
}

/// Whether a `public_key` value is the key itself rather than a file path.
pub fn is_pem_text(value: &str) -> bool {
    value.trim_start().starts_with("-----BEGIN")
}

/// Reads, parses and validates one file; a missing or unreadable file is an error naming the path.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            ConfigErrorKind::File,
            shown.clone(),
            format!("cannot read: {e}"),
        )
    })?;
    parse_toml(&text).map_err(|mut e| {
        if e.kind == ConfigErrorKind::File && e.key.is_empty() {
            e.key = shown;
        }
        e
    })
}

/// The startup rule of PROTOCOL.md §7: an explicit path (`--config` / `HUDDLE_CONFIG`) must exist; otherwise
/// `huddle.toml` in the working directory is used when present, else the defaults. Returns the file that was read,
/// which is what SIGHUP re-reads.
pub fn load_startup(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = PathBuf::from(DEFAULT_FILE);
            if !p.exists() {
                return Ok((Config::default(), None));
            }
            p
        }
    };
    let config = load_file(&path)?;
    Ok((config, Some(path)))
}

impl Config {
    /// The effective config as TOML (what `huddle check-config` prints); unset keys are omitted.
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# config cannot be shown as TOML: {e}\n"))
    }

    /// The config as a TOML tree, the base that `update_config` partials are merged over.
    pub fn to_toml_value(&self) -> Result<toml::Value, ConfigError> {
        toml::Value::try_from(self)
            .map_err(|e| ConfigError::invalid("", format!("config cannot be shown as TOML: {e}")))
    }
}

fn join(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{key}"),
    }
}

/// The name between the first pair of backticks of a serde message (`unknown field `x`, expected ...`).
fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Maps a serde error to a `ConfigError` whose key is `prefix` + the serde path (+ the offending field for unknown
/// and missing fields, which serde reports on the enclosing table).
fn path_error(prefix: &str, e: PathError) -> ConfigError {
    let path = e.path().to_string();
    let path = join(prefix, if path == "." { "" } else { &path });
    let msg = e.into_inner().message().to_string();
    let field_key = |field: &str| {
        if path == field || path.ends_with(&format!(".{field}")) {
            path.clone()
        } else {
            join(&path, field)
        }
    };
    if let Some(field) = msg.strip_prefix("unknown field ").and_then(backticked) {
        return ConfigError::unknown_key(field_key(field));
    }
    if let Some(field) = msg.strip_prefix("missing field ").and_then(backticked) {
        return ConfigError::invalid(field_key(field), "required key is missing");
    }
    ConfigError::invalid(path, msg)
}

/// Checks every `[asr|llm|tts.<name>]` table against the struct of its `type` with full key paths; the tagged enums
/// used by the main pass would only name the table.
fn check_providers(root: &toml::Table) -> Result<(), ConfigError> {
    for (section, types, check) in PROVIDER_SECTIONS {
        let Some(toml::Value::Table(entries)) = root.get(section) else {
            continue;
        };
        for (name, entry) in entries {
            let toml::Value::Table(table) = entry else {
                continue;
            };
            let key = format!("{section}.{name}");
            let type_key = format!("{key}.type");
            let expected = types.join(", ");
            let kind = match table.get("type") {
                Some(toml::Value::String(kind)) => kind.as_str(),
                Some(other) => {
                    return Err(ConfigError::invalid(
                        type_key,
                        format!(
                            "expected a string (one of {expected}), got {}",
                            other.type_str()
                        ),
                    ));
                }
                None => {
                    return Err(ConfigError::invalid(
                        type_key,
                        format!("required key is missing (one of {expected})"),
                    ));
                }
            };
            let mut body = table.clone();
            body.remove("type");
            match check(kind, toml::Value::Table(body)) {
                None => {
                    return Err(ConfigError::invalid(
                        type_key,
                        format!("unknown type \"{kind}\", expected one of {expected}"),
                    ));
                }
                Some(Err(e)) => return Err(path_error(&key, e)),
                Some(Ok(())) => {}
            }
        }
    }
    Ok(())
}
