//! `TaskStore` on a real directory (PROTOCOL.md §3.4, §4.1): persistence round
//! trips, concurrent writers under the single lock, group isolation, and
//! recovery from what a crashed write leaves behind.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::sync::Arc;
use std::thread;

use common::temp::TempDir;
use huddle::workflow::{StoreError, TASKS_FILE, TaskStore, group_of_device};
use serde_json::{Value, json};

fn ids(tasks: &[Value]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

fn file_json(dir: &TempDir) -> Value {
    serde_json::from_slice(&fs::read(dir.0.join(TASKS_FILE)).unwrap()).unwrap()
}

#[test]
fn missing_file_is_an_empty_store() {
    let dir = TempDir::new();
    let store = TaskStore::open(&dir.0.join("nested")).unwrap();
    assert!(store.all().is_empty());
    assert!(store.snapshot("94:a9:90").is_empty());
}

#[test]
fn round_trip_keeps_order_and_unknown_fields() {
    let dir = TempDir::new();
    let sender = group_of_device("94:A9:90:07:9D:88");
    {
        let store = TaskStore::open(&dir.0).unwrap();
        for id in ["T-3", "T-1", "T-2"] {
            store
                .update(
                    &sender,
                    None,
                    &[json!({"id": id, "title": id, "meta": {"src": "voice"}})],
                )
                .unwrap();
        }
        store.complete(&["T-1".to_owned()]).unwrap();
        store.assign("T-2", "badge-07").unwrap();
    }
    let doc = file_json(&dir);
    assert_eq!(ids(doc["tasks"].as_array().unwrap()), ["T-3", "T-1", "T-2"]);

    let reopened = TaskStore::open(&dir.0).unwrap();
    let snap = reopened.snapshot("94:a9:90");
    assert_eq!(ids(&snap), ["T-3", "T-1", "T-2"]);
    assert_eq!(snap, doc["tasks"].as_array().unwrap().clone());
    assert_eq!(
        snap[1],
        json!({"id":"T-1","title":"T-1","meta":{"src":"voice"},"groupKey":"94:a9:90","status":"done"})
    );
    assert_eq!(snap[2]["owner"], "badge-07");
}

#[test]
fn snapshots_never_contain_another_groups_tasks() {
    let dir = TempDir::new();
    let store = TaskStore::open(&dir.0).unwrap();
    store
        .update("94:a9:90", None, &[json!({"id":"A"})])
        .unwrap();
    store
        .update("aa:bb:cc", None, &[json!({"id":"B"})])
        .unwrap();
    // Cross-group write: sender in 94:a9:90 writes into aa:bb:cc.
    let out = store
        .update("94:a9:90", Some("AA:BB:CC:01"), &[json!({"id":"C"})])
        .unwrap();
    assert_eq!(out.changed_groups, BTreeSet::from(["aa:bb:cc".to_owned()]));
    store
        .update("94:a9:90", None, &[json!({"id":"D","groupKey":"AA:BB:CC"})])
        .unwrap();
    for (group, want) in [
        ("94:a9:90", vec!["A"]),
        ("aa:bb:cc", vec!["B", "C", "D"]),
        ("94:a9", vec![]),
    ] {
        let snap = store.snapshot(group);
        assert_eq!(ids(&snap), want, "group {group}");
        for task in &snap {
            assert_eq!(task["groupKey"], group_of_device(group));
        }
    }
}

#[test]
fn missing_and_idempotent_acks() {
    let dir = TempDir::new();
    let store = TaskStore::open(&dir.0).unwrap();
    store
        .update(
            "94:a9:90",
            None,
            &[json!({"id":"T-1","status":"done","owner":"me"})],
        )
        .unwrap();
    let out = store
        .complete(&["T-1".to_owned(), "T-9".to_owned()])
        .unwrap();
    assert!(out.idempotent);
    assert_eq!(out.missing, ["T-9"]);
    assert!(out.changed_groups.is_empty());
    assert!(store.assign("T-1", "me").unwrap().idempotent);
    let out = store.delete(&["T-9".to_owned()]).unwrap();
    assert_eq!(out.missing, ["T-9"]);
    assert!(out.changed_groups.is_empty());
}

#[test]
fn schema_error_leaves_the_file_untouched() {
    let dir = TempDir::new();
    let store = TaskStore::open(&dir.0).unwrap();
    store
        .update("94:a9:90", None, &[json!({"id":"A"})])
        .unwrap();
    let before = fs::read(dir.0.join(TASKS_FILE)).unwrap();
    let err = store
        .update(
            "94:a9:90",
            None,
            &[
                json!({"id":"A","title":"x"}),
                json!({"id":"B","status":"wip"}),
            ],
        )
        .unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(m) if m.starts_with("tasks[1].status")));
    assert_eq!(fs::read(dir.0.join(TASKS_FILE)).unwrap(), before);
    assert!(store.get("A").unwrap().title().is_none());
}

#[test]
fn concurrent_field_updates_lose_nothing() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 50;
    const TASKS: [&str; 3] = ["T-a", "T-b", "T-c"];
    let dir = TempDir::new();
    let store = Arc::new(TaskStore::open(&dir.0).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for round in 0..ROUNDS {
                    // Each thread owns one field; every round touches every task.
                    let tasks: Vec<Value> = TASKS
                        .iter()
                        .map(|id| json!({"id": id, format!("f{t}"): round}))
                        .collect();
                    store.update("94:a9:90", None, &tasks).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let check = |tasks: &[Value]| {
        assert_eq!(ids(tasks), TASKS);
        for task in tasks {
            for t in 0..THREADS {
                assert_eq!(task[format!("f{t}")], ROUNDS - 1, "{task}");
            }
        }
    };
    check(&store.snapshot("94:a9:90"));
    // The file is valid JSON with the same content, and reopening agrees.
    check(file_json(&dir)["tasks"].as_array().unwrap());
    check(&TaskStore::open(&dir.0).unwrap().snapshot("94:a9:90"));
}

#[test]
fn leftover_temp_file_does_not_break_reopening() {
    let dir = TempDir::new();
    {
        let store = TaskStore::open(&dir.0).unwrap();
        store
            .update("94:a9:90", None, &[json!({"id":"A"})])
            .unwrap();
    }
    // A crash between write and rename leaves a half-written temp behind.
    let temp = dir.0.join(format!("{TASKS_FILE}.tmp-deadbeef"));
    fs::write(&temp, b"{\"tasks\":[{\"id\":\"B\"").unwrap();
    let store = TaskStore::open(&dir.0).unwrap();
    assert_eq!(ids(&store.snapshot("94:a9:90")), ["A"]);
    assert!(!temp.exists(), "leftover removed at open");
    store
        .update("94:a9:90", None, &[json!({"id":"B"})])
        .unwrap();
    assert_eq!(
        ids(file_json(&dir)["tasks"].as_array().unwrap()),
        ["A", "B"]
    );
}

#[test]
fn corrupt_file_is_an_error_naming_it() {
    let dir = TempDir::new();
    fs::write(dir.0.join(TASKS_FILE), b"{\"tasks\":[").unwrap();
    let err = TaskStore::open(&dir.0).unwrap_err();
    assert!(err.to_string().contains(TASKS_FILE), "{err}");
    fs::write(
        dir.0.join(TASKS_FILE),
        b"{\"tasks\":[{\"id\":\"A\",\"priority\":7}]}",
    )
    .unwrap();
    let err = TaskStore::open(&dir.0).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(TASKS_FILE) && msg.contains("tasks[0].priority"),
        "{msg}"
    );
}
