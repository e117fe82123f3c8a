//! The meeting data every part agrees on (PROTOCOL.md §3.3, §4.2): segments,
//! the seven-field summary, the finalized meeting record and its index entry.
//! Field names are the wire/storage names (camelCase).

use serde::{Deserialize, Serialize};

/// One transcript line: a device snippet item or an ASR final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// Acceptance time, ms since the epoch.
    pub ts: u64,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// The summary's content: always all seven fields, lists never null.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    pub title: String,
    /// `HH:MM:SS`.
    pub duration: String,
    pub bullets: Vec<String>,
    pub decisions: Vec<String>,
    pub actions: Vec<String>,
    pub risks: Vec<String>,
    pub next_steps: Vec<String>,
}

/// `metrics` of a finalized meeting (main file, webhook, metrics log).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeetingMetrics {
    pub segments_count: u64,
    pub checkpoint_count: u64,
    pub llm_elapsed_ms: u64,
    pub empty_bullets: bool,
    pub bullets_length: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

/// A finalized meeting, as `meetings/<sessionId>.json` holds it (with all
/// segments here; the store writes shards and a preview when there are more than 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingRecord {
    pub session_id: String,
    pub device_id: String,
    pub started_at: u64,
    pub ended_at: u64,
    pub duration_ms: u64,
    pub summary: Summary,
    pub segments: Vec<Segment>,
    pub bullets_length: u64,
    pub source_segments: u64,
    pub metrics: MeetingMetrics,
    /// Finalized by crash recovery rather than by its device.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
}

/// One entry of `meetings/index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    pub session_id: String,
    pub device_id: String,
    pub title: String,
    pub started_at: u64,
    pub ended_at: u64,
    pub duration_ms: u64,
    pub bullets_length: u64,
    pub segments_count: u64,
    pub shard_count: u64,
}

/// One line of `meetings/active/<sessionId>.jsonl` (PROTOCOL.md §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum JournalRecord {
    #[serde(rename_all = "camelCase")]
    Start {
        session_id: String,
        device_id: String,
        started_at: u64,
    },
    Segment(Segment),
    Checkpoint {
        ts: u64,
        segments: u64,
    },
    Finalize {
        ts: u64,
    },
}

/// `HH:MM:SS` of a duration in ms.
pub fn hhmmss(duration_ms: u64) -> String {
    let s = duration_ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Session ids reachable from outside must match `[A-Za-z0-9_-]{1,64}`, so no
/// request can name a path outside the data directory.
pub fn valid_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_lines_match_the_contract() {
        let start = JournalRecord::Start {
            session_id: "s".into(),
            device_id: "d".into(),
            started_at: 1,
        };
        assert_eq!(
            serde_json::to_string(&start).unwrap(),
            r#"{"kind":"start","sessionId":"s","deviceId":"d","startedAt":1}"#
        );
        let segment = JournalRecord::Segment(Segment {
            ts: 2,
            text: "x".into(),
            speaker_id: Some("spk-1".into()),
            tag: None,
        });
        assert_eq!(
            serde_json::to_string(&segment).unwrap(),
            r#"{"kind":"segment","ts":2,"text":"x","speakerId":"spk-1"}"#
        );
        assert_eq!(
            serde_json::to_string(&JournalRecord::Checkpoint {
                ts: 3,
                segments: 40
            })
            .unwrap(),
            r#"{"kind":"checkpoint","ts":3,"segments":40}"#
        );
        let back: JournalRecord = serde_json::from_str(r#"{"kind":"finalize","ts":9}"#).unwrap();
        assert_eq!(back, JournalRecord::Finalize { ts: 9 });
    }

    #[test]
    fn summary_serializes_all_seven_fields() {
        let v = serde_json::to_value(Summary::default()).unwrap();
        for field in [
            "title",
            "duration",
            "bullets",
            "decisions",
            "actions",
            "risks",
            "nextSteps",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
    }

    #[test]
    fn durations_and_ids() {
        assert_eq!(hhmmss(2_530_000), "00:42:10");
        assert_eq!(hhmmss(5_000), "00:00:05");
        assert!(valid_session_id("3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c"));
        assert!(!valid_session_id("../etc/passwd"));
        assert!(!valid_session_id(""));
        assert!(!valid_session_id(&"a".repeat(65)));
    }
}
