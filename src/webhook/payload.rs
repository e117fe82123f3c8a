//! The webhook body (PROTOCOL.md §6): `sessionId`, `deviceId`, `summary`
//! (all seven fields), `metrics`, `durationMs`, in that order, as compact JSON.
//!
//! It is serialized exactly once: the signature is computed over these bytes
//! and the same bytes go out on the first attempt and on the retry, so a
//! receiver can always verify what it got.

use serde::Serialize;

use crate::store::model::{MeetingMetrics, MeetingRecord, Summary};

/// Borrowed view in wire order; serde writes struct fields in declaration order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    session_id: &'a str,
    device_id: &'a str,
    summary: &'a Summary,
    metrics: &'a MeetingMetrics,
    duration_ms: u64,
}

/// The compact JSON bytes of one delivery.
pub fn webhook_body(
    session_id: &str,
    device_id: &str,
    summary: &Summary,
    metrics: &MeetingMetrics,
    duration_ms: u64,
) -> Vec<u8> {
    let body = Body {
        session_id,
        device_id,
        summary,
        metrics,
        duration_ms,
    };
    // Strings, integers, bools and lists of strings only: serializing to a
    // Vec cannot fail, so an empty body would only ever mean a serde bug.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The body of a finalized meeting.
pub fn record_body(record: &MeetingRecord) -> Vec<u8> {
    webhook_body(
        &record.session_id,
        &record.device_id,
        &record.summary,
        &record.metrics,
        record.duration_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_protocol_example_byte_for_byte() {
        let summary = Summary {
            title: "登录改版周会".into(),
            duration: "00:42:10".into(),
            ..Summary::default()
        };
        let metrics = MeetingMetrics {
            segments_count: 58,
            checkpoint_count: 4,
            llm_elapsed_ms: 2870,
            empty_bullets: true,
            bullets_length: 0,
            industry: Some("tech".into()),
            scenario: Some("standup".into()),
        };
        let body = webhook_body(
            "3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c",
            "94:a9:90:07:9d:88",
            &summary,
            &metrics,
            2_530_000,
        );
        let expected = r#"{"sessionId":"3f2b9c1e-7a4d-4e8b-9c21-0d5e6f7a8b9c","deviceId":"94:a9:90:07:9d:88","summary":{"title":"登录改版周会","duration":"00:42:10","bullets":[],"decisions":[],"actions":[],"risks":[],"nextSteps":[]},"metrics":{"segmentsCount":58,"checkpointCount":4,"llmElapsedMs":2870,"emptyBullets":true,"bulletsLength":0,"industry":"tech","scenario":"standup"},"durationMs":2530000}"#;
        assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
    }

    #[test]
    fn record_body_uses_the_record_fields() {
        let record = MeetingRecord {
            session_id: "s1".into(),
            device_id: "d1".into(),
            started_at: 1,
            ended_at: 2,
            duration_ms: 9000,
            summary: Summary::default(),
            segments: Vec::new(),
            bullets_length: 0,
            source_segments: 0,
            metrics: MeetingMetrics::default(),
            recovered: false,
        };
        let v: serde_json::Value = serde_json::from_slice(&record_body(&record)).unwrap();
        assert_eq!(v["sessionId"], "s1");
        assert_eq!(v["deviceId"], "d1");
        assert_eq!(v["durationMs"], 9000);
        assert!(
            v.get("segments").is_none(),
            "segments stay out of the webhook"
        );
    }
}
