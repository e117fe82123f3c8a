//! One workflow task (PROTOCOL.md §3.4). A task is kept as the JSON object the
//! device sent, not a struct, because fields the server does not know must be
//! stored and returned unchanged; typed accessors cover the fields it reads.

use serde_json::{Map, Value};

/// Statuses allowed by the contract.
pub const STATUSES: [&str; 2] = ["open", "done"];

/// A validated task: a JSON object whose `id` is a non-empty string.
#[derive(Debug, Clone, PartialEq)]
pub struct Task(Map<String, Value>);

impl Task {
    /// Wraps `value` after [`validate_task`]; `index` only names the task in the error.
    pub fn from_value(index: usize, value: Value) -> Result<Self, String> {
        validate_task(index, &value)?;
        match value {
            Value::Object(map) => Ok(Task(map)),
            // validate_task rejects non-objects.
            _ => unreachable!("validated task is an object"),
        }
    }

    /// The task id (always present: validation requires it).
    pub fn id(&self) -> &str {
        self.str_field("id").unwrap_or_default()
    }

    pub fn title(&self) -> Option<&str> {
        self.str_field("title")
    }

    /// 0 (most urgent) to 3.
    pub fn priority(&self) -> Option<u8> {
        self.0
            .get("priority")
            .and_then(Value::as_u64)
            .and_then(|p| u8::try_from(p).ok())
    }

    /// `open` or `done`; absent only for tasks that were stored without one.
    pub fn status(&self) -> Option<&str> {
        self.str_field("status")
    }

    /// A task without a status counts as open (new tasks default to `open`).
    pub fn is_open(&self) -> bool {
        self.status() != Some("done")
    }

    pub fn owner(&self) -> Option<&str> {
        self.str_field("owner")
    }

    /// The stored (already normalized) group key.
    pub fn group_key(&self) -> Option<&str> {
        self.str_field("groupKey")
    }

    /// All fields, including the ones the server does not interpret.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    pub(crate) fn fields_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.0
    }

    /// Sets `key` to `value`; returns whether the stored value changed, so
    /// callers can tell a real write from an idempotent one.
    pub(crate) fn set(&mut self, key: &str, value: Value) -> bool {
        if self.0.get(key) == Some(&value) {
            return false;
        }
        self.0.insert(key.to_owned(), value);
        true
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }
}

/// Checks one task against §3.4. The error names the task's index in the
/// message and the field (`tasks[1].priority must be an integer 0-3`) because
/// it is sent back verbatim as the `SCHEMA_INVALID` detail.
pub fn validate_task(index: usize, value: &Value) -> Result<(), String> {
    let at = |field: &str, rule: &str| format!("tasks[{index}].{field} {rule}");
    let Some(map) = value.as_object() else {
        return Err(format!("tasks[{index}] must be an object"));
    };
    match map.get("id") {
        Some(Value::String(id)) if !id.trim().is_empty() => {}
        Some(_) => return Err(at("id", "must be a non-empty string")),
        None => return Err(at("id", "is required")),
    }
    if let Some(title) = map.get("title")
        && !matches!(title, Value::String(t) if !t.trim().is_empty())
    {
        return Err(at("title", "must be a non-empty string"));
    }
    // as_u64 is None for negatives and floats (1.0 included): only integers pass.
    if let Some(priority) = map.get("priority")
        && priority.as_u64().is_none_or(|p| p > 3)
    {
        return Err(at("priority", "must be an integer 0-3"));
    }
    if let Some(status) = map.get("status")
        && !status.as_str().is_some_and(|s| STATUSES.contains(&s))
    {
        return Err(at("status", "must be \"open\" or \"done\""));
    }
    // null clears the owner; anything else must be a name.
    if let Some(owner) = map.get("owner")
        && !matches!(owner, Value::String(_) | Value::Null)
    {
        return Err(at("owner", "must be a string or null"));
    }
    // The group decides who sees the task, so an unusable key is rejected
    // rather than silently replaced by the sender's group.
    if let Some(group) = map.get("groupKey")
        && !matches!(group, Value::String(g) if !g.trim().is_empty())
    {
        return Err(at("groupKey", "must be a non-empty string"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_contract_example_and_unknown_fields() {
        let v = json!({"id":"T-1","title":"扫码登录联调","priority":1,"status":"open",
            "owner":"badge-07","groupKey":"94:a9:90","extra":{"x":[1,2]}});
        let t = Task::from_value(0, v.clone()).unwrap();
        assert_eq!(t.id(), "T-1");
        assert_eq!(t.title(), Some("扫码登录联调"));
        assert_eq!(t.priority(), Some(1));
        assert_eq!(t.status(), Some("open"));
        assert!(t.is_open());
        assert_eq!(t.owner(), Some("badge-07"));
        assert_eq!(t.group_key(), Some("94:a9:90"));
        assert_eq!(t.into_value(), v);
    }

    #[test]
    fn errors_name_the_index_and_field() {
        let cases = [
            (json!("T-1"), "tasks[1] must be an object"),
            (json!({"title":"x"}), "tasks[1].id is required"),
            (json!({"id":7}), "tasks[1].id must be a non-empty string"),
            (json!({"id":""}), "tasks[1].id must be a non-empty string"),
            (
                json!({"id":"a","title":""}),
                "tasks[1].title must be a non-empty string",
            ),
            (
                json!({"id":"a","title":3}),
                "tasks[1].title must be a non-empty string",
            ),
            (
                json!({"id":"a","priority":4}),
                "tasks[1].priority must be an integer 0-3",
            ),
            (
                json!({"id":"a","priority":-1}),
                "tasks[1].priority must be an integer 0-3",
            ),
            (
                json!({"id":"a","priority":1.5}),
                "tasks[1].priority must be an integer 0-3",
            ),
            (
                json!({"id":"a","priority":"1"}),
                "tasks[1].priority must be an integer 0-3",
            ),
            (
                json!({"id":"a","status":"closed"}),
                "tasks[1].status must be \"open\" or \"done\"",
            ),
            (
                json!({"id":"a","owner":5}),
                "tasks[1].owner must be a string or null",
            ),
            (
                json!({"id":"a","groupKey":""}),
                "tasks[1].groupKey must be a non-empty string",
            ),
        ];
        for (value, want) in cases {
            assert_eq!(validate_task(1, &value).unwrap_err(), want, "{value}");
        }
        assert!(validate_task(0, &json!({"id":"a","priority":0,"owner":null})).is_ok());
        assert!(validate_task(0, &json!({"id":"a","priority":3,"status":"done"})).is_ok());
    }
}
