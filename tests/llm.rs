//! LLM client and meeting summary against a real local chat-completions server (`common::llm_stub`): request
//! shape, auth, errors and timeouts over HTTP; streaming (deltas, cancel, stalls, framing) and function tools;
//! summary prompt, parsing, normalization, fallback and duration; per-purpose resolution and the shared instance
//! cache.

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::llm_stub::{
    Behavior, LlmStub, STUB_CALL_ID, SUMMARY_JSON, deltas_of, unreachable_base_url,
};
use huddle::config::{Config, OpenAiLlm, parse_toml};
use huddle::llm::{
    ChatMessage, ChatOptions, ChatReply, LlmClient, LlmError, LlmPurpose, LlmRegistry, OpenAiChat,
    Role, ToolCall,
};
use huddle::modes::meeting::summary::{
    self, SummaryInput, SummaryPath, build_prompt, fallback_summary, parse_summary, summarize,
};
use huddle::store::model::Segment;
use serde_json::Value;

fn settings(base_url: &str) -> OpenAiLlm {
    OpenAiLlm {
        base_url: base_url.to_string(),
        model: "stub-model".to_string(),
        api_key: None,
        timeout_s: 60,
        max_tokens: None,
        temperature: None,
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn seg(text: &str) -> Segment {
    Segment {
        ts: 1_755_480_012_000,
        text: text.to_string(),
        speaker_id: Some("spk-1".to_string()),
        tag: None,
    }
}

fn meeting_input(checkpoint: bool) -> SummaryInput {
    SummaryInput {
        segments: vec![seg("登录页改成扫码"), seg("短信验证码方案放弃")],
        started_at: 1_755_479_990_000,
        ended_at: 1_755_479_990_000 + 2_530_000,
        min_duration_ms: 5_000,
        checkpoint,
    }
}

/// The summary of [`meeting_input`] (a final one), due within [`soon`].
fn summarize_meeting(client: Option<&dyn LlmClient>, config: &Config) -> summary::SummaryOutcome {
    summarize(client, config, &meeting_input(false), soon())
}

// ---- client over HTTP ----

#[test]
fn request_has_the_chat_completions_shape_and_auth() {
    let stub = LlmStub::start();
    stub.reply("你好");
    let chat = OpenAiChat::new(
        "local",
        OpenAiLlm {
            api_key: Some("sk-test".to_string()),
            ..settings(&format!("{}/", stub.base_url()))
        },
    );
    let options = ChatOptions {
        max_tokens: Some(123),
        temperature: Some(0.2),
        ..ChatOptions::default()
    };
    let reply = chat
        .chat(
            &[ChatMessage::system("sys"), ChatMessage::user("hi")],
            &options,
            soon(),
        )
        .unwrap();
    assert_eq!(reply.content, "你好");
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(reply.model.as_deref(), Some("stub-model"));
    assert_eq!(chat.name(), "local");

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-test"));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        r.body,
        serde_json::json!({
            "model": "stub-model",
            "messages": [{"role":"system","content":"sys"},{"role":"user","content":"hi"}],
            "max_tokens": 123,
            "temperature": 0.2,
            "stream": false
        })
    );
}

#[test]
fn without_key_no_auth_header_and_provider_defaults_apply() {
    let stub = LlmStub::start();
    stub.reply("ok");
    let chat = OpenAiChat::new(
        "local",
        OpenAiLlm {
            max_tokens: Some(256),
            temperature: Some(0.7),
            ..settings(&stub.base_url())
        },
    );
    chat.chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
        .unwrap();
    let plain = OpenAiChat::new("plain", settings(&stub.base_url()));
    plain
        .chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
        .unwrap();
    let requests = stub.requests();
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(requests[0].body["max_tokens"], 256);
    assert_eq!(requests[0].body["temperature"], 0.7);
    // Unset everywhere: left out, the service picks.
    assert!(requests[1].body.get("max_tokens").is_none());
    assert!(requests[1].body.get("temperature").is_none());
    assert_eq!(requests[1].body["stream"], false);
}

#[test]
fn non_2xx_is_a_status_error_with_the_body() {
    let stub = LlmStub::start();
    stub.fail(500);
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    match chat.chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon()) {
        Err(LlmError::Status { status, body }) => {
            assert_eq!(status, 500);
            assert!(body.contains("stub failure"), "{body}");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    stub.fail(401);
    let err = chat
        .chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
        .unwrap_err();
    assert!(matches!(err, LlmError::Status { status: 401, .. }));
    assert!(err.to_string().contains("401"));
}

#[test]
fn a_stalled_service_times_out_by_the_deadline() {
    let stub = LlmStub::start();
    stub.stall(Duration::from_secs(5));
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    let started = Instant::now();
    let err = chat
        .chat(
            &[ChatMessage::user("hi")],
            &ChatOptions::default(),
            started + Duration::from_millis(500),
        )
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, LlmError::Timeout);
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[test]
fn the_configured_and_per_call_timeouts_apply() {
    let stub = LlmStub::start();
    stub.stall(Duration::from_secs(5));
    let chat = OpenAiChat::new(
        "local",
        OpenAiLlm {
            timeout_s: 1,
            ..settings(&stub.base_url())
        },
    );
    let started = Instant::now();
    let err = chat
        .chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
        .unwrap_err();
    assert_eq!(err, LlmError::Timeout);
    assert!(started.elapsed() < Duration::from_millis(2500));

    let patient = OpenAiChat::new("local", settings(&stub.base_url()));
    let started = Instant::now();
    let options = ChatOptions {
        timeout: Some(Duration::from_millis(300)),
        ..ChatOptions::default()
    };
    let err = patient
        .chat(&[ChatMessage::user("hi")], &options, soon())
        .unwrap_err();
    assert_eq!(err, LlmError::Timeout);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[test]
fn a_down_service_is_unavailable() {
    let chat = OpenAiChat::new("local", settings(&unreachable_base_url()));
    let err = chat
        .chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
        .unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err:?}");

    let mut stub = LlmStub::start();
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    chat.chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
        .unwrap();
    stub.shutdown();
    let err = chat
        .chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
        .unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err:?}");
}

#[test]
fn unusable_2xx_answers_are_bad_answers() {
    let stub = LlmStub::start();
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    for body in [
        "<html>gateway</html>",
        r#"{"choices":[]}"#,
        r#"{"object":"chat.completion"}"#,
        r#"{"choices":[{"message":{"role":"assistant","content":null}}]}"#,
    ] {
        stub.raw(200, body);
        let err = chat
            .chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
            .unwrap_err();
        assert!(matches!(err, LlmError::BadAnswer(_)), "{body}: {err:?}");
    }
}

// ---- streaming ----

/// A streamed call collecting its deltas, each with when it arrived.
fn stream(
    chat: &OpenAiChat,
    options: &ChatOptions,
    deadline: Instant,
) -> (Result<ChatReply, LlmError>, Vec<(String, Duration)>) {
    let started = Instant::now();
    let mut deltas = Vec::new();
    let result = chat.chat_stream(
        &[ChatMessage::user("hi")],
        options,
        deadline,
        &mut |d: &str| {
            deltas.push((d.to_string(), started.elapsed()));
            ControlFlow::Continue(())
        },
    );
    (result, deltas)
}

fn texts(deltas: &[(String, Duration)]) -> Vec<&str> {
    deltas.iter().map(|(d, _)| d.as_str()).collect()
}

const LONG_ANSWER: &str = "The meeting room on the third floor is free from two until four this afternoon, \
    and the projector there was fixed yesterday, so it should work for your demo.";

#[test]
fn streamed_deltas_arrive_in_order_and_make_the_reply() {
    let stub = LlmStub::start();
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    for answer in [LONG_ANSWER, "好的，我已经把会议室订好了，下午两点见。"] {
        stub.reply(answer);
        let (reply, deltas) = stream(&chat, &ChatOptions::default(), soon());
        let reply = reply.unwrap();
        assert!(deltas.len() > 1, "{deltas:?}");
        assert_eq!(texts(&deltas), deltas_of(answer));
        assert_eq!(texts(&deltas).concat(), answer);
        assert_eq!(reply.content, answer);
        assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
        assert_eq!(reply.model.as_deref(), Some("stub-model"));
        assert_eq!(
            (reply.prompt_tokens, reply.completion_tokens),
            (Some(10), Some(5))
        );
        assert!(reply.tool_calls.is_empty());
    }
    let requests = stub.requests();
    let r = requests.last().unwrap();
    assert_eq!(r.body["stream"], true);
    assert!(r.body.get("tools").is_none());
    assert_eq!(r.header("accept"), Some("text/event-stream"));
}

#[test]
fn deltas_are_delivered_as_they_arrive() {
    let stub = LlmStub::start();
    let pause = Duration::from_millis(150);
    stub.stream_slow(LONG_ANSWER, pause);
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    let (reply, deltas) = stream(&chat, &ChatOptions::default(), soon());
    assert_eq!(reply.unwrap().content, LONG_ANSWER);
    let n = deltas.len();
    assert!(n >= 5, "{n}");
    // The first delta comes at once, not after the whole answer was generated; later ones one pause apart.
    assert!(deltas[0].1 < pause, "{:?}", deltas[0].1);
    assert!(
        deltas[n - 1].1 >= pause * (n as u32 - 1),
        "{:?}",
        deltas[n - 1].1
    );
}

#[test]
fn a_break_cancels_at_once_and_drops_the_connection() {
    let stub = LlmStub::start();
    // Eight seconds of stream if read to the end.
    stub.stream_slow(LONG_ANSWER, Duration::from_millis(1_000));
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    let started = Instant::now();
    let mut seen = Vec::new();
    let err = chat
        .chat_stream(
            &[ChatMessage::user("hi")],
            &ChatOptions::default(),
            soon(),
            &mut |d| {
                seen.push(d.to_string());
                ControlFlow::Break(())
            },
        )
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, LlmError::Cancelled);
    assert_eq!(seen.len(), 1);
    assert!(took < Duration::from_millis(500), "{took:?}");
    // The service sees the client gone at its next write instead of generating the rest.
    let until = Instant::now() + Duration::from_secs(4);
    while stub.streams_cut() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stub.streams_cut(), 1);
}

#[test]
fn a_stalled_stream_times_out_by_the_deadline() {
    let stub = LlmStub::start();
    stub.stream_slow(LONG_ANSWER, Duration::from_secs(5));
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    let started = Instant::now();
    let (result, deltas) = stream(
        &chat,
        &ChatOptions::default(),
        started + Duration::from_millis(500),
    );
    let took = started.elapsed();
    assert_eq!(result.unwrap_err(), LlmError::Timeout);
    assert_eq!(texts(&deltas), &deltas_of(LONG_ANSWER)[..1]);
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "{took:?}"
    );

    // The per-call timeout caps a stream too, and so does a service that never starts answering.
    let options = ChatOptions {
        timeout: Some(Duration::from_millis(300)),
        ..ChatOptions::default()
    };
    let started = Instant::now();
    assert_eq!(
        stream(&chat, &options, soon()).0.unwrap_err(),
        LlmError::Timeout
    );
    assert!(started.elapsed() < Duration::from_millis(1200));
    stub.set(Behavior::Stall(
        Duration::from_secs(5),
        Box::new(Behavior::Reply("late".into())),
    ));
    let started = Instant::now();
    let (result, deltas) = stream(&chat, &options, soon());
    assert_eq!(result.unwrap_err(), LlmError::Timeout);
    assert!(deltas.is_empty());
    assert!(started.elapsed() < Duration::from_millis(1200));
}

#[test]
fn streams_are_read_whatever_their_framing() {
    let stub = LlmStub::start();
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    // Close-delimited, events cut mid-line and mid-character across writes, CRLF ends, comments.
    let sse = concat!(
        ": ping\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好\"}}]}\r\n\r\n",
        "event: message\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"，世界\"},\"finish_reason\":\"stop\"}]}\r\n\r\n",
        "data: [DONE]\r\n\r\n"
    );
    let bytes = sse.as_bytes();
    let inside = |text: &str, plus: usize| sse.find(text).map(|at| at + plus).unwrap();
    let cuts = [
        5,
        30,
        inside("你", 1),
        inside("世界", 2),
        inside("[DONE]", 3),
        bytes.len(),
    ];
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts {
        pieces.push(bytes[from..cut].to_vec());
        from = cut;
    }
    stub.set(Behavior::RawStream(pieces, Duration::from_millis(20)));
    let (reply, deltas) = stream(&chat, &ChatOptions::default(), soon());
    assert_eq!(texts(&deltas), ["你好", "，世界"]);
    assert_eq!(reply.unwrap().content, "你好，世界");

    // Cut off before the end: not a short reply but a bad answer.
    stub.set(Behavior::RawStream(
        vec![b"data: {\"choices\":[{\"delta\":{\"content\":\"half\"}}]}\n\n".to_vec()],
        Duration::ZERO,
    ));
    let (result, deltas) = stream(&chat, &ChatOptions::default(), soon());
    assert!(matches!(result, Err(LlmError::BadAnswer(_))), "{result:?}");
    assert_eq!(texts(&deltas), ["half"]);
}

#[test]
fn stream_errors_and_services_that_do_not_stream() {
    let stub = LlmStub::start();
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    stub.fail(503);
    let (result, _) = stream(&chat, &ChatOptions::default(), soon());
    assert!(
        matches!(&result, Err(LlmError::Status { status: 503, body }) if body.contains("stub failure")),
        "{result:?}"
    );
    // A service that ignores "stream":true answers in one JSON piece: one delta.
    stub.raw(
        200,
        r#"{"choices":[{"message":{"role":"assistant","content":"一次说完"},"finish_reason":"stop"}]}"#,
    );
    let (reply, deltas) = stream(&chat, &ChatOptions::default(), soon());
    assert_eq!(reply.unwrap().content, "一次说完");
    assert_eq!(texts(&deltas), ["一次说完"]);

    let down = OpenAiChat::new("down", settings(&unreachable_base_url()));
    let (result, _) = stream(&down, &ChatOptions::default(), soon());
    assert!(
        matches!(result, Err(LlmError::Unavailable(_))),
        "{result:?}"
    );
}

// ---- function tools ----

fn volume_tool() -> Value {
    serde_json::json!({
        "type": "function",
        "function": {
            "name": "set_volume",
            "description": "Set the badge speaker volume",
            "parameters": {
                "type": "object",
                "properties": {"level": {"type": "integer", "minimum": 0, "maximum": 100}},
                "required": ["level"]
            }
        }
    })
}

fn with_tools() -> ChatOptions {
    ChatOptions {
        tools: vec![volume_tool()],
        ..ChatOptions::default()
    }
}

#[test]
fn tools_are_sent_only_when_given() {
    let stub = LlmStub::start();
    stub.reply("ok");
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    let hi = [ChatMessage::user("hi")];
    chat.chat(&hi, &ChatOptions::default(), soon()).unwrap();
    chat.chat(&hi, &with_tools(), soon()).unwrap();
    stream(&chat, &with_tools(), soon()).0.unwrap();
    let requests = stub.requests();
    assert!(requests[0].body.get("tools").is_none());
    assert_eq!(
        requests[1].body["tools"],
        serde_json::json!([volume_tool()])
    );
    assert_eq!(requests[1].body["stream"], false);
    assert_eq!(
        requests[2].body["tools"],
        serde_json::json!([volume_tool()])
    );
    assert_eq!(requests[2].body["stream"], true);
}

#[test]
fn tool_calls_parse_streamed_and_not() {
    let stub = LlmStub::start();
    let arguments = r#"{"level": 30, "note": "调大一点"}"#;
    stub.tool_call("set_volume", arguments);
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    let expected = [ToolCall {
        id: STUB_CALL_ID.to_string(),
        name: "set_volume".to_string(),
        arguments: arguments.to_string(),
    }];

    let reply = chat
        .chat(&[ChatMessage::user("大声点")], &with_tools(), soon())
        .unwrap();
    assert_eq!(reply.tool_calls, expected);
    assert_eq!(reply.content, "");
    assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));

    let (reply, deltas) = stream(&chat, &with_tools(), soon());
    let reply = reply.unwrap();
    assert_eq!(reply.tool_calls, expected);
    assert_eq!(reply.content, "");
    assert_eq!(reply.finish_reason.as_deref(), Some("tool_calls"));
    assert!(deltas.is_empty(), "tool calls are not spoken: {deltas:?}");
}

#[test]
fn a_tool_round_trip_sends_calls_and_results_back() {
    let stub = LlmStub::start();
    stub.script(vec![
        Behavior::ToolCall {
            name: "set_volume".into(),
            arguments: r#"{"level":30}"#.into(),
        },
        Behavior::Reply("音量已经调到三十。".into()),
    ]);
    stub.reply("standing answer");
    let chat = OpenAiChat::new("local", settings(&stub.base_url()));
    let mut messages = vec![ChatMessage::system("sys"), ChatMessage::user("大声点")];

    let (first, _) = stream(&chat, &with_tools(), soon());
    let calls = first.unwrap().tool_calls;
    assert_eq!(calls.len(), 1);
    messages.push(ChatMessage::assistant_tool_calls(calls.clone()));
    messages.push(ChatMessage::tool_result(&calls[0].id, r#"{"ok":true}"#));
    let mut spoken = String::new();
    let second = chat
        .chat_stream(&messages, &with_tools(), soon(), &mut |d| {
            spoken.push_str(d);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(second.content, "音量已经调到三十。");
    assert_eq!(spoken, second.content);
    assert!(second.tool_calls.is_empty());
    // The script is used up: the standing behavior answers again.
    let third = chat
        .chat(&messages, &ChatOptions::default(), soon())
        .unwrap();
    assert_eq!(third.content, "standing answer");

    let requests = stub.requests();
    assert_eq!(
        requests[1].body["messages"],
        serde_json::json!([
            {"role":"system","content":"sys"},
            {"role":"user","content":"大声点"},
            {"role":"assistant","content":"","tool_calls":[{"id":STUB_CALL_ID,"type":"function",
                "function":{"name":"set_volume","arguments":"{\"level\":30}"}}]},
            {"role":"tool","content":"{\"ok\":true}","tool_call_id":STUB_CALL_ID}
        ])
    );
}

// ---- summary over HTTP ----

#[test]
fn summary_from_strict_json() {
    let stub = LlmStub::start();
    let client = OpenAiChat::new("local", settings(&stub.base_url()));
    let out = summarize_meeting(Some(&client), &Config::default());
    assert_eq!(out.path, SummaryPath::Llm);
    assert!(out.llm_called);
    assert_eq!(out.summary.title, "登录改版周会");
    assert_eq!(out.summary.duration, "00:42:10");
    assert_eq!(
        out.summary.bullets,
        ["登录页改为扫码登录，下周三前出设计稿"]
    );
    assert_eq!(out.summary.decisions, ["放弃短信验证码方案"]);
    assert_eq!(out.summary.actions, ["前端组完成扫码页开发"]);
    assert!(out.summary.risks.is_empty());
    assert_eq!(out.summary.next_steps, ["周五联调扫码接口"]);

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    assert_eq!(body["max_tokens"], 800);
    assert_eq!(body["model"], "stub-model");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[1]["role"], "user");
    let user = messages[1]["content"].as_str().unwrap();
    assert!(
        user.contains("spk-1: 登录页改成扫码\nspk-1: 短信验证码方案放弃"),
        "{user}"
    );
    let system = messages[0]["content"].as_str().unwrap();
    for rule in ["JSON", "nextSteps", "30", "20–40", "[]", "不得编造"] {
        assert!(system.contains(rule), "{rule} missing from {system}");
    }
}

#[test]
fn checkpoints_use_the_checkpoint_budget() {
    let stub = LlmStub::start();
    let client = OpenAiChat::new("local", settings(&stub.base_url()));
    let config =
        parse_toml("[meeting.llm]\nmax_tokens = 1000\ncheckpoint_max_tokens = 300").unwrap();
    let out = summarize(Some(&client), &config, &meeting_input(true), soon());
    assert_eq!(out.path, SummaryPath::Llm);
    assert_eq!(out.max_tokens, 300);
    let out = summarize_meeting(Some(&client), &config);
    assert_eq!(out.max_tokens, 1000);
    let requests = stub.requests();
    assert_eq!(requests[0].body["max_tokens"], 300);
    assert_eq!(requests[1].body["max_tokens"], 1000);
}

#[test]
fn summary_from_prose_wrapping_fenced_json() {
    let stub = LlmStub::start();
    stub.reply(&format!(
        "好的，以下是本次会议的纪要：\n\n```json\n{SUMMARY_JSON}\n```\n\n如需调整请告诉我。"
    ));
    let client = OpenAiChat::new("local", settings(&stub.base_url()));
    let out = summarize_meeting(Some(&client), &Config::default());
    assert_eq!(out.path, SummaryPath::Llm);
    assert_eq!(out.summary.title, "登录改版周会");
}

#[test]
fn unusable_answers_errors_and_stalls_fall_back() {
    let stub = LlmStub::start();
    let client = OpenAiChat::new("local", settings(&stub.base_url()));
    let config = Config::default();
    let check = |out: summary::SummaryOutcome| {
        assert_eq!(out.path, SummaryPath::Fallback);
        assert!(out.llm_called);
        assert!(out.error.is_some());
        assert_eq!(
            out.summary.bullets,
            ["会议内容已记录", "LLM服务暂时不可用", "请稍后重试"]
        );
        assert_eq!(out.summary.duration, "00:42:10");
        assert_eq!(out.summary.title, "会议纪要");
    };

    stub.reply("抱歉，我无法生成纪要。");
    check(summarize_meeting(Some(&client), &config));
    stub.reply("{not json at all}");
    check(summarize_meeting(Some(&client), &config));
    stub.fail(500);
    check(summarize_meeting(Some(&client), &config));

    stub.stall(Duration::from_secs(5));
    let started = Instant::now();
    let out = summarize(
        Some(&client),
        &config,
        &meeting_input(false),
        started + Duration::from_millis(500),
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(out.llm_elapsed_ms >= 400, "{}", out.llm_elapsed_ms);
    check(out);

    let down = OpenAiChat::new("down", settings(&unreachable_base_url()));
    check(summarize_meeting(Some(&down), &config));
}

#[test]
fn no_llm_falls_back_without_a_call() {
    let out = summarize_meeting(None, &Config::default());
    assert_eq!(out.path, SummaryPath::Fallback);
    assert!(!out.llm_called);
    assert_eq!(out.llm_elapsed_ms, 0);
    assert_eq!(out.error, None);
    assert_eq!(out.summary.bullets.len(), 3);
}

// ---- prompt ----

#[test]
fn the_prompt_gets_the_transcript_tail() {
    let config = parse_toml("[meeting]\nsummary_transcript_max_chars = 500").unwrap();
    let mut segments: Vec<Segment> = (0..100)
        .map(|i| Segment {
            ts: i,
            text: format!("第{i:03}句话"),
            speaker_id: None,
            tag: None,
        })
        .collect();
    segments.push(Segment {
        ts: 100,
        text: "最后的结论".to_string(),
        speaker_id: None,
        tag: Some("决定".to_string()),
    });
    let messages = build_prompt(&config, &segments);
    let user = &messages[1].content;
    assert!(user.ends_with("第099句话\n[决定] 最后的结论"), "{user}");
    assert!(!user.contains("第000句话"));
    assert!(user.contains("第050句话"));
    // Built-in user text + the 500-char tail.
    let transcript_part = user.rsplit("\n\n").next().unwrap();
    assert_eq!(transcript_part.chars().count(), 500);
}

#[test]
fn prompt_templates_and_placeholders() {
    let segments = [seg("预算超支百分之十")];
    // Built-in, with placeholders filled.
    let config = parse_toml(
        "[meeting]\ntarget_lang = \"English\"\nindustry = \"finance\"\nscenario = \"季度复盘\"",
    )
    .unwrap();
    let m = build_prompt(&config, &segments);
    assert_eq!((m[0].role, m[1].role), (Role::System, Role::User));
    assert!(m[0].content.contains("English"));
    assert!(m[0].content.contains("finance") && m[0].content.contains("季度复盘"));
    assert!(!m[0].content.contains('{') || m[0].content.contains("\"title\""));
    assert!(!m[0].content.contains("{target_lang}"));

    // Configured system + user template.
    let config = parse_toml(
        "[meeting]\nscenario = \"站会\"\n[meeting.prompts]\nsystem = \"SYS for {scenario}\"\nuser_template = \"USER {industry}: {transcript} END\"",
    )
    .unwrap();
    let m = build_prompt(&config, &segments);
    assert!(m[0].content.starts_with("SYS for 站会"));
    assert!(
        m[0].content.contains("nextSteps"),
        "output rules always follow"
    );
    assert!(m[0].content.contains("与会议转写相同的语言"));
    assert_eq!(m[1].content, "USER 通用: spk-1: 预算超支百分之十 END");

    // The industry template wins over prompts.system; a template without {transcript} gets it appended.
    let config = parse_toml(
        "[meeting]\nindustry = \"tech\"\n[meeting.prompts]\nsystem = \"SYS\"\nuser_template = \"纪要：\"\n[meeting.prompts.templates]\ntech = \"TECH {industry}\"",
    )
    .unwrap();
    let m = build_prompt(&config, &segments);
    assert!(m[0].content.starts_with("TECH tech"));
    assert_eq!(m[1].content, "纪要：\n\nspk-1: 预算超支百分之十");

    // Braces in the transcript are not placeholders.
    let m = build_prompt(&Config::default(), &[seg("说到 {industry} 这个词")]);
    assert!(m[1].content.contains("说到 {industry} 这个词"));
}

// ---- parsing and normalization ----

#[test]
fn parse_strict_fenced_prose_and_garbage() {
    let strict = parse_summary(SUMMARY_JSON).unwrap();
    assert_eq!(strict.title, "登录改版周会");
    let fenced = parse_summary(&format!("```json\n{SUMMARY_JSON}\n```")).unwrap();
    assert_eq!(fenced, strict);
    let prose = parse_summary(&format!("纪要如下：{SUMMARY_JSON} 以上。")).unwrap();
    assert_eq!(prose, strict);
    assert_eq!(
        parse_summary(&format!("  {SUMMARY_JSON}\n")).unwrap(),
        strict
    );
    for garbage in [
        "",
        "抱歉，我无法完成。",
        "{broken: json",
        "} backwards {",
        "[1, 2, 3]",
        r#"{"answer":"no summary fields"}"#,
        r#"text {"a":1} more {"b":2} text"#,
    ] {
        assert_eq!(parse_summary(garbage), None, "{garbage}");
    }
    // Missing fields are empty lists; snake_case next_steps is accepted.
    let partial = parse_summary(r#"{"title":"T","next_steps":["x"]}"#).unwrap();
    assert_eq!(partial.next_steps, ["x"]);
    assert!(partial.bullets.is_empty() && partial.risks.is_empty());
    // The model's duration is ignored; the caller sets it from the meeting.
    assert_eq!(strict.duration, "");
}

#[test]
fn lists_are_deduplicated_cleaned_and_capped() {
    let s = parse_summary(
        r#"{"title":"T",
            "bullets":["a","b","a"," b ","","   ","c","d","e","f","g","h"],
            "decisions":["1","2","3","4","5","2"],
            "actions":[null, 7, {"x":1}, "act"],
            "risks":"单条风险",
            "nextSteps":null}"#,
    )
    .unwrap();
    assert_eq!(s.bullets, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(s.decisions, ["1", "2", "3", "4"]);
    assert_eq!(s.actions, ["7", "act"]);
    assert_eq!(s.risks, ["单条风险"]);
    assert!(s.next_steps.is_empty());
}

#[test]
fn title_rules() {
    for (answer, title) in [
        (r#"{"title":"","bullets":[]}"#, "会议纪要"),
        (r#"{"title":"   ","bullets":[]}"#, "会议纪要"),
        (r#"{"bullets":[]}"#, "会议纪要"),
        (r#"{"title":42,"bullets":[]}"#, "会议纪要"),
        (r#"{"title":"  周会  "}"#, "周会"),
    ] {
        assert_eq!(parse_summary(answer).unwrap().title, title, "{answer}");
    }
    let long = "登".repeat(45);
    let s = parse_summary(&format!(r#"{{"title":"{long}"}}"#)).unwrap();
    assert_eq!(s.title.chars().count(), 30);
    assert_eq!(s.title, "登".repeat(30));
    let s = parse_summary(&format!(r#"{{"title":"{}"}}"#, "x".repeat(31))).unwrap();
    assert_eq!(s.title, "x".repeat(30));
}

#[test]
fn duration_respects_the_minimum() {
    let mut input = meeting_input(false);
    assert_eq!(input.duration_ms(), 2_530_000);
    input.ended_at = input.started_at + 1_200;
    assert_eq!(input.duration_ms(), 5_000);
    let out = summarize(None, &Config::default(), &input, soon());
    assert_eq!(out.summary.duration, "00:00:05");
    // A clock that went backwards still gives the minimum.
    input.ended_at = input.started_at - 10;
    assert_eq!(input.duration_ms(), 5_000);
    input.min_duration_ms = 0;
    assert_eq!(input.duration_ms(), 0);
    let out = summarize(None, &Config::default(), &input, soon());
    assert_eq!(out.summary.duration, "00:00:00");
}

#[test]
fn fallback_has_all_seven_fields_and_no_null_lists() {
    let fallback = fallback_summary();
    assert_eq!(fallback.title, "会议纪要");
    let v = serde_json::to_value(&fallback).unwrap();
    for field in ["bullets", "decisions", "actions", "risks", "nextSteps"] {
        assert!(v[field].is_array(), "{field}: {}", v[field]);
    }
    assert!(v["title"].is_string() && v["duration"].is_string());
    assert_eq!(v.as_object().unwrap().len(), 7);
    assert_eq!(
        v["bullets"],
        serde_json::json!(["会议内容已记录", "LLM服务暂时不可用", "请稍后重试"])
    );
    let parsed = parse_summary(r#"{"title":"T"}"#).unwrap();
    let v = serde_json::to_value(&parsed).unwrap();
    for field in ["bullets", "decisions", "actions", "risks", "nextSteps"] {
        assert_eq!(v[field], Value::Array(Vec::new()), "{field}");
    }
}

// ---- resolution ----

fn two_tables(stub: &LlmStub) -> String {
    format!(
        "{}\n{}",
        stub.toml_table("a", "model-a"),
        stub.toml_table("b", "model-b")
    )
}

#[test]
fn resolve_falls_back_purpose_then_default_then_selected_module() {
    let stub = LlmStub::start();
    let registry = LlmRegistry::new();
    let tables = two_tables(&stub);
    let name = |config: &Config, purpose| {
        registry
            .resolve(config, purpose)
            .map(|c| c.name().to_string())
    };

    let none = parse_toml(&tables).unwrap();
    for purpose in LlmPurpose::ALL {
        assert_eq!(name(&none, purpose), None, "{purpose}");
    }

    let selected = parse_toml(&format!("[selected_module]\nllm = \"a\"\n{tables}")).unwrap();
    for purpose in LlmPurpose::ALL {
        assert_eq!(name(&selected, purpose).as_deref(), Some("a"), "{purpose}");
    }

    let with_default = parse_toml(&format!(
        "[selected_module]\nllm = \"a\"\n[llm_by_mode]\ndefault = \"b\"\n{tables}"
    ))
    .unwrap();
    assert_eq!(
        name(&with_default, LlmPurpose::Meeting).as_deref(),
        Some("b")
    );

    let per_mode = parse_toml(&format!(
        "[selected_module]\nllm = \"b\"\n[llm_by_mode]\nmeeting = \"a\"\nchat = \"none\"\nintent = \"ghost\"\n{tables}"
    ))
    .unwrap();
    assert_eq!(name(&per_mode, LlmPurpose::Meeting).as_deref(), Some("a"));
    assert_eq!(name(&per_mode, LlmPurpose::Coding).as_deref(), Some("b"));
    assert_eq!(name(&per_mode, LlmPurpose::Chat), None, "none switches off");
    assert_eq!(name(&per_mode, LlmPurpose::Intent), None, "missing table");
}

#[test]
fn resolved_clients_use_overrides_and_are_shared() {
    let stub = LlmStub::start();
    let registry = LlmRegistry::new();
    let config = parse_toml(&format!(
        "[llm_by_mode]\ndefault = \"a\"\nmeeting = {{ alias = \"a\", overrides = {{ model = \"m2\", max_tokens = 99 }} }}\nmemory = {{ alias = \"a\", overrides = {{ max_tokens = 99, model = \"m2\" }} }}\n{}",
        two_tables(&stub)
    ))
    .unwrap();
    let meeting = registry.resolve(&config, LlmPurpose::Meeting).unwrap();
    let memory = registry.resolve(&config, LlmPurpose::Memory).unwrap();
    let chat = registry.resolve(&config, LlmPurpose::Chat).unwrap();
    assert!(Arc::ptr_eq(&meeting, &memory), "same alias + overrides");
    assert!(!Arc::ptr_eq(&meeting, &chat));
    assert_eq!((meeting.model(), chat.model()), ("m2", "model-a"));

    meeting
        .chat(&[ChatMessage::user("hi")], &ChatOptions::default(), soon())
        .unwrap();
    let body = &stub.requests()[0].body;
    assert_eq!(body["model"], "m2");
    assert_eq!(body["max_tokens"], 99);

    // The process-wide cache behaves the same and is emptied by clear_cache.
    let global = huddle::llm::resolve(&config, LlmPurpose::Meeting).unwrap();
    let again = huddle::llm::resolve(&config, LlmPurpose::Memory).unwrap();
    assert!(Arc::ptr_eq(&global, &again));
    huddle::llm::clear_cache();
    let fresh = huddle::llm::resolve(&config, LlmPurpose::Meeting).unwrap();
    assert!(!Arc::ptr_eq(&global, &fresh));
}

#[test]
fn resolved_meeting_client_summarizes_end_to_end() {
    let stub = LlmStub::start();
    let config = parse_toml(&format!(
        "[selected_module]\nllm = \"a\"\n{}",
        stub.toml_table("a", "model-a")
    ))
    .unwrap();
    let registry = LlmRegistry::new();
    let client = registry.resolve(&config, LlmPurpose::Meeting);
    let out = summarize_meeting(client.as_deref(), &config);
    assert_eq!(out.path, SummaryPath::Llm);
    assert_eq!(stub.requests()[0].body["model"], "model-a");
}
