//! `notify`: tell people what happened. Posts a message to Slack (Block
//! Kit), Microsoft Teams (an Adaptive Card through an incoming webhook) or
//! any JSON webhook.
//!
//! The webhook URL carries a token, so it never passes through the plugin:
//! the operator registers it on the host as a named secret
//! (`SandboxConfig::secret`), the input names the secret, and the plugin
//! sends to `https://<name>.secret.warden/`. Output and errors name the
//! secret, never the URL. A mutating tool: a dry run returns the payload
//! it would send and sends nothing. When the host keeps an outbox and the
//! webhook cannot be reached, the host answers `202` with `x-warden-outbox`
//! and the output says `queued` with the entry's id instead of `sent`.

mod format;

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use warden_pdk::http::{HttpError, Request};
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};

use format::Message;

/// Most fields a message may carry (Slack allows 50 blocks of 10).
const MAX_FIELDS: usize = 40;

/// The tool.
pub struct Notify;

/// Where the message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A Slack incoming webhook (Block Kit).
    Slack,
    /// A Microsoft Teams incoming webhook or workflow (Adaptive Card 1.4).
    Teams,
    /// Any receiver of a plain JSON document.
    Webhook,
}

/// How bad it is; sets the colour or emoji.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is down or about to be.
    Critical,
    /// Something needs attention.
    Warning,
    /// For information (default).
    #[default]
    Info,
    /// Resolved or healthy.
    Ok,
}

/// A link shown with the message (a runbook, a dashboard).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Text of the link.
    pub title: String,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
}

/// The message.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// `slack`, `teams` or `webhook`.
    pub target: Target,
    /// Name of the host-side secret that holds the webhook URL.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub secret: String,
    /// Headline.
    pub title: String,
    /// Body, in markdown (converted to Slack mrkdwn for Slack).
    pub text: String,
    /// `critical`, `warning`, `info` (default) or `ok`.
    #[serde(default)]
    pub severity: Severity,
    /// Key facts, shown as a table (at most 40).
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// A link to show with the message.
    #[serde(default)]
    pub link: Option<Link>,
}

/// What happened; never contains the webhook URL.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The receiver accepted the message.
    pub sent: bool,
    /// True when nothing was sent.
    pub dry_run: bool,
    /// The format used.
    pub target: Target,
    /// Status code of the receiver's answer, when one arrived.
    pub status: Option<u16>,
    /// Size of the JSON payload.
    pub payload_bytes: usize,
    /// The receiver could not be reached, and the host queued the message
    /// in its outbox to deliver later (`status` is then 202).
    pub queued: bool,
    /// The outbox entry, when queued (the `Idempotency-Key` it is
    /// delivered with).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_id: Option<String>,
    /// In a dry run, the payload that would be sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

impl Tool for Notify {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "notify";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Post a message (title, markdown text, severity, key fields, a link) to Slack, Microsoft Teams or a JSON webhook whose URL the host holds as a named secret. Mutating; a dry run returns the payload without sending it. When the webhook cannot be reached the host may queue the message (`queued`: true) and deliver it later.";
    const EFFECT: Effect = Effect::Mutating;
    const SUPPORTS_DRY_RUN: bool = true;

    fn capabilities() -> Vec<Capability> {
        // Which secrets exist is the operator's choice; the gate decides each send.
        vec![Capability::Http {
            hosts: vec![format!("*{}", warden_pdk::http::SECRET_SUFFIX)],
        }]
    }

    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let payload = payload(&input)?;
        let bytes = serde_json::to_vec(&payload)
            .map_err(|e| ToolError::Failed(format!("encoding the payload: {e}")))?;
        if ctx.dry_run {
            return Ok(Output {
                sent: false,
                dry_run: true,
                target: input.target,
                status: None,
                payload_bytes: bytes.len(),
                queued: false,
                outbox_id: None,
                payload: Some(payload),
            });
        }
        let payload_bytes = bytes.len();
        let name = &input.secret;
        let mut request = Request::to_secret("POST", name)
            .header("content-type", "application/json")
            .body(bytes)
            .timeout(Duration::from_secs(10));
        request.max_body = 64 << 10;
        let response = match request.send() {
            Ok(r) => r,
            Err(HttpError::Denied) => {
                return Err(ToolError::Denied(format!(
                    "sending to the webhook in secret `{name}` was refused"
                )));
            }
            Err(HttpError::InvalidUrl(m)) => return Err(ToolError::InvalidInput(m)),
            Err(e) => {
                return Err(ToolError::Failed(format!(
                    "could not reach the webhook in secret `{name}`: {e}"
                )));
            }
        };
        if !(200..300).contains(&response.status) {
            return Err(ToolError::Failed(format!(
                "the webhook in secret `{name}` answered {}: {}",
                response.status,
                excerpt(&response.body)
            )));
        }
        // The host's outbox answers 202 with the entry's id when the
        // webhook could not be reached: the message is queued, not sent.
        let outbox_id = (response.status == 202)
            .then(|| response.header("x-warden-outbox").map(str::to_string))
            .flatten();
        Ok(Output {
            sent: outbox_id.is_none(),
            dry_run: false,
            target: input.target,
            status: Some(response.status),
            payload_bytes,
            queued: outbox_id.is_some(),
            outbox_id,
            payload: None,
        })
    }
}

/// Check the input and render it for its target.
fn payload(input: &Input) -> Result<Value, ToolError> {
    let invalid = |m: String| Err(ToolError::InvalidInput(m));
    if input.title.trim().is_empty() {
        return invalid("title is empty".into());
    }
    if input.text.trim().is_empty() {
        return invalid("text is empty".into());
    }
    if !valid_secret_name(&input.secret) {
        return invalid(format!(
            "secret name `{}` must be lowercase letters, digits or `-`",
            input.secret
        ));
    }
    if input.fields.len() > MAX_FIELDS {
        return invalid(format!(
            "{} fields given, at most {MAX_FIELDS} fit in a message",
            input.fields.len()
        ));
    }
    if let Some(link) = &input.link {
        let lower = link.url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://"))
            || link.url.contains(char::is_whitespace)
        {
            return invalid(format!(
                "link url `{}` must be an absolute http:// or https:// URL",
                link.url
            ));
        }
        if link.title.trim().is_empty() {
            return invalid("link title is empty".into());
        }
    }
    let fields: Vec<(String, String)> = input
        .fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect();
    let message = Message {
        title: input.title.trim(),
        text: &input.text,
        severity: input.severity,
        fields: &fields,
        link: input.link.as_ref(),
    };
    Ok(match input.target {
        Target::Slack => format::slack(&message),
        Target::Teams => format::teams(&message),
        Target::Webhook => format::webhook(&message),
    })
}

/// The host's rule for secret names: a DNS label.
fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The first 200 characters of a response body, on one line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "(empty body)".into();
    }
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

export_tool!(Notify);

#[cfg(test)]
mod tests;
