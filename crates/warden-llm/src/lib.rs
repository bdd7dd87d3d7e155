//! Chat and tool calling for warden agents, over any OpenAI-compatible API
//! (OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp), with token and cost
//! accounting.
//!
//! [async-openai](https://docs.rs/async-openai) speaks the wire format; none
//! of its types appear here. Retries (429 with `Retry-After`, 5xx, connection
//! errors, timeouts) are ours, so their behaviour is predictable and logged:
//! each [`ChatClient::complete`] runs in one `llm.chat` tracing span carrying
//! model, attempt and token counts.
//!
//! HTTPS goes through one rustls setup (ring, the Mozilla roots and an
//! optional extra CA bundle, [`LlmConfig::extra_ca_file`] or
//! `WARDEN_EXTRA_CA_FILE`), the same as the sandbox's, so the client never
//! depends on which crypto provider a process happens to have installed.
//!
//! ```
//! use warden_llm::{Message, Price, merge_sse};
//!
//! // A recorded streaming answer with two parallel tool calls, split across deltas.
//! let chunk = |delta: &str| format!(
//!     "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{delta}]}}\n\n"
//! );
//! let body = [
//!     chunk(r#"{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"ping","arguments":"{\"host\":"}}]}}"#),
//!     chunk(r#"{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"df","arguments":"{}"}}]}}"#),
//!     chunk(r#"{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"web-3\"}"}}]}}"#),
//!     chunk(r#"{"index":0,"delta":{},"finish_reason":"tool_calls"}"#),
//!     "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":100,\"total_tokens\":1100}}\n\ndata: [DONE]\n\n".to_owned(),
//! ]
//! .concat();
//!
//! let response = merge_sse(&body)?;
//! assert_eq!(response.tool_calls.len(), 2);
//! assert_eq!(response.tool_calls[0].arguments, r#"{"host":"web-3"}"#);
//! assert_eq!(response.tool_calls[1].name, "df");
//!
//! let price = Price { prompt_usd_per_mtok: 0.15, completion_usd_per_mtok: 0.60 };
//! assert!((response.usage.cost_usd(&price) - 0.00021).abs() < 1e-12);
//!
//! // Replay the turn, then answer each call.
//! let history = vec![
//!     Message::assistant_from(&response),
//!     Message::Tool { call_id: "call_a".into(), content: r#"{"up":true}"#.into() },
//! ];
//! assert_eq!(history.len(), 2);
//! # Ok::<(), warden_llm::LlmError>(())
//! ```
#![deny(missing_docs)]

mod client;
mod config;
mod error;
mod retry;
mod tls;
mod types;
mod wire;

pub use client::ChatClient;
pub use config::{AzureAuth, LlmConfig, Provider};
pub use error::LlmError;
pub use types::{ChatRequest, ChatResponse, Message, Price, ToolCall, ToolSpec, Usage};
pub use wire::{merge_sse, parse_completion};
