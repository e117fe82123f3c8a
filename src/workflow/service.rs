//! Workflow events off the connection thread (PROTOCOL.md §3.4): the task
//! store writes `tasks.json` under its lock, so every event runs on this
//! service's thread; the ack goes back to the sender, and every online device
//! whose group changed gets its own group's snapshot — nobody sees another
//! group's tasks.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use serde_json::{Value, json};

use super::groups::group_of_device;
use super::store::{Outcome, StoreError, TaskStore};
use crate::net::handle::{ConnEvent, ConnHandle};
use crate::net::registry::Registry;
use crate::protocol::{ErrorCode, Rejection};

const QUEUE: usize = 256;

/// One workflow event from a device.
pub struct WorkflowJob {
    pub origin: ConnHandle,
    pub event: String,
    pub body: Value,
    /// The name an `assign` without `owner` gives (`workflow.device_alias`, else the device-id).
    pub default_owner: String,
    /// A voice command: the device already got `workflow command`, so no ack.
    pub voice: bool,
}

pub struct WorkflowService {
    store: Option<Arc<TaskStore>>,
    jobs: Sender<WorkflowJob>,
}

impl WorkflowService {
    /// Opens `tasks.json` under `data_dir` and starts the worker; an unusable
    /// file is a warning and workflow events then answer with an error.
    pub fn start(data_dir: &std::path::Path, registry: Arc<Registry>) -> WorkflowService {
        let store = match TaskStore::open(data_dir) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                ::log::warn!("workflow tasks unavailable: {e}");
                None
            }
        };
        let (jobs, queue) = crossbeam_channel::bounded::<WorkflowJob>(QUEUE);
        let worker_store = store.clone();
        let spawned = std::thread::Builder::new()
            .name("workflow".into())
            .spawn(move || {
                for job in queue.iter() {
                    run(worker_store.as_deref(), &registry, job);
                }
            });
        if let Err(e) = spawned {
            ::log::error!("cannot start the workflow worker: {e}");
        }
        WorkflowService { store, jobs }
    }

    pub fn store(&self) -> Option<&Arc<TaskStore>> {
        self.store.as_ref()
    }

    pub fn submit(&self, job: WorkflowJob) {
        if let Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) =
            self.jobs.try_send(job)
        {
            let reply = json!({"type": "workflow", "status": "error", "code": "RATE_LIMITED",
                "message": "workflow queue full; retry", "event": job.event});
            job.origin
                .send(ConnEvent::SendText(Arc::from(reply.to_string())));
        }
    }
}

/// `{"type":"workflow","event":"update","groupKey":…,"tasks":[…]}`.
pub fn snapshot_message(store: &TaskStore, group: &str) -> String {
    json!({"type": "workflow", "event": "update", "groupKey": group, "tasks": store.snapshot(group)}).to_string()
}

/// `body[key]` when it is absent or a string; any other type is a schema error naming it.
fn optional_string<'b>(body: &'b Value, key: &str) -> Result<Option<&'b str>, StoreError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(StoreError::Invalid(format!("{key} must be a string"))),
    }
}

fn ids(body: &Value) -> Result<Vec<String>, String> {
    let Some(list) = body.get("ids").and_then(Value::as_array) else {
        return Err("ids must be an array of strings".to_string());
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("ids[{i}] must be a string"))
        })
        .collect()
}

fn run(store: Option<&TaskStore>, registry: &Registry, job: WorkflowJob) {
    let send = |text: String| job.origin.send(ConnEvent::SendText(Arc::from(text)));
    // The device's mistakes go back as rejections, which its connection
    // replies to and counts toward the abuse limit like any other.
    let reject = |code: ErrorCode, message: &str| {
        job.origin.send(ConnEvent::Rejected(Rejection::new(
            "workflow", code, message,
        )))
    };
    let Some(store) = store else {
        reject(
            ErrorCode::Unsupported,
            "workflow tasks are unavailable on this server",
        );
        return;
    };
    let sender_group = group_of_device(&job.origin.device_id);
    let result: Result<Option<Outcome>, StoreError> = match job.event.as_str() {
        "list" => Ok(None),
        "update" => match (
            job.body.get("tasks").and_then(Value::as_array),
            optional_string(&job.body, "groupKey"),
        ) {
            (None, _) => Err(StoreError::Invalid(
                "tasks must be an array of task objects".into(),
            )),
            (_, Err(e)) => Err(e),
            (Some(tasks), _) if tasks.is_empty() => Ok(None),
            (Some(tasks), Ok(group)) => store.update(&sender_group, group, tasks).map(Some),
        },
        "complete" => ids(&job.body)
            .map_err(StoreError::Invalid)
            .and_then(|ids| store.complete(&ids))
            .map(Some),
        "delete" => ids(&job.body)
            .map_err(StoreError::Invalid)
            .and_then(|ids| store.delete(&ids))
            .map(Some),
        "assign" => match job.body.get("id").and_then(Value::as_str) {
            None => Err(StoreError::Invalid("id must be a string".into())),
            Some(id) => optional_string(&job.body, "owner").and_then(|owner| {
                store
                    .assign(id, owner.unwrap_or(&job.default_owner))
                    .map(Some)
            }),
        },
        other => {
            reject(
                ErrorCode::Unsupported,
                &format!("event {other} is not update|complete|delete|assign|list"),
            );
            return;
        }
    };
    match result {
        Err(StoreError::Invalid(message)) => {
            reject(ErrorCode::SchemaInvalid, &message);
        }
        Err(e) => {
            ::log::error!(
                "workflow {} from {} failed: {e}",
                job.event,
                job.origin.device_id
            );
            // Not the device's fault: an error reply, but no abuse count.
            send(
                json!({"type": "workflow", "status": "error", "code": "INTERNAL",
                    "message": "tasks could not be saved", "event": job.event})
                .to_string(),
            );
        }
        Ok(None) => {
            job.origin
                .send(ConnEvent::WorkflowSnapshot(Arc::from(snapshot_message(
                    store,
                    &sender_group,
                ))));
        }
        Ok(Some(outcome)) => {
            let mut ack = json!({"type": "workflow", "status": "ok", "event": job.event});
            if !outcome.missing.is_empty() {
                ack["missing"] = json!(outcome.missing);
            }
            if outcome.idempotent {
                ack["idempotent"] = Value::Bool(true);
            }
            if !job.voice {
                send(ack.to_string());
            }
            if outcome.idempotent {
                return;
            }
            send_group_snapshots(
                store,
                registry,
                &outcome.changed_groups,
                Some(job.origin.conn_id),
            );
        }
    }
}

/// After a write: every online device whose group is in `changed_groups` gets
/// its own group's snapshot, and so does the connection `sender` (if any)
/// whatever its group. One message is built per group and shared by its
/// devices; nobody ever receives another group's tasks.
pub fn send_group_snapshots(
    store: &TaskStore,
    registry: &Registry,
    changed_groups: &BTreeSet<String>,
    sender: Option<u64>,
) {
    let mut built: HashMap<String, Arc<str>> = HashMap::new();
    for handle in registry.registered() {
        let group = group_of_device(&handle.device_id);
        if !changed_groups.contains(&group) && Some(handle.conn_id) != sender {
            continue;
        }
        let message = built
            .entry(group)
            .or_insert_with_key(|group| Arc::from(snapshot_message(store, group)))
            .clone();
        handle.send(ConnEvent::WorkflowSnapshot(message));
    }
}
