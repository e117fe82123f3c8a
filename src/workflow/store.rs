//! `tasks.json` (PROTOCOL.md §3.4, §4.1): the workflow task list, kept in memory
//! in insertion order and persisted as `{"tasks":[…]}` after every write.
//!
//! There is exactly one writer lock: every operation takes the mutex, applies
//! its change to a copy of the list, writes the copy atomically and only then
//! installs it. Holding the lock across the write means two concurrent writers
//! can never persist lists that each lack the other's change, and working on a
//! copy means a failed write leaves memory equal to the file on disk. Readers
//! never take the writer lock: they clone the published `Arc` of the list, so
//! a connection thread building a snapshot never waits on a file write.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};

use super::groups::normalize_group;
use super::task::{Task, validate_task};
use crate::store::atomic::{TEMP_MARKER, write_atomic};

/// File name under the data directory.
pub const TASKS_FILE: &str = "tasks.json";

/// What a write did, for the ack and for deciding who gets a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Groups whose snapshot differs after the operation (both old and new
    /// group when a task moved). Empty when nothing changed.
    pub changed_groups: BTreeSet<String>,
    /// Requested ids that do not exist, in request order (ack `missing`).
    pub missing: Vec<String>,
    /// Set by `complete` and `assign` when nothing changed (ack `idempotent`,
    /// and no snapshot is sent).
    pub idempotent: bool,
}

/// Result of [`TaskStore::import`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// Ids inserted, in input order; ids that already existed are not here.
    pub ids: Vec<String>,
    pub changed_groups: BTreeSet<String>,
}

/// Why a write was refused. Kept apart so the caller can answer a schema
/// problem with `SCHEMA_INVALID` and a disk problem with an internal error.
#[derive(Debug)]
pub enum StoreError {
    /// The message broke §3.4; the text names the task index and field.
    Invalid(String),
    /// Persisting failed; memory and file still hold the previous list.
    Io(io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Invalid(msg) => f.write_str(msg),
            StoreError::Io(e) => write!(f, "cannot write {TASKS_FILE}: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// The workflow task store. Share it behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct TaskStore {
    path: PathBuf,
    /// The single writer lock: held through a write's file I/O so concurrent
    /// writers lose nothing.
    writer: Mutex<()>,
    /// The published list. Writers swap in a new `Arc` after the file is
    /// durable; readers (connection threads building snapshots) only ever
    /// wait for that pointer swap, never for the disk. Each task sits behind
    /// its own `Arc`, so a write copies the list of pointers and only the
    /// tasks it changes (`Arc::make_mut`), not the whole board.
    tasks: RwLock<Arc<Vec<Arc<Task>>>>,
}

impl TaskStore {
    /// Loads `<data_dir>/tasks.json`, creating the directory if needed. A
    /// missing file is an empty store; an unreadable or invalid one is an error
    /// naming the file, because starting empty would overwrite the user's tasks
    /// on the next write. Leftover temp files of this file are deleted first
    /// (they are interrupted writes; the target still holds the last good list).
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(data_dir)?;
        remove_own_temps(data_dir);
        let path = data_dir.join(TASKS_FILE);
        let tasks = match fs::read(&path) {
            Ok(bytes) => parse_file(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        };
        let tasks: Vec<Arc<Task>> = tasks.into_iter().map(Arc::new).collect();
        Ok(TaskStore {
            path,
            writer: Mutex::new(()),
            tasks: RwLock::new(Arc::new(tasks)),
        })
    }

    /// Path of `tasks.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `update`: field-level merge by id (§3.4). All tasks are validated before
    /// anything changes, so one bad task rejects the whole message. An existing
    /// task gets only the given fields overwritten; a missing id is created with
    /// `status:"open"` unless given. A new task's group is `task.groupKey` >
    /// `message_group` > `sender_group`; an existing task moves only when the
    /// task itself names a `groupKey` (a message-level key is a default for new
    /// tasks, not a request to pull other groups' tasks over). `tasks:[]` is a
    /// list request and changes nothing.
    pub fn update(
        &self,
        sender_group: &str,
        message_group: Option<&str>,
        tasks: &[Value],
    ) -> Result<Outcome, StoreError> {
        for (i, task) in tasks.iter().enumerate() {
            validate_task(i, task).map_err(StoreError::Invalid)?;
        }
        let default_group = match message_group.map(str::trim).filter(|g| !g.is_empty()) {
            Some(g) => normalize_group(g),
            None => normalize_group(sender_group),
        };
        let mut outcome = Outcome::default();
        self.write(|list| {
            for (i, value) in tasks.iter().enumerate() {
                let mut incoming =
                    Task::from_value(i, value.clone()).map_err(StoreError::Invalid)?;
                let own_group = incoming.group_key().map(normalize_group);
                if let Some(g) = &own_group {
                    incoming.set("groupKey", Value::String(g.clone()));
                }
                match list.iter_mut().find(|t| t.id() == incoming.id()) {
                    Some(existing) => {
                        let existing = Arc::make_mut(existing);
                        let old_group = group_of(existing, &default_group);
                        let mut changed = false;
                        for (key, val) in incoming.fields() {
                            changed |= existing.set(key, val.clone());
                        }
                        // Tasks stored without a group (imports) get one now.
                        if existing.group_key().is_none() {
                            changed |= existing.set("groupKey", Value::String(old_group.clone()));
                        }
                        if changed {
                            outcome.changed_groups.insert(old_group);
                            outcome
                                .changed_groups
                                .insert(group_of(existing, &default_group));
                        }
                    }
                    None => {
                        let group = own_group.unwrap_or_else(|| default_group.clone());
                        incoming.set("groupKey", Value::String(group.clone()));
                        let fields = incoming.fields_mut();
                        fields
                            .entry("status")
                            .or_insert_with(|| Value::String("open".into()));
                        list.push(Arc::new(incoming));
                        outcome.changed_groups.insert(group);
                    }
                }
            }
            Ok(!outcome.changed_groups.is_empty())
        })?;
        Ok(outcome)
    }

    /// `complete`: `status` → `done`. Unknown ids go to `missing`; when nothing
    /// changed (all already done or missing) the outcome is `idempotent`.
    pub fn complete(&self, ids: &[String]) -> Result<Outcome, StoreError> {
        let mut outcome = Outcome::default();
        self.write(|list| {
            for id in ids {
                match list.iter_mut().find(|t| t.id() == id) {
                    Some(task) => {
                        if set_field(task, "status", Value::String("done".into())) {
                            outcome.changed_groups.insert(group_of(task, ""));
                        }
                    }
                    None => outcome.missing.push(id.clone()),
                }
            }
            Ok(!outcome.changed_groups.is_empty())
        })?;
        outcome.idempotent = outcome.changed_groups.is_empty();
        Ok(outcome)
    }

    /// `delete`: removes the tasks; unknown ids go to `missing`.
    pub fn delete(&self, ids: &[String]) -> Result<Outcome, StoreError> {
        let mut outcome = Outcome::default();
        self.write(|list| {
            for id in ids {
                match list.iter().position(|t| t.id() == id) {
                    Some(pos) => {
                        let task = list.remove(pos);
                        outcome.changed_groups.insert(group_of(&task, ""));
                    }
                    None => outcome.missing.push(id.clone()),
                }
            }
            Ok(!outcome.changed_groups.is_empty())
        })?;
        Ok(outcome)
    }

    /// `assign`: only `owner` changes (the caller resolves the default owner
    /// from `workflow.device_alias` or the device-id). Unchanged → `idempotent`;
    /// unknown id → `missing` (and `idempotent`, since nothing changed).
    pub fn assign(&self, id: &str, owner: &str) -> Result<Outcome, StoreError> {
        let mut outcome = Outcome::default();
        self.write(|list| {
            match list.iter_mut().find(|t| t.id() == id) {
                Some(task) => {
                    if set_field(task, "owner", Value::String(owner.to_owned())) {
                        outcome.changed_groups.insert(group_of(task, ""));
                    }
                }
                None => outcome.missing.push(id.to_owned()),
            }
            Ok(!outcome.changed_groups.is_empty())
        })?;
        outcome.idempotent = outcome.changed_groups.is_empty();
        Ok(outcome)
    }

    /// Inserts the tasks whose id is not stored yet (`/workflow/import-from-meeting`);
    /// existing ids are skipped, never merged. Validated like `update` (all or
    /// nothing); a given `groupKey` is normalized, new tasks default to `open`.
    pub fn import(&self, tasks: Vec<Value>) -> Result<Imported, StoreError> {
        let tasks = tasks
            .into_iter()
            .enumerate()
            .map(|(i, v)| Task::from_value(i, v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::Invalid)?;
        let mut imported = Imported::default();
        self.write(|list| {
            for mut task in tasks {
                if list.iter().any(|t| t.id() == task.id()) {
                    continue;
                }
                if let Some(g) = task.group_key().map(normalize_group) {
                    task.set("groupKey", Value::String(g));
                }
                task.fields_mut()
                    .entry("status")
                    .or_insert_with(|| Value::String("open".into()));
                imported.ids.push(task.id().to_owned());
                imported.changed_groups.insert(group_of(&task, ""));
                list.push(Arc::new(task));
            }
            Ok(!imported.ids.is_empty())
        })?;
        Ok(imported)
    }

    /// All tasks of `group` (normalized first) in storage order: the body of a
    /// snapshot. Exact match, so no other group's task can ever leak in.
    pub fn snapshot(&self, group: &str) -> Vec<Value> {
        let group = normalize_group(group);
        self.current()
            .iter()
            .filter(|t| t.group_key() == Some(group.as_str()))
            .map(|t| t.to_value())
            .collect()
    }

    /// Tasks whose group starts with the normalized `group_prefix`, storage
    /// order (HTTP listing). An empty prefix lists everything.
    pub fn list_prefix(&self, group_prefix: &str) -> Vec<Value> {
        let prefix = normalize_group(group_prefix);
        self.current()
            .iter()
            .filter(|t| t.group_key().unwrap_or_default().starts_with(&prefix))
            .map(|t| t.to_value())
            .collect()
    }

    /// One task by id.
    pub fn get(&self, id: &str) -> Option<Task> {
        self.current()
            .iter()
            .find(|t| t.id() == id)
            .map(|t| Task::clone(t))
    }

    /// Every task, storage order.
    pub fn all(&self) -> Vec<Task> {
        self.current().iter().map(|t| Task::clone(t)).collect()
    }

    /// The published list (a pointer clone under a read lock).
    fn current(&self) -> Arc<Vec<Arc<Task>>> {
        Arc::clone(&self.tasks.read())
    }

    /// Runs `apply` on a copy of the list under the writer lock; when it
    /// reports a change, persists the copy and installs it. The lock stays held
    /// through the file write (see the module docs).
    fn write<F>(&self, apply: F) -> Result<(), StoreError>
    where
        F: FnOnce(&mut Vec<Arc<Task>>) -> Result<bool, StoreError>,
    {
        let _writer = self.writer.lock();
        let mut next = self.current().as_ref().clone();
        if apply(&mut next)? {
            write_atomic(&self.path, &render(&next))?;
            *self.tasks.write() = Arc::new(next);
        }
        Ok(())
    }
}

/// Sets one field of a published task, copying the task only when the value
/// really changes. Returns whether it changed.
fn set_field(task: &mut Arc<Task>, key: &str, value: Value) -> bool {
    if task.fields().get(key) == Some(&value) {
        return false;
    }
    Arc::make_mut(task).set(key, value)
}

/// A task's group; `fallback` only for tasks stored without one.
fn group_of(task: &Task, fallback: &str) -> String {
    task.group_key().unwrap_or(fallback).to_owned()
}

/// `{"tasks":[…]}`, pretty-printed: the file is small and people read it.
fn render(tasks: &[Arc<Task>]) -> Vec<u8> {
    /// Borrows the tasks: the document is written without copying the board.
    #[derive(serde::Serialize)]
    struct Document<'a> {
        tasks: Vec<&'a Map<String, Value>>,
    }
    let doc = Document {
        tasks: tasks.iter().map(|t| t.fields()).collect(),
    };
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("JSON maps always serialize");
    bytes.push(b'\n');
    bytes
}

/// Parses the file; every stored task must still pass §3.4 validation.
fn parse_file(bytes: &[u8]) -> Result<Vec<Task>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(Value::Array(items)) = doc.get("tasks") else {
        return Err("expected {\"tasks\":[...]}".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| Task::from_value(i, v.clone()))
        .collect()
}

/// Deletes `tasks.json.tmp-*` in `dir`: an interrupted write's leftovers. Only
/// this file's temps, so opening the store never races other stores' writes.
fn remove_own_temps(dir: &Path) {
    let prefix = format!("{TASKS_FILE}{TEMP_MARKER}");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix)
            && let Err(e) = fs::remove_file(entry.path())
        {
            ::log::warn!("workflow: cannot remove {}: {e}", entry.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_store() -> (PathBuf, TaskStore) {
        let dir = std::env::temp_dir().join(format!("huddle-wf-unit-{}", uuid::Uuid::new_v4()));
        let store = TaskStore::open(&dir).unwrap();
        (dir, store)
    }

    fn ids(tasks: &[Value]) -> Vec<&str> {
        tasks.iter().map(|t| t["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn a_write_copies_only_the_tasks_it_changes() {
        let (dir, store) = temp_store();
        store
            .update("g", None, &[json!({"id":"A"}), json!({"id":"B"})])
            .unwrap();
        let before = store.current();
        store.complete(&["B".to_string()]).unwrap();
        let after = store.current();
        assert!(
            Arc::ptr_eq(&before[0], &after[0]),
            "untouched task A was copied"
        );
        assert!(!Arc::ptr_eq(&before[1], &after[1]));
        assert_eq!(
            before[1].status(),
            Some("open"),
            "a reader's list never changes"
        );
        assert_eq!(after[1].status(), Some("done"));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn invalid_task_rejects_the_whole_message() {
        let (dir, store) = temp_store();
        let err = store
            .update(
                "94:a9:90",
                None,
                &[json!({"id":"A"}), json!({"id":"B","priority":9})],
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "tasks[1].priority must be an integer 0-3");
        assert!(matches!(err, StoreError::Invalid(_)));
        assert!(store.all().is_empty());
        assert!(!store.path().exists(), "nothing written");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn merge_overwrites_only_given_fields() {
        let (dir, store) = temp_store();
        store
            .update(
                "94:a9:90",
                None,
                &[json!({"id":"T-1","title":"a","priority":2,"x-custom":{"k":1}})],
            )
            .unwrap();
        let out = store
            .update(
                "94:a9:90",
                None,
                &[json!({"id":"T-1","priority":0,"y":true})],
            )
            .unwrap();
        assert_eq!(out.changed_groups, BTreeSet::from(["94:a9:90".to_owned()]));
        let t = store.get("T-1").unwrap();
        assert_eq!(
            t.to_value(),
            json!({"id":"T-1","title":"a","priority":0,"x-custom":{"k":1},
                "groupKey":"94:a9:90","status":"open","y":true})
        );
        // Same values again: no change, no group reported.
        let out = store
            .update("94:a9:90", None, &[json!({"id":"T-1","priority":0})])
            .unwrap();
        assert!(out.changed_groups.is_empty());
        // tasks:[] is a list request.
        assert_eq!(
            store.update("94:a9:90", None, &[]).unwrap(),
            Outcome::default()
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn group_precedence_and_normalization() {
        let (dir, store) = temp_store();
        store
            .update(
                "94:A9:90:07:9D:88",
                Some("AA:BB:CC:DD"),
                &[
                    json!({"id":"own","groupKey":" \"11:22:33:44\" "}),
                    json!({"id":"msg"}),
                ],
            )
            .unwrap();
        let out = store
            .update("94:A9:90:07:9D:88", None, &[json!({"id":"snd"})])
            .unwrap();
        assert_eq!(out.changed_groups, BTreeSet::from(["94:a9:90".to_owned()]));
        assert_eq!(store.get("own").unwrap().group_key(), Some("11:22:33"));
        assert_eq!(store.get("msg").unwrap().group_key(), Some("aa:bb:cc"));
        assert_eq!(store.get("snd").unwrap().group_key(), Some("94:a9:90"));
        assert_eq!(ids(&store.snapshot("11:22:33")), ["own"]);
        assert_eq!(ids(&store.snapshot("AA:BB:CC:DD:EE:FF")), ["msg"]);
        // A message-level key does not move an existing task; its own key does.
        store
            .update("x", Some("99:99:99"), &[json!({"id":"snd","title":"t"})])
            .unwrap();
        assert_eq!(store.get("snd").unwrap().group_key(), Some("94:a9:90"));
        let out = store
            .update("x", None, &[json!({"id":"snd","groupKey":"AA:BB:CC"})])
            .unwrap();
        assert_eq!(
            out.changed_groups,
            BTreeSet::from(["94:a9:90".to_owned(), "aa:bb:cc".to_owned()])
        );
        assert_eq!(ids(&store.snapshot("aa:bb:cc")), ["msg", "snd"]);
        assert!(store.snapshot("94:a9:90").is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn complete_delete_assign_report_missing_and_idempotent() {
        let (dir, store) = temp_store();
        store
            .update("94:a9:90", None, &[json!({"id":"A"}), json!({"id":"B"})])
            .unwrap();
        let ids_ = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        let out = store.complete(&ids_(&["A", "Z"])).unwrap();
        assert_eq!(out.missing, ["Z"]);
        assert!(!out.idempotent);
        assert_eq!(out.changed_groups, BTreeSet::from(["94:a9:90".to_owned()]));
        let out = store.complete(&ids_(&["A"])).unwrap();
        assert!(out.idempotent && out.changed_groups.is_empty() && out.missing.is_empty());
        assert_eq!(store.get("A").unwrap().status(), Some("done"));

        let out = store.assign("B", "badge-07").unwrap();
        assert!(!out.idempotent);
        let out = store.assign("B", "badge-07").unwrap();
        assert!(out.idempotent);
        let out = store.assign("Q", "badge-07").unwrap();
        assert_eq!(out.missing, ["Q"]);
        assert_eq!(store.get("B").unwrap().owner(), Some("badge-07"));

        let out = store.delete(&ids_(&["B", "B", "Y"])).unwrap();
        assert_eq!(out.missing, ["B", "Y"]);
        assert_eq!(out.changed_groups, BTreeSet::from(["94:a9:90".to_owned()]));
        assert_eq!(ids(&store.snapshot("94:a9:90")), ["A"]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn import_skips_existing_ids() {
        let (dir, store) = temp_store();
        store
            .update("94:a9:90", None, &[json!({"id":"A","title":"keep"})])
            .unwrap();
        let imported = store
            .import(vec![
                json!({"id":"A","title":"other"}),
                json!({"id":"M-1","title":"from meeting","groupKey":"94:A9:90:00"}),
            ])
            .unwrap();
        assert_eq!(imported.ids, ["M-1"]);
        assert_eq!(
            imported.changed_groups,
            BTreeSet::from(["94:a9:90".to_owned()])
        );
        assert_eq!(store.get("A").unwrap().title(), Some("keep"));
        assert_eq!(store.get("M-1").unwrap().status(), Some("open"));
        assert!(
            store
                .import(vec![json!({"id":"A"})])
                .unwrap()
                .ids
                .is_empty()
        );
        assert!(matches!(
            store.import(vec![json!({"title":"no id"})]),
            Err(StoreError::Invalid(_))
        ));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn list_prefix_matches_group_prefixes() {
        let (dir, store) = temp_store();
        store
            .update("94:a9:90", None, &[json!({"id":"A"})])
            .unwrap();
        store
            .update("94:a9:91", None, &[json!({"id":"B"})])
            .unwrap();
        store
            .update("aa:bb:cc", None, &[json!({"id":"C"})])
            .unwrap();
        assert_eq!(ids(&store.list_prefix("94:A9")), ["A", "B"]);
        assert_eq!(ids(&store.list_prefix("")), ["A", "B", "C"]);
        fs::remove_dir_all(dir).unwrap();
    }
}
