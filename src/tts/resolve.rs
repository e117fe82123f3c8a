//! Which TTS engine speaks (PROTOCOL.md §7): `selected_module.tts` names a `[tts.<name>]` table, and the
//! process-wide cache of engine instances.
//!
//! Instances are shared by every connection and keyed by name plus the table's settings, so a changed table gets a
//! new engine while calls in flight keep the old one. A reload calls [`clear_cache`].
//!
//! No TTS is not an error: `"none"`, a name without a table, or an espeak table on a machine without `espeak-ng`
//! give `None` (the last two with a warning, logged once per name until the cache is cleared) and callers send
//! their turns without audio.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use super::engine::Tts;
use super::espeak::{self, EspeakEngine};
use super::openai::OpenAiSpeech;
use crate::config::{Config, TtsProvider};

/// The `[tts.<name>]` name `selected_module.tts` picks, or `None` for `"none"` / empty.
pub fn selected(config: &Config) -> Option<&str> {
    let name = config.selected_module.tts.trim();
    (!name.is_empty() && !name.eq_ignore_ascii_case("none")).then_some(name)
}

/// `name` + `\n` + the table as JSON: equal tables give equal keys, any changed setting a new one.
pub fn cache_key(name: &str, provider: &TtsProvider) -> String {
    let json = serde_json::to_string(provider).unwrap_or_default();
    format!("{name}\n{json}")
}

#[derive(Default)]
struct Inner {
    engines: HashMap<String, Arc<dyn Tts>>,
    /// Warnings already logged, so a per-turn lookup does not repeat one per turn.
    warned: HashSet<String>,
}

/// A cache of TTS engines. The server uses [`TtsRegistry::global`] (through [`resolve`] / [`clear_cache`]); tests
/// can make their own.
#[derive(Default)]
pub struct TtsRegistry {
    inner: Mutex<Inner>,
}

static GLOBAL: LazyLock<TtsRegistry> = LazyLock::new(TtsRegistry::new);

impl TtsRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static TtsRegistry {
        &GLOBAL
    }

    /// The engine `config` selects, built on first use and shared afterwards.
    pub fn resolve(&self, config: &Config) -> Option<Arc<dyn Tts>> {
        let name = selected(config)?;
        let mut inner = self.inner.lock();
        let Some(provider) = config.tts.get(name) else {
            if inner.warned.insert(format!("{name}\nmissing")) {
                ::log::warn!(
                    "tts: selected_module.tts is {name:?} but there is no [tts.{name}] table; turns are sent without audio"
                );
            }
            return None;
        };
        let key = cache_key(name, provider);
        if let Some(engine) = inner.engines.get(&key) {
            return Some(Arc::clone(engine));
        }
        let engine: Arc<dyn Tts> = match provider {
            TtsProvider::Espeak(settings) => {
                match EspeakEngine::from_path(name, settings.clone()) {
                    Some(engine) => Arc::new(engine),
                    None => {
                        if inner.warned.insert(key) {
                            ::log::warn!(
                                "tts: [tts.{name}] needs the {} program, which is not on PATH \
                                 (Debian: apt-get install espeak-ng); turns are sent without audio",
                                espeak::PROGRAM
                            );
                        }
                        return None;
                    }
                }
            }
            TtsProvider::Openai(settings) => Arc::new(OpenAiSpeech::new(name, settings.clone())),
        };
        ::log::debug!("tts: speaking with {name} ({})", provider.type_name());
        inner.engines.insert(key, Arc::clone(&engine));
        Some(engine)
    }

    /// Drops every cached engine and logged warning (config reload). Calls in flight keep their `Arc`.
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.engines.clear();
        inner.warned.clear();
    }

    /// Cached engines.
    pub fn len(&self) -> usize {
        self.inner.lock().engines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The shared engine `selected_module.tts` picks, or `None` when there is none (see the module docs).
pub fn resolve(config: &Config) -> Option<Arc<dyn Tts>> {
    TtsRegistry::global().resolve(config)
}

/// Empties the process-wide cache; called on every config reload.
pub fn clear_cache() {
    TtsRegistry::global().clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_toml;

    const TABLES: &str = r#"
[tts.local]
type = "espeak"
voice = "en-us"

[tts.cloud]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "tts-1"
"#;

    fn config(selected: &str) -> Config {
        parse_toml(&format!(
            "[selected_module]\ntts = \"{selected}\"\n{TABLES}"
        ))
        .unwrap()
    }

    #[test]
    fn none_and_missing_tables_give_no_engine() {
        let registry = TtsRegistry::new();
        assert!(registry.resolve(&Config::default()).is_none());
        assert!(registry.resolve(&config("none")).is_none());
        assert!(registry.resolve(&config("NONE")).is_none());
        assert!(registry.resolve(&config("")).is_none());
        assert!(registry.resolve(&config("ghost")).is_none());
        assert!(registry.is_empty());
    }

    #[test]
    fn instances_are_shared_until_the_settings_change() {
        let registry = TtsRegistry::new();
        let c = config("cloud");
        let a = registry.resolve(&c).unwrap();
        let b = registry.resolve(&c).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.name(), "cloud");

        let changed = parse_toml(&format!(
            "[selected_module]\ntts = \"cloud\"\n{}",
            TABLES.replace("tts-1", "tts-2")
        ))
        .unwrap();
        let rebuilt = registry.resolve(&changed).unwrap();
        assert!(!Arc::ptr_eq(&a, &rebuilt));

        registry.clear();
        assert!(registry.is_empty());
        let fresh = registry.resolve(&c).unwrap();
        assert!(!Arc::ptr_eq(&a, &fresh));
    }

    #[test]
    fn cache_keys_differ_by_name_and_settings() {
        let c = config("cloud");
        let cloud = &c.tts["cloud"];
        let local = &c.tts["local"];
        assert_ne!(cache_key("cloud", cloud), cache_key("other", cloud));
        assert_ne!(cache_key("cloud", cloud), cache_key("cloud", local));
        assert!(cache_key("cloud", cloud).starts_with("cloud\n{"));
    }
}
