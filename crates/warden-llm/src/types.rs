use std::time::Duration;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Instructions for the model.
    System(String),
    /// What the user (or the triggering alert) said.
    User(String),
    /// A previous model turn, replayed so the model sees its own tool calls.
    Assistant {
        /// Text the model produced, if any.
        content: Option<String>,
        /// Tool calls the model asked for.
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering the call with the same id.
    Tool {
        /// [`ToolCall::id`] this result answers.
        call_id: String,
        /// Tool output, usually JSON text.
        content: String,
    },
}

impl Message {
    /// The assistant turn that produced `response`, to append to the history
    /// before the tool results.
    ///
    /// ```
    /// use warden_llm::{Message, parse_completion};
    ///
    /// let body = br#"{"id":"c","object":"chat.completion","created":1,"model":"m",
    ///   "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
    /// let response = parse_completion(body)?;
    /// assert_eq!(
    ///     Message::assistant_from(&response),
    ///     Message::Assistant { content: Some("hi".into()), tool_calls: vec![] }
    /// );
    /// # Ok::<(), warden_llm::LlmError>(())
    /// ```
    pub fn assistant_from(response: &ChatResponse) -> Self {
        Self::Assistant {
            content: response.content.clone(),
            tool_calls: response.tool_calls.clone(),
        }
    }
}

/// A function the model asked to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// Call id chosen by the model; tool results refer to it.
    pub id: String,
    /// Function name, one of the [`ToolSpec::name`]s sent.
    pub name: String,
    /// Arguments as the raw JSON text the model produced. It may be invalid
    /// JSON or not match the schema: validate before use.
    pub arguments: String,
}

/// A function offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Function name (letters, digits, `_` and `-`, at most 64 characters).
    pub name: String,
    /// What the function does; the model reads this to decide when to call it.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// One chat completion request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Functions the model may call; empty for plain chat.
    pub tools: Vec<ToolSpec>,
    /// Whether the model may ask for several tool calls in one turn. Only
    /// sent when `tools` is not empty.
    pub parallel_tool_calls: bool,
    /// Use the streaming API and merge the deltas; the result is the same
    /// [`ChatResponse`].
    pub stream: bool,
}

/// The model's answer, from the first choice.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatResponse {
    /// Text answer, if any.
    pub content: Option<String>,
    /// Refusal text, when the model declined.
    pub refusal: Option<String>,
    /// Tool calls, in the order the model produced them.
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `length`, `tool_calls`, `content_filter`, ...
    pub finish_reason: Option<String>,
    /// Tokens used; zero when the server did not report usage.
    pub usage: Usage,
    /// Model name the server reported.
    pub model: String,
    /// Requests made, including retries (1 for parsed bodies).
    pub attempts: u32,
    /// Total time spent waiting between retries (backoff or `Retry-After`).
    pub retry_wait: Duration,
}

/// Token counts of one or more requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Prompt plus completion, as reported by the server.
    pub total_tokens: u64,
}

impl Usage {
    /// Cost in US dollars at `price`.
    ///
    /// ```
    /// use warden_llm::{Price, Usage};
    ///
    /// let usage = Usage { prompt_tokens: 1_000_000, completion_tokens: 500_000, total_tokens: 1_500_000 };
    /// let price = Price { prompt_usd_per_mtok: 0.15, completion_usd_per_mtok: 0.60 };
    /// assert!((usage.cost_usd(&price) - 0.45).abs() < 1e-9);
    /// ```
    #[allow(
        clippy::cast_precision_loss,
        reason = "token counts stay far below 2^52"
    )]
    pub fn cost_usd(&self, price: &Price) -> f64 {
        (self.prompt_tokens as f64 * price.prompt_usd_per_mtok
            + self.completion_tokens as f64 * price.completion_usd_per_mtok)
            / 1_000_000.0
    }

    /// Adds `other` to this running total.
    ///
    /// ```
    /// use warden_llm::Usage;
    ///
    /// let mut total = Usage::default();
    /// total.add(&Usage { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 });
    /// total.add(&Usage { prompt_tokens: 20, completion_tokens: 3, total_tokens: 23 });
    /// assert_eq!(total, Usage { prompt_tokens: 30, completion_tokens: 5, total_tokens: 35 });
    /// ```
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.total_tokens = self.total_tokens.saturating_add(other.total_tokens);
    }
}

/// Model price in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Price of one million prompt tokens.
    pub prompt_usd_per_mtok: f64,
    /// Price of one million generated tokens.
    pub completion_usd_per_mtok: f64,
}
