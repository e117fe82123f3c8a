//! Which LLM a purpose uses (PROTOCOL.md §7): `llm_by_mode.<purpose>` → `llm_by_mode.default` →
//! `selected_module.llm`, and the process-wide cache of client instances.
//!
//! A choice is an alias of an `[llm.<alias>]` table, optionally with `overrides` merged over that table. Instances
//! are shared by every connection and keyed by alias plus the canonical JSON of the overrides, so two modes that
//! pick the same alias with the same overrides share one client (and its connection pool). A reload calls
//! [`clear_cache`]; a cached instance whose effective settings differ from the current config is also rebuilt on
//! its next lookup, so a forgotten clear can never serve a stale backend.
//!
//! No LLM is not an error: `"none"`, an unknown alias or unusable overrides give `None` (the last two with a
//! warning, logged once per alias until the cache is cleared) and callers take their no-LLM path.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use super::client::LlmClient;
use super::openai::OpenAiChat;
use crate::config::{Config, LlmChoice, LlmProvider, OpenAiLlm};

/// What an LLM is asked for; each has its own `llm_by_mode` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LlmPurpose {
    Default,
    Chat,
    Meeting,
    Coding,
    Working,
    Intent,
    Memory,
}

impl LlmPurpose {
    pub const ALL: [LlmPurpose; 7] = [
        LlmPurpose::Default,
        LlmPurpose::Chat,
        LlmPurpose::Meeting,
        LlmPurpose::Coding,
        LlmPurpose::Working,
        LlmPurpose::Intent,
        LlmPurpose::Memory,
    ];

    /// The `llm_by_mode` key.
    pub fn as_str(self) -> &'static str {
        match self {
            LlmPurpose::Default => "default",
            LlmPurpose::Chat => "chat",
            LlmPurpose::Meeting => "meeting",
            LlmPurpose::Coding => "coding",
            LlmPurpose::Working => "working",
            LlmPurpose::Intent => "intent",
            LlmPurpose::Memory => "memory",
        }
    }

    fn choice(self, config: &Config) -> Option<&LlmChoice> {
        let m = &config.llm_by_mode;
        match self {
            LlmPurpose::Default => m.default.as_ref(),
            LlmPurpose::Chat => m.chat.as_ref(),
            LlmPurpose::Meeting => m.meeting.as_ref(),
            LlmPurpose::Coding => m.coding.as_ref(),
            LlmPurpose::Working => m.working.as_ref(),
            LlmPurpose::Intent => m.intent.as_ref(),
            LlmPurpose::Memory => m.memory.as_ref(),
        }
    }
}

impl fmt::Display for LlmPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LlmPurpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LlmPurpose::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown LLM purpose {s:?}"))
    }
}

/// Which config key decided the choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChoiceSource {
    /// `llm_by_mode.<purpose>` (for purpose `default` this is `llm_by_mode.default`).
    Purpose(LlmPurpose),
    /// `llm_by_mode.default`, the purpose's own key being unset.
    ModeDefault,
    /// `selected_module.llm`.
    SelectedModule,
}

/// The alias and overrides a purpose resolves to, before any table lookup.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub alias: String,
    pub overrides: toml::Table,
    pub source: ChoiceSource,
}

/// Walks the fallback order; `None` when the first set key says `"none"` (or is empty).
pub fn select(config: &Config, purpose: LlmPurpose) -> Option<Selection> {
    let (choice, source) = if let Some(c) = purpose.choice(config) {
        (Some(c), ChoiceSource::Purpose(purpose))
    } else if let Some(c) = config.llm_by_mode.default.as_ref() {
        (Some(c), ChoiceSource::ModeDefault)
    } else {
        (None, ChoiceSource::SelectedModule)
    };
    let (alias, overrides) = match choice {
        Some(LlmChoice::Alias(a)) => (a.as_str(), toml::Table::new()),
        Some(LlmChoice::Table { alias, overrides }) => (alias.as_str(), overrides.clone()),
        None => (config.selected_module.llm.as_str(), toml::Table::new()),
    };
    let alias = alias.trim();
    if alias.is_empty() || alias.eq_ignore_ascii_case("none") {
        return None;
    }
    Some(Selection {
        alias: alias.to_string(),
        overrides,
        source,
    })
}

/// `alias` + `\n` + the overrides as JSON with keys sorted at every level: equal overrides give equal keys whatever
/// order the file listed them in.
pub fn cache_key(alias: &str, overrides: &toml::Table) -> String {
    let json = serde_json::to_value(overrides).unwrap_or(serde_json::Value::Null);
    let mut key = format!("{alias}\n");
    write_canonical(&json, &mut key);
    key
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(value) = map.get(k) {
                    write_canonical(value, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The `[llm.<alias>]` table with `overrides` merged over it (top-level keys replace); errors name the bad key.
pub fn effective_provider(
    config: &Config,
    alias: &str,
    overrides: &toml::Table,
) -> Result<LlmProvider, String> {
    let base = config
        .llm
        .get(alias)
        .ok_or_else(|| format!("no [llm.{alias}] table"))?;
    if overrides.is_empty() {
        return Ok(base.clone());
    }
    if overrides.contains_key("type") {
        return Err(format!("overrides of llm.{alias} may not change its type"));
    }
    match base {
        LlmProvider::Openai(o) => {
            let mut table = match toml::Value::try_from(o) {
                Ok(toml::Value::Table(t)) => t,
                Ok(_) => return Err(format!("llm.{alias} is not a table")),
                Err(e) => return Err(format!("llm.{alias}: {e}")),
            };
            for (k, v) in overrides {
                table.insert(k.clone(), v.clone());
            }
            serde_path_to_error::deserialize::<_, OpenAiLlm>(toml::Value::Table(table))
                .map(LlmProvider::Openai)
                .map_err(|e| format!("overrides of llm.{alias}: {}: {}", e.path(), e.inner()))
        }
    }
}

fn build(alias: &str, provider: &LlmProvider) -> Arc<dyn LlmClient> {
    match provider {
        LlmProvider::Openai(o) => Arc::new(OpenAiChat::new(alias, o.clone())),
    }
}

struct Entry {
    provider: LlmProvider,
    client: Arc<dyn LlmClient>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, Entry>,
    /// Warnings already logged, so a per-turn lookup does not repeat one per turn.
    warned: HashSet<String>,
}

/// A cache of LLM clients. The server uses [`LlmRegistry::global`] (through [`resolve`] / [`clear_cache`]); tests
/// can make their own.
#[derive(Default)]
pub struct LlmRegistry {
    inner: Mutex<Inner>,
}

static GLOBAL: LazyLock<LlmRegistry> = LazyLock::new(LlmRegistry::new);

impl LlmRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static LlmRegistry {
        &GLOBAL
    }

    /// The client for `purpose` under `config`, built on first use and shared afterwards.
    pub fn resolve(&self, config: &Config, purpose: LlmPurpose) -> Option<Arc<dyn LlmClient>> {
        let selection = select(config, purpose)?;
        let key = cache_key(&selection.alias, &selection.overrides);
        let provider = match effective_provider(config, &selection.alias, &selection.overrides) {
            Ok(p) => p,
            Err(why) => {
                let mut inner = self.inner.lock();
                if inner.warned.insert(key) {
                    ::log::warn!("llm: {purpose} runs without an LLM: {why}");
                }
                return None;
            }
        };
        let mut inner = self.inner.lock();
        if let Some(entry) = inner.clients.get(&key)
            && entry.provider == provider
        {
            return Some(Arc::clone(&entry.client));
        }
        let client = build(&selection.alias, &provider);
        ::log::debug!(
            "llm: {purpose} uses {} ({}, model {})",
            selection.alias,
            provider.type_name(),
            client.model()
        );
        inner.clients.insert(
            key,
            Entry {
                provider,
                client: Arc::clone(&client),
            },
        );
        Some(client)
    }

    /// Drops every cached client and logged warning (config reload). Calls in flight keep their `Arc`.
    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.clients.clear();
        inner.warned.clear();
    }

    /// Cached clients.
    pub fn len(&self) -> usize {
        self.inner.lock().clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The shared client for `purpose`, or `None` when that purpose has no LLM (see the module docs).
pub fn resolve(config: &Config, purpose: LlmPurpose) -> Option<Arc<dyn LlmClient>> {
    LlmRegistry::global().resolve(config, purpose)
}

/// Empties the process-wide cache; called on every config reload.
pub fn clear_cache() {
    LlmRegistry::global().clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_toml;

    const TABLES: &str = r#"
[llm.a]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "model-a"

[llm.b]
type = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "model-b"
"#;

    fn config(extra: &str) -> Config {
        parse_toml(&format!("{extra}\n{TABLES}")).unwrap()
    }

    fn alias_of(config: &Config, purpose: LlmPurpose) -> Option<String> {
        select(config, purpose).map(|s| s.alias)
    }

    #[test]
    fn purposes_parse_and_print() {
        for p in LlmPurpose::ALL {
            assert_eq!(p.as_str().parse::<LlmPurpose>().unwrap(), p);
        }
        assert!("nope".parse::<LlmPurpose>().is_err());
    }

    #[test]
    fn fallback_order_is_purpose_then_default_then_selected_module() {
        let c = config("[selected_module]\nllm = \"a\"");
        assert_eq!(alias_of(&c, LlmPurpose::Meeting).as_deref(), Some("a"));
        assert_eq!(
            select(&c, LlmPurpose::Meeting).unwrap().source,
            ChoiceSource::SelectedModule
        );

        let c = config("[selected_module]\nllm = \"a\"\n[llm_by_mode]\ndefault = \"b\"");
        let s = select(&c, LlmPurpose::Meeting).unwrap();
        assert_eq!(
            (s.alias.as_str(), s.source),
            ("b", ChoiceSource::ModeDefault)
        );

        let c = config(
            "[selected_module]\nllm = \"a\"\n[llm_by_mode]\ndefault = \"b\"\nmeeting = \"a\"",
        );
        let s = select(&c, LlmPurpose::Meeting).unwrap();
        assert_eq!(
            (s.alias.as_str(), s.source),
            ("a", ChoiceSource::Purpose(LlmPurpose::Meeting))
        );
        assert_eq!(alias_of(&c, LlmPurpose::Chat).as_deref(), Some("b"));
    }

    #[test]
    fn none_switches_the_llm_off() {
        assert!(select(&Config::default(), LlmPurpose::Chat).is_none());
        let c = config("[selected_module]\nllm = \"a\"\n[llm_by_mode]\nmeeting = \"none\"");
        assert!(select(&c, LlmPurpose::Meeting).is_none());
        assert!(select(&c, LlmPurpose::Chat).is_some());
        let registry = LlmRegistry::new();
        assert!(registry.resolve(&c, LlmPurpose::Meeting).is_none());
        assert!(registry.is_empty());
    }

    #[test]
    fn missing_table_or_bad_overrides_give_none() {
        let registry = LlmRegistry::new();
        let c = config("[llm_by_mode]\nchat = \"ghost\"");
        assert!(registry.resolve(&c, LlmPurpose::Chat).is_none());
        let c = config("[llm_by_mode]\nchat = { alias = \"a\", overrides = { colour = 1 } }");
        assert!(registry.resolve(&c, LlmPurpose::Chat).is_none());
        let err = effective_provider(&c, "a", &select(&c, LlmPurpose::Chat).unwrap().overrides)
            .unwrap_err();
        assert!(err.contains("colour"), "{err}");
        let c = config("[llm_by_mode]\nchat = { alias = \"a\", overrides = { type = \"x\" } }");
        assert!(registry.resolve(&c, LlmPurpose::Chat).is_none());
    }

    #[test]
    fn overrides_merge_over_the_table() {
        let c = config(
            "[llm_by_mode]\nchat = { alias = \"a\", overrides = { model = \"m2\", temperature = 0.2, max_tokens = 300 } }",
        );
        let overrides = select(&c, LlmPurpose::Chat).unwrap().overrides;
        let LlmProvider::Openai(o) = effective_provider(&c, "a", &overrides).unwrap();
        assert_eq!(o.model, "m2");
        assert_eq!(o.temperature, Some(0.2));
        assert_eq!(o.max_tokens, Some(300));
        assert_eq!(o.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(o.timeout_s, 60);
    }

    #[test]
    fn cache_keys_are_canonical() {
        let t1: toml::Table = toml::from_str("b = 1\na = { y = 2, x = [1, 2] }").unwrap();
        let t2: toml::Table = toml::from_str("a = { x = [1, 2], y = 2 }\nb = 1").unwrap();
        assert_eq!(cache_key("a", &t1), cache_key("a", &t2));
        assert_eq!(
            cache_key("a", &t1),
            "a\n{\"a\":{\"x\":[1,2],\"y\":2},\"b\":1}"
        );
        assert_ne!(cache_key("a", &t1), cache_key("b", &t1));
        assert_eq!(cache_key("a", &toml::Table::new()), "a\n{}");
    }

    #[test]
    fn instances_are_shared_per_alias_and_overrides() {
        let registry = LlmRegistry::new();
        let c = config(
            "[llm_by_mode]\ndefault = \"a\"\nchat = \"a\"\nmeeting = { alias = \"a\", overrides = { max_tokens = 100 } }\ncoding = { alias = \"a\", overrides = { max_tokens = 100 } }",
        );
        let chat = registry.resolve(&c, LlmPurpose::Chat).unwrap();
        let default = registry.resolve(&c, LlmPurpose::Default).unwrap();
        let meeting = registry.resolve(&c, LlmPurpose::Meeting).unwrap();
        let coding = registry.resolve(&c, LlmPurpose::Coding).unwrap();
        assert!(Arc::ptr_eq(&chat, &default));
        assert!(Arc::ptr_eq(&meeting, &coding));
        assert!(!Arc::ptr_eq(&chat, &meeting));
        assert_eq!(registry.len(), 2);
        assert_eq!(chat.name(), "a");

        // Changed settings under the same key rebuild the instance even without a clear.
        let changed = parse_toml(&format!(
            "[llm_by_mode]\ndefault = \"a\"\n{}",
            TABLES.replace("model-a", "model-a2")
        ))
        .unwrap();
        let rebuilt = registry.resolve(&changed, LlmPurpose::Chat).unwrap();
        assert!(!Arc::ptr_eq(&chat, &rebuilt));
        assert_eq!(rebuilt.model(), "model-a2");

        registry.clear();
        assert!(registry.is_empty());
        let fresh = registry.resolve(&changed, LlmPurpose::Chat).unwrap();
        assert!(!Arc::ptr_eq(&rebuilt, &fresh));
    }
}
