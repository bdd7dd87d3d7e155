//! Parsing of recorded Chat Completions bodies: our fixtures always, the
//! openai-python recordings in `../shared/data/openai-wire` when present.

use std::path::{Path, PathBuf};

use serde_json::Value;
use warden_llm::{ChatResponse, ToolCall, Usage, merge_sse, parse_completion};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    fs_err::read_to_string(path).unwrap()
}

/// The shared recordings, or `None` (with a skip message) when absent.
fn wire_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/openai-wire");
    if dir.join("manifest.json").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skip: {} not found; recorded OpenAI wire data is optional",
            dir.display()
        );
        None
    }
}

#[test]
fn merges_parallel_tool_calls_split_across_interleaved_deltas() {
    let response = merge_sse(&fixture("parallel_tool_calls.sse")).unwrap();
    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "call_disk".into(),
                name: "check_disk".into(),
                arguments: r#"{"host": "web-3", "min_free_pct": 10}"#.into(),
            },
            ToolCall {
                id: "call_logs".into(),
                name: "tail_logs".into(),
                arguments: r#"{"unit": "nginx", "lines": 50}"#.into(),
            },
        ]
    );
    for call in &response.tool_calls {
        serde_json::from_str::<Value>(&call.arguments).unwrap();
    }
    assert_eq!(response.content, None);
    assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(response.model, "gpt-4o-mini");
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 212,
            completion_tokens: 41,
            total_tokens: 253
        }
    );
}

#[test]
fn parses_a_text_completion_with_newer_usage_fields() {
    let response = parse_completion(fixture("text_answer.json").as_bytes()).unwrap();
    assert_eq!(
        response.content.as_deref(),
        Some("Disk /var on web-3 is 97% full; rotate nginx logs.")
    );
    assert_eq!(response.refusal, None);
    assert!(response.tool_calls.is_empty());
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert_eq!(response.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(response.usage.total_tokens, 135);
}

#[test]
fn gives_tool_calls_without_an_id_a_synthetic_one() {
    let response = parse_completion(fixture("tool_call_no_id.json").as_bytes()).unwrap();
    assert_eq!(response.tool_calls.len(), 1);
    assert_eq!(response.tool_calls[0].id, "call_0");
    assert_eq!(response.tool_calls[0].name, "restart_service");
}

#[test]
fn rejects_bodies_that_are_not_completions() {
    assert!(parse_completion(br#"{"error":{"message":"nope"}}"#).is_err());
    assert!(
        parse_completion(
            br#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[]}"#
        )
        .is_err()
    );
    let err =
        merge_sse("data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n")
            .unwrap_err();
    assert!(err.to_string().contains("overloaded"), "{err}");
    assert!(merge_sse("data: [DONE]\n\n").is_err());
}

#[test]
fn keeps_finish_reasons_that_openai_does_not_define() {
    let body = br#"{"id":"x","object":"chat.completion","created":1,"model":"m",
        "choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"eos"}]}"#;
    assert_eq!(
        parse_completion(body).unwrap().finish_reason.as_deref(),
        Some("eos")
    );
    let body = br#"{"id":"x","object":"chat.completion","created":1,"model":"m",
        "choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":""}]}"#;
    assert_eq!(parse_completion(body).unwrap().finish_reason, None);
    let stream = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"abort\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    assert_eq!(
        merge_sse(stream).unwrap().finish_reason.as_deref(),
        Some("abort")
    );
}

/// Compares our parse with an expected choice object (expected/*.json or the
/// raw body's `choices[i]`, whose tool calls nest name/arguments in `function`).
fn assert_choice_matches(label: &str, got: &ChatResponse, expected: &Value) {
    let message = expected.get("message").unwrap_or(expected);
    assert_eq!(
        got.content.as_deref(),
        message["content"].as_str(),
        "{label}: content"
    );
    assert_eq!(
        got.refusal.as_deref(),
        message["refusal"].as_str(),
        "{label}: refusal"
    );
    assert_eq!(
        got.finish_reason.as_deref(),
        expected["finish_reason"].as_str(),
        "{label}: finish_reason"
    );
    let calls = message["tool_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        got.tool_calls.len(),
        calls.len(),
        "{label}: tool call count"
    );
    for (got, want) in got.tool_calls.iter().zip(&calls) {
        let function = want.get("function").unwrap_or(want);
        assert_eq!(Some(got.id.as_str()), want["id"].as_str(), "{label}: id");
        assert_eq!(
            Some(got.name.as_str()),
            function["name"].as_str(),
            "{label}: name"
        );
        assert_eq!(
            Some(got.arguments.as_str()),
            function["arguments"].as_str(),
            "{label}: arguments"
        );
    }
}

fn assert_usage_matches(label: &str, got: &Usage, expected: &Value) {
    let field = |name: &str| expected[name].as_u64().unwrap_or(0);
    assert_eq!(
        (got.prompt_tokens, got.completion_tokens, got.total_tokens),
        (
            field("prompt_tokens"),
            field("completion_tokens"),
            field("total_tokens")
        ),
        "{label}: usage"
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn merges_every_recorded_stream_like_openai_python() {
    let Some(dir) = wire_data() else { return };
    let manifest = read_json(&dir.join("manifest.json"));
    let mut checked = 0;
    for entry in manifest["streaming"].as_array().unwrap() {
        let sse_file = entry["sse_file"].as_str().unwrap();
        let label = entry["test"].as_str().unwrap_or(sse_file);
        let stem = Path::new(sse_file).file_stem().unwrap().to_str().unwrap();
        let expected = read_json(&dir.join("expected").join(format!("{stem}.json")));
        let body = fs_err::read_to_string(dir.join(sse_file)).unwrap();

        let got = merge_sse(&body).unwrap_or_else(|e| panic!("{label}: {e}"));
        let first = expected["choices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["index"] == 0)
            .unwrap();
        assert_choice_matches(label, &got, first);
        assert_usage_matches(label, &got.usage, &expected["usage"]);
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} recorded streams checked");
}

#[test]
fn parses_every_recorded_completion() {
    let Some(dir) = wire_data() else { return };
    let manifest = read_json(&dir.join("manifest.json"));
    let mut checked = 0;
    for entry in manifest["nonstream"].as_array().unwrap() {
        let file = entry["response_file"].as_str().unwrap();
        let label = entry["test"].as_str().unwrap_or(file);
        let raw = fs_err::read(dir.join(file)).unwrap();
        let body: Value = serde_json::from_slice(&raw).unwrap();

        let got = parse_completion(&raw).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_choice_matches(label, &got, &body["choices"][0]);
        assert_usage_matches(label, &got.usage, &body["usage"]);
        assert_eq!(got.model, body["model"].as_str().unwrap(), "{label}: model");
        assert_eq!(
            got.finish_reason.as_deref(),
            entry["finish_reasons"][0].as_str(),
            "{label}: manifest finish reason"
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} recorded completions checked");
}

#[test]
fn parses_the_openapi_spec_examples() {
    let Some(dir) = wire_data() else { return };
    let mut checked = 0;
    for file in fs_err::read_dir(dir.join("openapi_examples")).unwrap() {
        let path = file.unwrap().path();
        let example = read_json(&path);
        let label = path.display().to_string();
        let response = &example["response"];
        match response {
            Value::String(abbreviated) => {
                // The spec abbreviates the stream: bare chunks and a "....".
                let body: String = abbreviated
                    .lines()
                    .filter(|line| line.starts_with('{'))
                    .map(|line| format!("data: {line}\n\n"))
                    .collect();
                let got = merge_sse(&body).unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(got.content.as_deref(), Some("Hello"), "{label}");
                assert_eq!(got.finish_reason.as_deref(), Some("stop"), "{label}");
            }
            _ => {
                let got = parse_completion(response.to_string().as_bytes())
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_choice_matches(&label, &got, &response["choices"][0]);
                assert_usage_matches(&label, &got.usage, &response["usage"]);
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} spec examples checked");
}
