//! ChatClient against the scripted loopback server: request bodies, auth
//! schemes, retries, timeouts and streaming.

use std::time::Duration;

use serde_json::json;
use warden_fakes::openai::{ExpectAuth, FakeOpenAi, Reply};
use warden_llm::{
    AzureAuth, ChatClient, ChatRequest, LlmConfig, LlmError, Message, Price, Provider, ToolCall,
    ToolSpec,
};

fn compatible(fake: &FakeOpenAi, api_key: Option<&str>) -> LlmConfig {
    LlmConfig::new(
        Provider::Compatible {
            base_url: fake.base_url(),
            api_key: api_key.map(str::to_owned),
        },
        "qwen2.5:7b",
    )
}

fn azure(fake: &FakeOpenAi, auth: AzureAuth) -> LlmConfig {
    LlmConfig::new(
        Provider::Azure {
            endpoint: fake.endpoint(),
            deployment: "gpt4o-prod".into(),
            api_version: "2024-10-21".into(),
            auth,
        },
        "gpt-4o",
    )
}

fn restart_tool() -> ToolSpec {
    ToolSpec {
        name: "restart_service".into(),
        description: "Restart a systemd unit on a host".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "host": {"type": "string"},
                "unit": {"type": "string", "pattern": "^[a-z0-9@._-]+$"}
            },
            "required": ["host", "unit"],
            "additionalProperties": false
        }),
    }
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::System("You operate a web fleet.".into()),
            Message::User(text.into()),
        ],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn sends_tools_as_json_schema_and_returns_the_tool_call() {
    let fake = FakeOpenAi::start_with(
        vec![Reply::tool_calls(&[(
            "call_1",
            "restart_service",
            r#"{"host":"web-3","unit":"nginx"}"#,
        )])],
        ExpectAuth::Bearer("sk-test".into()),
    );
    let mut config = compatible(&fake, Some("sk-test"));
    config.price = Some(Price {
        prompt_usd_per_mtok: 1.0,
        completion_usd_per_mtok: 2.0,
    });
    let client = ChatClient::new(config).unwrap();
    let mut req = ask("nginx on web-3 returns 502");
    req.tools = vec![restart_tool()];

    let response = client.complete(&req).await.unwrap();

    assert_eq!(
        response.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "restart_service".into(),
            arguments: r#"{"host":"web-3","unit":"nginx"}"#.into(),
        }]
    );
    assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(response.attempts, 1);
    assert_eq!(response.usage.prompt_tokens, 20);
    assert_eq!(response.usage.completion_tokens, 10);
    let cost = response
        .usage
        .cost_usd(client.config().price.as_ref().unwrap());
    assert!((cost - 40e-6).abs() < 1e-12, "{cost}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(sent.body["model"], "qwen2.5:7b");
    assert_eq!(
        sent.body["messages"],
        json!([
            {"role": "system", "content": "You operate a web fleet."},
            {"role": "user", "content": "nginx on web-3 returns 502"}
        ])
    );
    assert_eq!(
        sent.body["tools"],
        json!([{
            "type": "function",
            "function": {
                "name": "restart_service",
                "description": "Restart a systemd unit on a host",
                "parameters": restart_tool().parameters
            }
        }])
    );
    assert_eq!(sent.body["parallel_tool_calls"], false);
    assert!(sent.body.get("stream").is_none_or(|s| s == false));
}

#[tokio::test]
async fn replays_tool_calls_and_results_in_the_next_turn() {
    let fake = FakeOpenAi::start(vec![Reply::Text("nginx is back".into())]);
    let client = ChatClient::new(compatible(&fake, None)).unwrap();
    let mut req = ask("nginx on web-3 returns 502");
    req.messages.push(Message::Assistant {
        content: None,
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "restart_service".into(),
            arguments: r#"{"host":"web-3","unit":"nginx"}"#.into(),
        }],
    });
    req.messages.push(Message::Tool {
        call_id: "call_1".into(),
        content: r#"{"status":"denied","reason":"change freeze"}"#.into(),
    });

    let response = client.complete(&req).await.unwrap();

    assert_eq!(response.content.as_deref(), Some("nginx is back"));
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.body["messages"][2],
        json!({
            "role": "assistant",
            "tool_calls": [{
                "id": "call_1",
                "type": "function",
                "function": {"name": "restart_service", "arguments": r#"{"host":"web-3","unit":"nginx"}"#}
            }]
        })
    );
    assert_eq!(
        sent.body["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": r#"{"status":"denied","reason":"change freeze"}"#})
    );
    assert!(sent.body.get("tools").is_none());
    assert!(sent.body.get("parallel_tool_calls").is_none());
    assert_eq!(
        sent.header("authorization"),
        None,
        "keyless servers get no auth header"
    );
}

#[tokio::test]
async fn calls_azure_deployments_with_the_api_key_header() {
    let fake = FakeOpenAi::start_with(
        vec![Reply::Text("hello".into())],
        ExpectAuth::ApiKey("azure-key".into()),
    );
    let mut config = azure(&fake, AzureAuth::ApiKey("azure-key".into()));
    config.max_output_tokens = Some(256);
    let client = ChatClient::new(config).unwrap();

    let response = client.complete(&ask("hi")).await.unwrap();

    assert_eq!(response.content.as_deref(), Some("hello"));
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.path,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(sent.header("api-key"), Some("azure-key"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["max_completion_tokens"], 256);
    assert!(sent.body.get("max_tokens").is_none());
}

#[tokio::test]
async fn calls_azure_with_an_entra_id_bearer_token() {
    let fake = FakeOpenAi::start_with(
        vec![Reply::Text("hello".into())],
        ExpectAuth::Bearer("eyJ0eXAi.token".into()),
    );
    let client = ChatClient::new(azure(&fake, AzureAuth::Bearer("eyJ0eXAi.token".into()))).unwrap();

    client.complete(&ask("hi")).await.unwrap();

    let sent = &fake.requests()[0];
    assert!(
        sent.path
            .starts_with("/openai/deployments/gpt4o-prod/chat/completions?")
    );
    assert_eq!(sent.header("authorization"), Some("Bearer eyJ0eXAi.token"));
    assert_eq!(sent.header("api-key"), None);
}

#[tokio::test]
async fn sends_max_tokens_to_compatible_servers() {
    let fake = FakeOpenAi::start(vec![Reply::Text("ok".into())]);
    let mut config = compatible(&fake, None);
    config.max_output_tokens = Some(64);
    ChatClient::new(config)
        .unwrap()
        .complete(&ask("hi"))
        .await
        .unwrap();
    let sent = &fake.requests()[0];
    assert_eq!(sent.body["max_tokens"], 64);
    assert!(sent.body.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn honours_retry_after_on_429_then_succeeds() {
    let fake = FakeOpenAi::start(vec![
        Reply::Status {
            code: 429,
            retry_after: Some("1".into()),
            body: json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}})
                .to_string(),
        },
        Reply::Text("ok".into()),
    ]);
    let client = ChatClient::new(compatible(&fake, None)).unwrap();

    let response = client.complete(&ask("hi")).await.unwrap();

    assert_eq!(response.content.as_deref(), Some("ok"));
    assert_eq!(response.attempts, 2);
    assert_eq!(
        response.retry_wait,
        Duration::from_secs(1),
        "the server's Retry-After, not a backoff"
    );
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.requests()[0].body, fake.requests()[1].body);
}

#[tokio::test]
async fn reports_rate_limiting_once_retries_run_out() {
    let limited = || Reply::Status {
        code: 429,
        retry_after: Some("0".into()),
        body: json!({"error": {"message": "Rate limit reached for gpt-4o", "type": "requests"}})
            .to_string(),
    };
    let fake = FakeOpenAi::start(vec![limited(), limited(), Reply::Text("never".into())]);
    let mut config = compatible(&fake, None);
    config.max_retries = 1;

    let err = ChatClient::new(config)
        .unwrap()
        .complete(&ask("hi"))
        .await
        .unwrap_err();

    match err {
        LlmError::RateLimited {
            retry_after,
            attempts,
            message,
        } => {
            assert_eq!(retry_after, Some(Duration::ZERO));
            assert_eq!(attempts, 2);
            assert_eq!(message, "Rate limit reached for gpt-4o");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(fake.remaining(), 1);
}

#[tokio::test]
async fn does_not_retry_an_exhausted_quota() {
    let fake = FakeOpenAi::start(vec![
        Reply::Status {
            code: 429,
            retry_after: None,
            body: json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}})
                .to_string(),
        },
        Reply::Text("never".into()),
    ]);
    let err = ChatClient::new(compatible(&fake, None))
        .unwrap()
        .complete(&ask("hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Status { status: 429, message } if message.contains("quota")),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn retries_a_server_error_with_backoff() {
    let fake = FakeOpenAi::start(vec![
        Reply::error(
            500,
            "The server had an error while processing your request.",
        ),
        Reply::Text("recovered".into()),
    ]);
    let client = ChatClient::new(compatible(&fake, None)).unwrap();

    let response = client.complete(&ask("hi")).await.unwrap();

    assert_eq!(response.content.as_deref(), Some("recovered"));
    assert_eq!(response.attempts, 2);
    assert!(response.retry_wait > Duration::ZERO);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn surfaces_the_error_message_of_a_400_without_retrying() {
    let fake = FakeOpenAi::start(vec![
        Reply::error(
            400,
            "Invalid schema for function 'restart_service': 'pattern' is not permitted.",
        ),
        Reply::Text("never".into()),
    ]);
    let err = ChatClient::new(compatible(&fake, None))
        .unwrap()
        .complete(&ask("hi"))
        .await
        .unwrap_err();
    match &err {
        LlmError::Status { status, message } => {
            assert_eq!(*status, 400);
            assert_eq!(
                message,
                "Invalid schema for function 'restart_service': 'pattern' is not permitted."
            );
        }
        other => panic!("expected Status, got {other:?}"),
    }
    assert!(err.to_string().contains("400"), "{err}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn times_out_a_hung_server_on_every_attempt() {
    let fake = FakeOpenAi::start(vec![Reply::Hang, Reply::Hang, Reply::Text("never".into())]);
    let mut config = compatible(&fake, None);
    config.timeout = Duration::from_millis(300);
    config.max_retries = 1;

    let err = ChatClient::new(config)
        .unwrap()
        .complete(&ask("hi"))
        .await
        .unwrap_err();

    match err {
        LlmError::Timeout { after, attempts } => {
            assert_eq!(after, Duration::from_millis(300));
            assert_eq!(attempts, 2);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn reports_an_exhausted_script_as_a_server_error() {
    let fake = FakeOpenAi::start(vec![]);
    let mut config = compatible(&fake, None);
    config.max_retries = 0;
    let err = ChatClient::new(config)
        .unwrap()
        .complete(&ask("hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Status { status: 500, message } if message.contains("script exhausted")),
        "{err:?}"
    );
}

#[tokio::test]
async fn reports_a_refused_connection_as_a_transport_error() {
    let fake = FakeOpenAi::start(vec![]);
    let mut config = compatible(&fake, None);
    config.max_retries = 0;
    drop(fake);
    let err = ChatClient::new(config)
        .unwrap()
        .complete(&ask("hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, LlmError::Transport { attempts: 1, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn streams_parallel_tool_calls_and_merges_them() {
    let fake = FakeOpenAi::start(vec![Reply::tool_calls(&[
        (
            "call_a",
            "check_disk",
            r#"{"host":"web-3","min_free_pct":10}"#,
        ),
        ("call_b", "tail_logs", r#"{"unit":"nginx","lines":50}"#),
    ])]);
    let client = ChatClient::new(compatible(&fake, None)).unwrap();
    let mut req = ask("web-3 is slow");
    req.tools = vec![restart_tool()];
    req.parallel_tool_calls = true;
    req.stream = true;

    let response = client.complete(&req).await.unwrap();

    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "check_disk".into(),
                arguments: r#"{"host":"web-3","min_free_pct":10}"#.into(),
            },
            ToolCall {
                id: "call_b".into(),
                name: "tail_logs".into(),
                arguments: r#"{"unit":"nginx","lines":50}"#.into(),
            },
        ]
    );
    assert_eq!(response.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(response.usage.total_tokens, 40);
    let sent = &fake.requests()[0];
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent.body["parallel_tool_calls"], true);
}

#[tokio::test]
async fn streams_text_answers() {
    let fake = FakeOpenAi::start(vec![Reply::Text("rotate the nginx logs".into())]);
    let client = ChatClient::new(compatible(&fake, None)).unwrap();
    let mut req = ask("disk full");
    req.stream = true;

    let response = client.complete(&req).await.unwrap();

    assert_eq!(response.content.as_deref(), Some("rotate the nginx logs"));
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert_eq!(response.usage.completion_tokens, 4);
    assert_eq!(response.model, "qwen2.5:7b");
}

#[test]
fn client_is_cheap_to_share_across_tasks() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<ChatClient>();
}
