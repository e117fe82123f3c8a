//! Meeting storage under `storage.data_dir` (PROTOCOL.md §4).
//!
//! - [`model`]: the segment, summary, record, index entry and journal line types.
//! - [`atomic`]: atomic file replacement and the startup cleanup of its temp files.
//! - [`meetings`]: finalized meetings: main files, shards, index, retention,
//!   metrics log, and the reads behind the HTTP API.
//! - [`journal`]: the `journal-writer` thread for active meetings, crash
//!   recovery and the resume rule.

pub mod atomic;
pub mod journal;
pub mod meetings;
pub mod model;

pub use atomic::{remove_leftover_temps, write_atomic};
pub use journal::{
    JournalError, JournalHandle, JournalWriter, RecoveredJournal, read_journal, resume_candidate,
    scan_journals,
};
pub use meetings::{MeetingStore, StoredMeeting, metrics_line};
