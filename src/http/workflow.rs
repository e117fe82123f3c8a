//! Workflow tasks over HTTP (PROTOCOL.md §5.2, §3.4): `GET /workflow` lists
//! the tasks of a group prefix, `POST /workflow/import-from-meeting` turns a
//! finalized meeting's `actions` and `nextSteps` into tasks and sends the
//! changed groups' online devices their snapshot. Both run on the request's
//! connection thread: reads take the task store's published list, the import
//! goes through [`TaskStore::import`] under the store's single writer lock.
//! Auth and the rate limit are applied by the router before these handlers
//! run; the paths reach here without the `/supie` alias prefix and without
//! `/workflow`.

use serde_json::{Map, Value, json};

use super::ApiContext;
use super::request::RequestHead;
use super::response::Response;
use crate::store::meetings::MeetingStore;
use crate::store::model::{MeetingRecord, valid_session_id};
use crate::workflow::groups::normalize_group;
use crate::workflow::service::send_group_snapshots;

/// Priority of a task imported from a meeting (0 is most urgent).
const IMPORT_PRIORITY: u64 = 2;

/// Answers `<method> /workflow<rest>`; `rest` is what follows `/workflow` in
/// the path (empty or `/import-from-meeting`, with an optional trailing
/// slash). `full_path` is only for messages.
pub fn answer(
    head: &RequestHead,
    body: &[u8],
    rest: &str,
    full_path: &str,
    ctx: &ApiContext,
) -> Response {
    let trimmed = rest.strip_prefix('/').unwrap_or(rest);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let (allowed, handler): (&str, Handler) = match trimmed {
        "" => ("GET", list),
        "import-from-meeting" => ("POST", import),
        _ => {
            return Response::error(
                404,
                "NOT_FOUND",
                &format!("no route for {} {full_path}", head.method),
            );
        }
    };
    if head.method != allowed {
        let mut refusal = Response::error(
            405,
            "METHOD_NOT_ALLOWED",
            &format!("{} not allowed on {full_path}; use {allowed}", head.method),
        );
        refusal
            .extra_headers
            .push(("Allow", format!("{allowed}, OPTIONS")));
        return refusal;
    }
    handler(head, body, ctx).unwrap_or_else(|refusal| refusal)
}

type Answer = Result<Response, Response>;

/// A route's handler: the request head, its body and the server snapshot.
type Handler = fn(&RequestHead, &[u8], &ApiContext) -> Answer;

/// The group key of a request, normalized and cut to 8 characters; a key
/// that is absent or normalizes to nothing is a 400 naming `groupKey`.
fn group_key(raw: Option<String>) -> Result<String, Response> {
    let Some(raw) = raw else {
        return Err(Response::bad_request(
            "groupKey is required (e.g. groupKey=94:a9:90)",
        ));
    };
    let group = normalize_group(&raw);
    if group.is_empty() {
        return Err(Response::bad_request(&format!(
            "groupKey {raw:?} is empty after normalization"
        )));
    }
    Ok(group)
}

/// `GET /workflow?groupKey=94:a9:90`: tasks whose group starts with the key,
/// in storage order.
fn list(head: &RequestHead, _body: &[u8], ctx: &ApiContext) -> Answer {
    let group = group_key(head.non_empty_param("groupKey"))?;
    let items = ctx.task_store("workflow")?.list_prefix(&group);
    Ok(Response::ok_data(
        json!({"items": items, "groupKey": group}),
    ))
}

/// The import request's fields: the JSON body's values win over the query's.
/// An empty body means "query only"; a body that is not a JSON object, or a
/// field that is not a string, is a 400 naming the problem.
fn import_params(
    head: &RequestHead,
    body: &[u8],
) -> Result<(Option<String>, Option<String>), Response> {
    let fields = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => fields,
            Ok(other) => {
                return Err(Response::bad_request(&format!(
                    "body must be a JSON object like {{\"groupKey\":\"94:a9:90\",\"sessionId\":\"…\"}}, got {}",
                    json_kind(&other)
                )));
            }
            Err(e) => {
                return Err(Response::bad_request(&format!(
                    "body is not valid JSON: {e}"
                )));
            }
        }
    };
    let field = |name: &str| -> Result<Option<String>, Response> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(head.non_empty_param(name)),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())
                .filter(|s| !s.is_empty())
                .or_else(|| head.non_empty_param(name))),
            Some(other) => Err(Response::bad_request(&format!(
                "{name} must be a string, got {}",
                json_kind(other)
            ))),
        }
    };
    Ok((field("groupKey")?, field("sessionId")?))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `POST /workflow/import-from-meeting` with `{"groupKey":…,"sessionId":…}`.
fn import(head: &RequestHead, body: &[u8], ctx: &ApiContext) -> Answer {
    let (group, session_id) = import_params(head, body)?;
    let group = group_key(group)?;
    let task_store = ctx.task_store("workflow")?;
    let meeting_store = ctx.meeting_store("workflow")?;
    let record = match session_id {
        Some(sid) => load_meeting(meeting_store, &sid)?,
        None => {
            let newest = meeting_store.recent(1, None, None, None).map_err(|e| {
                Response::internal("workflow", &format!("cannot read the meeting index: {e}"))
            })?;
            match newest.into_iter().next() {
                Some(entry) => load_meeting(meeting_store, &entry.session_id)?,
                None => return Ok(Response::ok_data(json!({"imported": 0, "ids": []}))),
            }
        }
    };
    let sid = record.session_id.clone();
    let imported = task_store
        .import(meeting_tasks(&record, &group))
        .map_err(|e| {
            Response::internal("workflow", &format!("cannot import meeting {sid}: {e}"))
        })?;
    if !imported.changed_groups.is_empty() {
        send_group_snapshots(task_store, ctx.registry, &imported.changed_groups, None);
    }
    ::log::info!(
        "workflow API: imported {} task(s) from meeting {sid} into group {group}",
        imported.ids.len()
    );
    Ok(Response::ok_data(
        json!({"imported": imported.ids.len(), "ids": imported.ids}),
    ))
}

/// A finalized meeting by id; an id outside `[A-Za-z0-9_-]{1,64}` or without
/// a stored meeting is a 404.
fn load_meeting(store: &MeetingStore, sid: &str) -> Result<MeetingRecord, Response> {
    if !valid_session_id(sid) {
        return Err(Response::meeting_not_found(sid));
    }
    store
        .load_record(sid)
        .map_err(|e| Response::internal("workflow", &format!("cannot read meeting {sid}: {e}")))?
        .ok_or_else(|| Response::meeting_not_found(sid))
}

/// The tasks a meeting yields: `summary.actions[n]` → `MEET-<sid>-A<n>`, then
/// `summary.nextSteps[n]` → `MEET-<sid>-N<n>`, n from 1. Blank items are
/// skipped (a task title must be non-empty) without renumbering the rest, so
/// the ids stay those of the summary's positions.
fn meeting_tasks(record: &MeetingRecord, group: &str) -> Vec<Value> {
    let sid = &record.session_id;
    let lists = [
        ('A', &record.summary.actions),
        ('N', &record.summary.next_steps),
    ];
    lists
        .into_iter()
        .flat_map(|(letter, items)| {
            items.iter().enumerate().filter_map(move |(i, text)| {
                let title = text.trim();
                (!title.is_empty()).then(|| {
                    json!({
                        "id": format!("MEET-{sid}-{letter}{}", i + 1),
                        "title": title,
                        "priority": IMPORT_PRIORITY,
                        "status": "open",
                        "source": "meeting",
                        "sessionId": sid,
                        "groupKey": group,
                    })
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::{MeetingMetrics, Summary};

    fn record(actions: &[&str], next_steps: &[&str]) -> MeetingRecord {
        MeetingRecord {
            session_id: "s-1".into(),
            device_id: "94:a9:90:07:9d:88".into(),
            started_at: 1,
            ended_at: 2,
            duration_ms: 1,
            summary: Summary {
                actions: actions.iter().map(|s| s.to_string()).collect(),
                next_steps: next_steps.iter().map(|s| s.to_string()).collect(),
                ..Summary::default()
            },
            segments: vec![],
            bullets_length: 0,
            source_segments: 0,
            metrics: MeetingMetrics::default(),
            recovered: false,
        }
    }

    #[test]
    fn meeting_tasks_number_actions_then_next_steps() {
        let tasks = meeting_tasks(&record(&["a1", " ", "a3"], &["n1"]), "94:a9:90");
        let ids: Vec<&str> = tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["MEET-s-1-A1", "MEET-s-1-A3", "MEET-s-1-N1"]);
        assert_eq!(
            tasks[0],
            json!({"id":"MEET-s-1-A1","title":"a1","priority":2,"status":"open",
                "source":"meeting","sessionId":"s-1","groupKey":"94:a9:90"})
        );
    }

    #[test]
    fn import_params_body_wins_over_query() {
        use crate::http::request::test_head;
        let head = test_head(
            "POST",
            "/workflow/import-from-meeting?groupKey=aa:bb:cc&sessionId=q",
            &[],
        );
        let (g, s) = import_params(&head, br#"{"groupKey":"94:a9:90"}"#).unwrap();
        assert_eq!((g.as_deref(), s.as_deref()), (Some("94:a9:90"), Some("q")));
        let (g, s) = import_params(&head, b"  ").unwrap();
        assert_eq!((g.as_deref(), s.as_deref()), (Some("aa:bb:cc"), Some("q")));
        let err = import_params(&head, b"{nope").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(String::from_utf8_lossy(&err.body).contains("not valid JSON"));
        let err = import_params(&head, b"[1]").unwrap_err();
        assert!(String::from_utf8_lossy(&err.body).contains("JSON object"));
        let err = import_params(&head, br#"{"groupKey":7}"#).unwrap_err();
        assert!(String::from_utf8_lossy(&err.body).contains("groupKey must be a string"));
    }
}
