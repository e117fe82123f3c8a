//! `ConfigStore`: the process-wide current config and its two reload paths (SIGHUP and admin `update_config`).
//!
//! Readers clone an `Arc<Config>` and drop the lock at once, so a reload never waits on a reader doing I/O and a
//! reader keeps one consistent snapshot for as long as it needs it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::error::{ConfigError, ConfigErrorKind};
use super::load::is_pem_text;
use super::{Config, from_toml_value, load_file};

pub struct ConfigStore {
    current: RwLock<Arc<Config>>,
    file: Option<PathBuf>,
    /// Serializes reloads so two concurrent `update_config`s cannot each merge over the same old config and lose one.
    update: Mutex<()>,
}

impl ConfigStore {
    /// `file` is what SIGHUP re-reads; `None` means the server runs on defaults and a reload restores them.
    pub fn new(initial: Config, file: Option<PathBuf>) -> Self {
        Self {
            current: RwLock::new(Arc::new(initial)),
            file,
            update: Mutex::new(()),
        }
    }

    pub fn current(&self) -> Arc<Config> {
        self.current.read().clone()
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// SIGHUP: re-reads the file (defaults without one), dropping earlier `update_config` overrides. On error the
    /// old config stays.
    pub fn reload_file(&self) -> Result<Arc<Config>, ConfigError> {
        let _guard = self.update.lock();
        let next = match &self.file {
            Some(path) => load_file(path)?,
            None => Config::default(),
        };
        self.install(next)
    }

    /// Admin `update_config`: `partial` is a JSON object in the TOML structure, deep-merged over the current config
    /// and validated like a file. On error the old config stays.
    pub fn apply_partial(&self, partial: &serde_json::Value) -> Result<Arc<Config>, ConfigError> {
        let serde_json::Value::Object(obj) = partial else {
            return Err(ConfigError::invalid(
                "",
                "update_config needs a JSON object of config sections",
            ));
        };
        let _guard = self.update.lock();
        let toml::Value::Table(mut base) = self.current().to_toml_value()? else {
            return Err(ConfigError::invalid("", "current config is not a table"));
        };
        merge(&mut base, json_table("", obj)?);
        refuse_key_file(&base)?;
        let next = from_toml_value(toml::Value::Table(base))?;
        self.install(next)
    }

    /// `server.admin_secret` check for admin messages; an unset or empty secret refuses everything.
    pub fn admin_secret_matches(&self, secret: &str) -> bool {
        let config = self.current();
        match config.server.admin_secret.as_deref() {
            Some(expected) if !expected.is_empty() => {
                constant_time_eq(expected.as_bytes(), secret.as_bytes())
            }
            _ => false,
        }
    }

    fn install(&self, next: Config) -> Result<Arc<Config>, ConfigError> {
        let old = self.current();
        check_restart_keys(&old, &next)?;
        let next = Arc::new(next);
        *self.current.write() = next.clone();
        Ok(next)
    }
}

/// `update_config` runs on the admin's connection thread, which must not wait on the disk: a JWT public key given
/// as a file path is refused there when the mode verifies JWTs (a loaded config in such a mode holds the key's PEM
/// text, `load::read_jwt_key_file`); the path belongs in the config file, which SIGHUP reads on the signal thread.
fn refuse_key_file(merged: &toml::Table) -> Result<(), ConfigError> {
    let auth = merged.get("server").and_then(|s| s.get("auth"));
    let mode = auth
        .and_then(|a| a.get("mode"))
        .and_then(toml::Value::as_str);
    let key = auth
        .and_then(|a| a.get("jwt"))
        .and_then(|j| j.get("public_key"))
        .and_then(toml::Value::as_str);
    match key {
        Some(key) if matches!(mode, Some("jwt" | "mixed")) && !is_pem_text(key) => {
            Err(ConfigError::invalid(
                "server.auth.jwt.public_key",
                "update_config takes the PEM text; a key file path is set in the config file (SIGHUP)",
            ))
        }
        _ => Ok(()),
    }
}

/// ⟲ keys (PROTOCOL.md §7): bound sockets and open data files cannot follow a reload.
fn check_restart_keys(old: &Config, new: &Config) -> Result<(), ConfigError> {
    let changed = if old.server.ip != new.server.ip {
        "server.ip"
    } else if old.server.port != new.server.port {
        "server.port"
    } else if old.server.http_port != new.server.http_port {
        "server.http_port"
    } else if old.storage.data_dir != new.storage.data_dir {
        "storage.data_dir"
    } else if old.audio.workers != new.audio.workers {
        "audio.workers"
    } else if old.audio.ring_kib != new.audio.ring_kib {
        "audio.ring_kib"
    } else {
        return Ok(());
    };
    Err(ConfigError::new(
        ConfigErrorKind::RestartRequired,
        changed,
        "cannot change without a restart",
    ))
}

/// Compares without an early exit on the first differing byte, so response timing does not leak the secret prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Recursive merge: tables merge key by key, anything else replaces. A provider table whose `type` changes is
/// replaced whole, since the old type's keys would be unknown to the new one.
fn merge(base: &mut toml::Table, partial: toml::Table) {
    for (key, value) in partial {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(p)) if !type_changes(b, &p) => {
                merge(b, p)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn type_changes(base: &toml::Table, partial: &toml::Table) -> bool {
    matches!((base.get("type"), partial.get("type")), (Some(a), Some(b)) if a != b)
}

fn json_table(
    prefix: &str,
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<toml::Table, ConfigError> {
    let mut table = toml::Table::new();
    for (k, v) in obj {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        table.insert(k.clone(), json_to_toml(&key, v)?);
    }
    Ok(table)
}

fn json_to_toml(key: &str, v: &serde_json::Value) -> Result<toml::Value, ConfigError> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => {
            return Err(ConfigError::invalid(
                key,
                "null is not a config value (TOML has no null)",
            ));
        }
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) if n.is_f64() => toml::Value::Float(f),
            _ => {
                return Err(ConfigError::invalid(
                    key,
                    format!("{n} does not fit a TOML integer"),
                ));
            }
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| json_to_toml(&format!("{key}[{i}]"), item))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(obj) => toml::Value::Table(json_table(key, obj)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_map_to_toml() {
        assert_eq!(
            json_to_toml("a", &serde_json::json!(5)).unwrap(),
            toml::Value::Integer(5)
        );
        assert_eq!(
            json_to_toml("a", &serde_json::json!(0.25)).unwrap(),
            toml::Value::Float(0.25)
        );
        let e = json_to_toml("a.b", &serde_json::json!(u64::MAX)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config: a.b: 18446744073709551615 does not fit a TOML integer"
        );
        let e = json_to_toml("a", &serde_json::json!([1, null])).unwrap_err();
        assert_eq!(e.key, "a[1]");
    }

    #[test]
    fn merge_is_deep_and_replaces_leaves() {
        let mut base: toml::Table =
            toml::from_str("[a]\nx = 1\ny = [1, 2]\n[a.t]\nk = 1\n").unwrap();
        let partial: toml::Table = toml::from_str("[a]\ny = [3]\n[a.t]\nj = 2\n").unwrap();
        merge(&mut base, partial);
        let want: toml::Table =
            toml::from_str("[a]\nx = 1\ny = [3]\n[a.t]\nk = 1\nj = 2\n").unwrap();
        assert_eq!(base, want);
    }

    #[test]
    fn constant_time_eq_compares_length_and_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"a\0", b"a"));
    }
}
