//! `http-action`: change something through a service's HTTP control
//! endpoint (restart a worker pool, flush a cache, scale a deployment),
//! through the host's gated `wasi:http`. It is a mutating tool: the policy
//! decides each call (approval in prod), and in a dry run it only reports
//! the request it would send.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_pdk::http::{HttpError, Request};
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};

/// The tool.
pub struct HttpAction;

/// HTTP method of the action.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// Create or trigger (default).
    #[default]
    Post,
    /// Replace.
    Put,
    /// Update in part.
    Patch,
    /// Remove.
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The request to send.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Absolute `http://` or `https://` URL of the control endpoint.
    #[schemars(length(min = 8), regex(pattern = r"^[hH][tT][tT][pP][sS]?://"))]
    pub url: String,
    /// `POST` (default), `PUT`, `PATCH` or `DELETE`.
    #[serde(default)]
    pub method: Method,
    /// JSON body to send, if any.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Status codes that mean success; default any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Request timeout in milliseconds (default 10 000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300000))]
    pub timeout_ms: Option<u64>,
}

/// What happened.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// The endpoint answered with an expected status (always false in a dry run).
    pub ok: bool,
    /// True when nothing was sent.
    pub dry_run: bool,
    /// Method and URL.
    pub request: String,
    /// Status code, when a response arrived.
    pub status: Option<u16>,
    /// The response body parsed as JSON, else its first 512 bytes as text.
    pub response: Option<serde_json::Value>,
}

impl Tool for HttpAction {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "http-action";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Call a service's control endpoint (POST/PUT/PATCH/DELETE with a JSON body) to remediate: restart, flush, scale. Mutating; a dry run reports the request without sending it.";
    const EFFECT: Effect = Effect::Mutating;
    const SUPPORTS_DRY_RUN: bool = true;

    fn capabilities() -> Vec<Capability> {
        // The URL comes from the plan; the host's policy decides each request.
        vec![Capability::Http {
            hosts: vec!["*".into()],
        }]
    }

    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let request_line = format!("{} {}", input.method.as_str(), input.url);
        if ctx.dry_run {
            return Ok(Output {
                ok: false,
                dry_run: true,
                request: request_line,
                status: None,
                response: None,
            });
        }
        let mut request = Request::new(input.method.as_str(), &input.url)
            .timeout(Duration::from_millis(input.timeout_ms.unwrap_or(10_000)));
        for (k, v) in &input.headers {
            request = request.header(k, v);
        }
        if let Some(body) = &input.body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| ToolError::InvalidInput(format!("body: {e}")))?;
            request = request
                .header("content-type", "application/json")
                .body(bytes);
        }
        let response = match request.send() {
            Ok(r) => r,
            Err(HttpError::InvalidUrl(m)) => return Err(ToolError::InvalidInput(m)),
            Err(HttpError::Denied) => return Err(HttpError::Denied.into()),
            // A mutating call that did not get through is a failure, never a result.
            Err(e) => return Err(ToolError::Failed(format!("{request_line}: {e}"))),
        };
        let ok = if input.expect_status.is_empty() {
            (200..300).contains(&response.status)
        } else {
            input.expect_status.contains(&response.status)
        };
        let parsed = serde_json::from_slice(&response.body).ok().or_else(|| {
            let n = response.body.len().min(512);
            (n > 0).then(|| {
                serde_json::Value::String(String::from_utf8_lossy(&response.body[..n]).into_owned())
            })
        });
        if !ok {
            return Err(ToolError::Failed(format!(
                "{request_line} answered {}{}",
                response.status,
                parsed.map(|p| format!(": {p}")).unwrap_or_default()
            )));
        }
        Ok(Output {
            ok,
            dry_run: false,
            request: request_line,
            status: Some(response.status),
            response: parsed,
        })
    }
}

export_tool!(HttpAction);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_sends_nothing_and_says_what_it_would_do() {
        let ctx = Context {
            dry_run: true,
            ..Context::default()
        };
        let input: Input = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:9/admin/restart", "method": "POST", "body": {"pool": "db"}
        }))
        .unwrap();
        let out = HttpAction::invoke(&ctx, input).unwrap();
        assert!(out.dry_run);
        assert!(!out.ok);
        assert_eq!(out.request, "POST http://127.0.0.1:9/admin/restart");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<Input, _> =
            serde_json::from_value(serde_json::json!({"url": "http://x/y", "verb": "POST"}));
        assert!(r.is_err());
    }
}
