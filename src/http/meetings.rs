//! The meeting archive over HTTP (PROTOCOL.md §5.2): `recent`, detail and
//! transcript pages, read straight from [`MeetingStore`] on the request's
//! connection thread. Auth and the rate limit are applied by the router
//! before these handlers run; the paths reach here without the `/supie`
//! alias prefix and without `/meetings`.

use serde_json::{Value, json};

use super::ApiContext;
use super::request::RequestHead;
use super::response::Response;
use crate::store::model::valid_session_id;

/// `recent`: default and bounds of `limit`.
const RECENT_DEFAULT: u64 = 10;
const RECENT_MAX: u64 = 100;
/// Detail: default and bounds of `preview`.
const PREVIEW_DEFAULT: u64 = 5;
const PREVIEW_MAX: u64 = 20;
/// Transcript: default and bounds of `limit`.
const TRANSCRIPT_DEFAULT: u64 = 100;
const TRANSCRIPT_MAX: u64 = 500;

/// Answers `GET /meetings<rest>`; `rest` is what follows `/meetings` in the
/// path (`/recent`, `/<id>`, `/<id>/transcript`, with an optional trailing
/// slash). `full_path` is only for messages.
pub fn answer(head: &RequestHead, rest: &str, full_path: &str, ctx: &ApiContext) -> Response {
    if head.method != "GET" {
        return Response::error(
            405,
            "METHOD_NOT_ALLOWED",
            &format!("{} not allowed on {full_path}", head.method),
        );
    }
    let trimmed = rest.strip_prefix('/').unwrap_or(rest);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let parts: Vec<&str> = trimmed.split('/').collect();
    let result = match parts.as_slice() {
        ["recent"] => recent(head, ctx),
        [id] if !id.is_empty() => detail(head, id, ctx),
        [id, "transcript"] => transcript(head, id, ctx),
        _ => Err(Response::error(
            404,
            "NOT_FOUND",
            &format!("no route for GET {full_path}"),
        )),
    };
    result.unwrap_or_else(|refusal| refusal)
}

type Answer = Result<Response, Response>;

/// A non-negative integer parameter; values beyond `u64` saturate (they are
/// clamped anyway), anything that is not all digits is a 400 naming it.
fn uint_param(head: &RequestHead, name: &str) -> Result<Option<u64>, Response> {
    let Some(value) = head.non_empty_param(name) else {
        return Ok(None);
    };
    parse_uint(&value).map(Some).ok_or_else(|| {
        Response::bad_request(&format!(
            "{name} must be a non-negative integer, got {value:?}"
        ))
    })
}

fn parse_uint(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse::<u64>().unwrap_or(u64::MAX))
}

/// A time bound: ms since the epoch or an RFC 3339 time.
fn ts_param(head: &RequestHead, name: &str) -> Result<Option<u64>, Response> {
    let Some(value) = head.non_empty_param(name) else {
        return Ok(None);
    };
    parse_uint(&value)
        .or_else(|| parse_rfc3339_ms(&value))
        .map(Some)
        .ok_or_else(|| {
            Response::bad_request(&format!(
                "{name} must be milliseconds since the epoch or an RFC 3339 time (e.g. 2025-08-18T02:42:00Z), got {value:?}"
            ))
        })
}

fn clamped(value: Option<u64>, default: u64, max: u64) -> u64 {
    value.unwrap_or(default).clamp(1, max)
}

/// `GET /meetings/recent?limit=10&deviceId=&fromTs=&toTs=`
fn recent(head: &RequestHead, ctx: &ApiContext) -> Answer {
    let limit = clamped(uint_param(head, "limit")?, RECENT_DEFAULT, RECENT_MAX);
    let device = head.non_empty_param("deviceId");
    let from_ts = ts_param(head, "fromTs")?;
    let to_ts = ts_param(head, "toTs")?;
    let store = ctx.meeting_store("meeting")?;
    let items = store
        .recent(limit as usize, device.as_deref(), from_ts, to_ts)
        .map_err(|e| {
            Response::internal("meeting", &format!("cannot read the meeting index: {e}"))
        })?;
    Ok(Response::ok_data(
        serde_json::to_value(items).unwrap_or_else(|_| json!([])),
    ))
}

/// `GET /meetings/{sessionId}?preview=5`
fn detail(head: &RequestHead, id: &str, ctx: &ApiContext) -> Answer {
    let preview = clamped(uint_param(head, "preview")?, PREVIEW_DEFAULT, PREVIEW_MAX);
    if !valid_session_id(id) {
        return Err(Response::meeting_not_found(id));
    }
    let meeting = ctx
        .meeting_store("meeting")?
        .load(id)
        .map_err(|e| Response::internal("meeting", &format!("cannot read meeting {id}: {e}")))?
        .ok_or_else(|| Response::meeting_not_found(id))?;
    let mut data = json!({
        "sessionId": meeting.session_id,
        "deviceId": meeting.device_id,
        "startedAt": meeting.started_at,
        "endedAt": meeting.ended_at,
        "durationMs": meeting.duration_ms,
        "summary": serde_json::to_value(&meeting.summary).unwrap_or(Value::Null),
        "segmentsCount": meeting.segments_count,
        "metrics": serde_json::to_value(&meeting.metrics).unwrap_or(Value::Null),
        "transcriptPreview": serde_json::to_value(meeting.preview(preview as usize)).unwrap_or_else(|_| json!([])),
        "hasShards": meeting.has_shards,
    });
    if meeting.recovered {
        data["recovered"] = json!(true);
    }
    Ok(Response::ok_data(data))
}

/// `GET /meetings/{sessionId}/transcript?offset=0&limit=100`
fn transcript(head: &RequestHead, id: &str, ctx: &ApiContext) -> Answer {
    let offset = uint_param(head, "offset")?.unwrap_or(0);
    let limit = clamped(
        uint_param(head, "limit")?,
        TRANSCRIPT_DEFAULT,
        TRANSCRIPT_MAX,
    );
    if !valid_session_id(id) {
        return Err(Response::meeting_not_found(id));
    }
    let (items, total) = ctx
        .meeting_store("meeting")?
        .transcript(id, offset, limit)
        .map_err(|e| {
            Response::internal(
                "meeting",
                &format!("cannot read the transcript of meeting {id}: {e}"),
            )
        })?
        .ok_or_else(|| Response::meeting_not_found(id))?;
    Ok(Response::ok_data(json!({
        "items": serde_json::to_value(items).unwrap_or_else(|_| json!([])),
        "total": total,
        "offset": offset,
        "limit": limit,
    })))
}

/// Parses `YYYY-MM-DDTHH:MM:SS(.fff…)?(Z|±HH:MM)` to ms since the epoch.
/// `t`/`z` and a space separator are accepted as RFC 3339 allows, and so is a
/// space in place of `+` in the offset (what an unescaped `+` in a query
/// string decodes to). Times before 1970 are `None`.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // First three fraction digits, right-padded: ".5" is 500 ms.
        millis = b[start..i]
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(3)
            .fold(0, |acc, d| acc * 10 + i64::from(d - b'0'));
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-' | b' ') if i + 6 == b.len() && sep(i + 3, b":") => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let minutes = oh * 60 + om;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days-from-civil, the inverse of the store's civil-from-days).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::meetings::rfc3339_utc_seconds;

    #[test]
    fn rfc3339_parsing() {
        let t = 1_755_484_920_000;
        assert_eq!(parse_rfc3339_ms("2025-08-18T02:42:00Z"), Some(t));
        assert_eq!(parse_rfc3339_ms("2025-08-18t02:42:00z"), Some(t));
        assert_eq!(parse_rfc3339_ms("2025-08-18 02:42:00Z"), Some(t));
        assert_eq!(parse_rfc3339_ms("2025-08-18T10:42:00+08:00"), Some(t));
        assert_eq!(parse_rfc3339_ms("2025-08-18T10:42:00 08:00"), Some(t));
        assert_eq!(parse_rfc3339_ms("2025-08-17T21:42:00-05:00"), Some(t));
        assert_eq!(parse_rfc3339_ms("2025-08-18T02:42:00.5Z"), Some(t + 500));
        assert_eq!(
            parse_rfc3339_ms("2025-08-18T02:42:00.123456Z"),
            Some(t + 123)
        );
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00Z"),
            Some(951_782_400_000)
        );
        for bad in [
            "",
            "2025-08-18",
            "2025-08-18T02:42:00",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-08-18T24:00:00Z",
            "2025-08-18T02:42:00.Z",
            "2025-08-18T02:42:00+0800",
            "2025-08-18T02:42:00Zjunk",
            "1969-12-31T23:59:59Z",
            "abc",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        // Round trip with the store's formatter over a spread of dates.
        for ms in [0u64, 951_782_400_000, 1_735_689_599_000, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339_ms(&rfc3339_utc_seconds(ms)), Some(ms));
        }
    }

    #[test]
    fn uint_parsing() {
        assert_eq!(parse_uint("0"), Some(0));
        assert_eq!(parse_uint("230"), Some(230));
        assert_eq!(parse_uint("99999999999999999999999"), Some(u64::MAX));
        assert_eq!(parse_uint("-1"), None);
        assert_eq!(parse_uint("abc"), None);
        assert_eq!(parse_uint("1.5"), None);
        assert_eq!(parse_uint("+3"), None);
    }
}
