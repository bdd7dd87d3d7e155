//! Conversion between our types and async-openai's wire types.

use std::collections::BTreeMap;
use std::time::Duration;

use async_openai::types::chat::{
    ChatChoice, ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestToolMessage, ChatCompletionRequestToolMessageContent,
    ChatCompletionRequestUserMessage, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionTools, CompletionUsage, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, CreateChatCompletionResponse,
    CreateChatCompletionStreamResponse, FunctionCall, FunctionObject,
};
use serde_json::Value;

use crate::{ChatRequest, ChatResponse, LlmError, Message, ToolCall, Usage};

/// Which token-limit field the server understands.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TokenCap {
    /// `max_completion_tokens`: OpenAI and Azure (`max_tokens` is deprecated there).
    MaxCompletionTokens,
    /// `max_tokens`: what Ollama, llama.cpp and older vLLM read.
    MaxTokens,
}

pub(crate) fn build_request(
    model: &str,
    req: &ChatRequest,
    max_output_tokens: Option<u32>,
    cap: TokenCap,
) -> Result<CreateChatCompletionRequest, LlmError> {
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model(model)
        .messages(req.messages.iter().map(to_wire_message).collect::<Vec<_>>());
    if !req.tools.is_empty() {
        let tools: Vec<ChatCompletionTools> = req
            .tools
            .iter()
            .map(|tool| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: tool.name.clone(),
                        description: Some(tool.description.clone()),
                        parameters: Some(tool.parameters.clone()),
                        strict: None,
                    },
                })
            })
            .collect();
        // OpenAI rejects parallel_tool_calls without tools, so it rides along.
        args.tools(tools)
            .parallel_tool_calls(req.parallel_tool_calls);
    }
    if req.stream {
        args.stream(true)
            .stream_options(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            });
    }
    if let Some(limit) = max_output_tokens {
        match cap {
            TokenCap::MaxCompletionTokens => args.max_completion_tokens(limit),
            TokenCap::MaxTokens => args.max_tokens(limit),
        };
    }
    args.build()
        .map_err(|e| LlmError::config(format!("cannot build chat request: {e}")))
}

fn to_wire_message(message: &Message) -> ChatCompletionRequestMessage {
    match message {
        Message::System(text) => ChatCompletionRequestSystemMessage::from(text.as_str()).into(),
        Message::User(text) => ChatCompletionRequestUserMessage::from(text.as_str()).into(),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            #[allow(
                deprecated,
                reason = "function_call is a deprecated field of the wire type"
            )]
            let message = ChatCompletionRequestAssistantMessage {
                content: content
                    .as_deref()
                    .map(ChatCompletionRequestAssistantMessageContent::from),
                tool_calls: (!tool_calls.is_empty()).then(|| {
                    tool_calls
                        .iter()
                        .map(|call| {
                            ChatCompletionMessageToolCalls::Function(
                                ChatCompletionMessageToolCall {
                                    id: call.id.clone(),
                                    function: FunctionCall {
                                        name: call.name.clone(),
                                        arguments: call.arguments.clone(),
                                    },
                                },
                            )
                        })
                        .collect()
                }),
                ..Default::default()
            };
            message.into()
        }
        Message::Tool { call_id, content } => ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::from(content.as_str()),
            tool_call_id: call_id.clone(),
        }
        .into(),
    }
}

/// Parses a non-streaming `chat.completion` body; the first choice is kept.
///
/// ```
/// let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",
///   "choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,
///     "tool_calls":[{"id":"call_1","type":"function","function":{"name":"restart","arguments":"{\"unit\":\"nginx\"}"}}]}}],
///   "usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}"#;
/// let response = warden_llm::parse_completion(body)?;
/// assert_eq!(response.tool_calls[0].name, "restart");
/// assert_eq!(response.tool_calls[0].arguments, r#"{"unit":"nginx"}"#);
/// assert_eq!(response.usage.total_tokens, 49);
/// # Ok::<(), warden_llm::LlmError>(())
/// ```
pub fn parse_completion(body: &[u8]) -> Result<ChatResponse, LlmError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| LlmError::invalid(format!("chat.completion body is not JSON: {e}")))?;
    completion_from_value(value)
}

/// Finish reasons by choice index, as the raw strings the server sent.
type RawReasons = BTreeMap<u32, String>;

/// Takes `finish_reason` out of each choice before async-openai sees it: its
/// enum rejects values that compatible servers do send ("eos", "abort", ""),
/// and our API reports the string verbatim anyway.
fn take_finish_reasons(value: &mut Value) -> RawReasons {
    let mut reasons = RawReasons::new();
    let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) else {
        return reasons;
    };
    for (position, choice) in choices.iter_mut().enumerate() {
        let index = choice
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .or_else(|| u32::try_from(position).ok())
            .unwrap_or_default();
        if let Some(reason) = choice.get_mut("finish_reason") {
            if let Some(text) = reason.as_str().filter(|t| !t.is_empty()) {
                reasons.insert(index, text.to_owned());
            }
            *reason = Value::Null;
        }
    }
    reasons
}

/// An `{"error": {...}}` object where a completion or chunk was expected.
fn server_error(value: &Value) -> Option<LlmError> {
    let error = value.get("error")?;
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| error.to_string(), str::to_owned);
    Some(LlmError::invalid(format!(
        "server sent an error instead of a completion: {message}"
    )))
}

pub(crate) fn completion_from_value(mut value: Value) -> Result<ChatResponse, LlmError> {
    if let Some(error) = server_error(&value) {
        return Err(error);
    }
    let reasons = take_finish_reasons(&mut value);
    let response: CreateChatCompletionResponse = serde_json::from_value(value)
        .map_err(|e| LlmError::invalid(format!("not a chat.completion body: {e}")))?;
    from_completion(response, &reasons)
}

fn from_completion(
    response: CreateChatCompletionResponse,
    reasons: &RawReasons,
) -> Result<ChatResponse, LlmError> {
    let CreateChatCompletionResponse {
        choices,
        model,
        usage,
        ..
    } = response;
    let choice: ChatChoice = choices
        .into_iter()
        .min_by_key(|c| c.index)
        .ok_or_else(|| LlmError::invalid("chat.completion has no choices"))?;
    let tool_calls = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, call)| match call {
            ChatCompletionMessageToolCalls::Function(f) => ToolCall {
                id: id_or_synthetic(f.id, i),
                name: f.function.name,
                arguments: f.function.arguments,
            },
            ChatCompletionMessageToolCalls::Custom(c) => ToolCall {
                id: id_or_synthetic(c.id, i),
                name: c.custom_tool.name,
                arguments: c.custom_tool.input,
            },
        })
        .collect();
    Ok(ChatResponse {
        content: choice.message.content,
        refusal: choice.message.refusal,
        tool_calls,
        finish_reason: reasons.get(&choice.index).cloned(),
        usage: usage.map(to_usage).unwrap_or_default(),
        model,
        attempts: 1,
        retry_wait: Duration::ZERO,
    })
}

/// Some compatible servers omit tool call ids, but the tool result must name one.
fn id_or_synthetic(id: String, index: usize) -> String {
    if id.is_empty() {
        format!("call_{index}")
    } else {
        id
    }
}

fn to_usage(usage: CompletionUsage) -> Usage {
    Usage {
        prompt_tokens: u64::from(usage.prompt_tokens),
        completion_tokens: u64::from(usage.completion_tokens),
        total_tokens: u64::from(usage.total_tokens),
    }
}

/// Merges the deltas of a streamed completion into one answer.
#[derive(Debug, Default)]
pub(crate) struct StreamMerger {
    model: String,
    choices: BTreeMap<u32, ChoiceState>,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct ChoiceState {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u32, ToolCall>,
    finish_reason: Option<String>,
}

impl StreamMerger {
    pub(crate) fn push(
        &mut self,
        (chunk, reasons): (CreateChatCompletionStreamResponse, RawReasons),
    ) {
        if self.model.is_empty() {
            self.model = chunk.model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(to_usage(usage));
        }
        for choice in chunk.choices {
            let state = self.choices.entry(choice.index).or_default();
            let delta = choice.delta;
            if let Some(text) = delta.content {
                state
                    .content
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            if let Some(text) = delta.refusal {
                state
                    .refusal
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            for call in delta.tool_calls.unwrap_or_default() {
                let slot = state
                    .tool_calls
                    .entry(call.index)
                    .or_insert_with(|| ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                // Ids and names arrive whole in their first delta; some
                // servers repeat them on every delta, so only the first counts.
                if let Some(id) = call.id.filter(|id| !id.is_empty())
                    && slot.id.is_empty()
                {
                    slot.id = id;
                }
                if let Some(function) = call.function {
                    if let Some(name) = function.name.filter(|n| !n.is_empty())
                        && slot.name.is_empty()
                    {
                        slot.name = name;
                    }
                    if let Some(arguments) = function.arguments {
                        slot.arguments.push_str(&arguments);
                    }
                }
            }
            if let Some(reason) = reasons.get(&choice.index) {
                state.finish_reason = Some(reason.clone());
            }
        }
    }

    pub(crate) fn finish(mut self) -> Result<ChatResponse, LlmError> {
        let (_, choice) = self
            .choices
            .pop_first()
            .ok_or_else(|| LlmError::invalid("stream ended without any choice delta"))?;
        Ok(ChatResponse {
            content: choice.content,
            refusal: choice.refusal,
            tool_calls: choice
                .tool_calls
                .into_values()
                .enumerate()
                .map(|(i, mut call)| {
                    call.id = id_or_synthetic(call.id, i);
                    call
                })
                .collect(),
            finish_reason: choice.finish_reason,
            usage: self.usage.unwrap_or_default(),
            model: self.model,
            attempts: 1,
            retry_wait: Duration::ZERO,
        })
    }
}

/// One streamed chunk, with its raw finish reasons.
pub(crate) fn chunk_from_value(
    mut value: Value,
) -> Result<(CreateChatCompletionStreamResponse, RawReasons), LlmError> {
    // A stream can end with an error object instead of a chunk.
    if let Some(error) = server_error(&value) {
        return Err(error);
    }
    let reasons = take_finish_reasons(&mut value);
    let chunk = serde_json::from_value(value)
        .map_err(|e| LlmError::invalid(format!("not a chat.completion.chunk: {e}")))?;
    Ok((chunk, reasons))
}

/// Merges a recorded streaming body (`data: {...}` server-sent events ending
/// with `data: [DONE]`) into one answer, like the streaming client does.
/// Tool-call deltas are merged by their `index`; the first choice is kept.
///
/// ```
/// let body = concat!(
///     "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
///     "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n",
///     "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
///     "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
///     "data: [DONE]\n\n",
/// );
/// let response = warden_llm::merge_sse(body)?;
/// assert_eq!(response.content.as_deref(), Some("Hello"));
/// assert_eq!(response.finish_reason.as_deref(), Some("stop"));
/// # Ok::<(), warden_llm::LlmError>(())
/// ```
pub fn merge_sse(body: &str) -> Result<ChatResponse, LlmError> {
    let mut merger = StreamMerger::default();
    for data in sse_data(body) {
        if data == "[DONE]" {
            break;
        }
        let value: Value = serde_json::from_str(&data)
            .map_err(|e| LlmError::invalid(format!("stream event is not JSON: {e}")))?;
        merger.push(chunk_from_value(value)?);
    }
    merger.finish()
}

/// The `data` payloads of an SSE body, one per event (multi-line data joined
/// with `\n`, per the SSE spec).
fn sse_data(body: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        if line.is_empty() {
            events.extend(current.take());
            continue;
        }
        if let Some(rest) = line.strip_prefix("data:") {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match current.as_mut() {
                Some(data) => {
                    data.push('\n');
                    data.push_str(rest);
                }
                None => current = Some(rest.to_owned()),
            }
        }
        // `event:`, `id:`, `retry:` and `:` comments carry nothing we use.
    }
    events.extend(current);
    events
}
