//! Workflow tasks (PROTOCOL.md §3.4, §4.1): the task model and its schema
//! rules, the group rules, and the `tasks.json` store behind one writer lock.
//!
//! - [`task`]: a task as a JSON object (unknown fields survive) plus validation.
//! - [`groups`]: device-id → group, and group-key normalization.
//! - [`store`]: [`TaskStore`], the in-memory task list persisted atomically on
//!   every write, and the [`Outcome`] each operation reports for acks and snapshots.
//!
//! Kept free of sockets and sessions so the rules are tested on a plain directory.

pub mod groups;
pub mod service;
pub mod store;
pub mod task;

pub use groups::{GROUP_LEN, group_of_device, normalize_group};
pub use store::{Imported, Outcome, StoreError, TASKS_FILE, TaskStore};
pub use task::{Task, validate_task};
