//! Archived meetings for the HTTP API tests, which seed the server's own data
//! directory through `MeetingStore` exactly as a finalize would: the base
//! record they vary and the times they use.

#![allow(dead_code)]

use huddle::store::meetings::MeetingStore;
use huddle::store::model::{MeetingRecord, Summary};

use super::Server;

/// Server config with the per-IP API rate limit off, so tests that fire many
/// requests measure only what they mean to.
pub const NO_RATE_LIMIT: &str = "[meeting]\napi_rate_limit = 0\n";

/// 2025-08-18T02:42:00Z.
pub const T0: u64 = 1_755_484_920_000;
pub const MINUTE: u64 = 60_000;

/// A ten-minute meeting of `device` that ended at `ended_at`, titled
/// `title <sid>`, with one bullet (`b1`) and nothing else: no segments, empty
/// lists, default metrics. Tests set the fields they are about.
pub fn meeting_record(sid: &str, device: &str, ended_at: u64) -> MeetingRecord {
    MeetingRecord {
        session_id: sid.into(),
        device_id: device.into(),
        started_at: ended_at - 10 * MINUTE,
        ended_at,
        duration_ms: 10 * MINUTE,
        summary: Summary {
            title: format!("title {sid}"),
            duration: "00:10:00".into(),
            bullets: vec!["b1".into()],
            ..Summary::default()
        },
        segments: vec![],
        bullets_length: 1,
        source_segments: 0,
        metrics: Default::default(),
        recovered: false,
    }
}

/// The meeting store in `server`'s data directory.
pub fn store(server: &Server) -> MeetingStore {
    MeetingStore::open(&server.data_dir()).expect("open meeting store")
}
