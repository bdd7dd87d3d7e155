//! `http-probe`: GET or HEAD a URL through the host's gated `wasi:http` and
//! check what came back (status, latency budget, body substring or regex,
//! required headers). A failed check or an unreachable endpoint is a result
//! (`ok: false` with the reason), not an error: the probe did its job.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warden_pdk::http::{HttpError, Request};
use warden_pdk::{Capability, Context, Tool, ToolError, export_tool};

/// The tool.
pub struct HttpProbe;

/// HTTP method of the probe.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// Fetch status, headers and body.
    #[default]
    Get,
    /// Fetch status and headers only.
    Head,
}

/// What to probe and what to expect.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Absolute `http://` or `https://` URL.
    #[schemars(length(min = 8), regex(pattern = r"^[hH][tT][tT][pP][sS]?://"))]
    pub url: String,
    /// `GET` (default) or `HEAD`.
    #[serde(default)]
    pub method: Method,
    /// Acceptable status codes; default: any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Latency budget in milliseconds; slower is a failed check.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub latency_budget_ms: Option<u64>,
    /// The body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// The body must match this regular expression.
    #[serde(default)]
    pub body_regex: Option<String>,
    /// Headers the response must carry; a non-empty value must match exactly.
    #[serde(default)]
    pub required_headers: BTreeMap<String, String>,
    /// Request headers to send.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Connect and first-byte timeout in milliseconds (default 5000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 600000))]
    pub timeout_ms: Option<u64>,
}

/// One check and how it went.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Check {
    /// `status`, `latency`, `body_contains`, `body_regex` or `header:<name>`.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was expected and what was seen.
    pub detail: String,
}

/// What the probe saw.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    /// True when the request completed and every check passed.
    pub ok: bool,
    /// The URL probed.
    pub url: String,
    /// Status code, when a response arrived.
    pub status: Option<u16>,
    /// Time to the complete response, in milliseconds.
    pub latency_ms: f64,
    /// Body size in bytes.
    pub body_bytes: usize,
    /// The first 256 bytes of the body, lossily decoded.
    pub body_excerpt: String,
    /// Each check.
    pub checks: Vec<Check>,
    /// Transport error (connection refused, timeout, DNS), if any.
    pub error: Option<String>,
}

impl Tool for HttpProbe {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "http-probe";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Probe an HTTP endpoint (GET or HEAD) and check status, latency budget, body text or regex, and required headers; returns timings and each check.";

    fn capabilities() -> Vec<Capability> {
        // The URL comes from the caller, so any host may be named; the host's
        // policy decides each request (and its SSRF guard applies).
        vec![Capability::Http {
            hosts: vec!["*".into()],
        }]
    }

    fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let regex = match &input.body_regex {
            Some(r) => Some(
                regex_lite::Regex::new(r)
                    .map_err(|e| ToolError::InvalidInput(format!("body_regex: {e}")))?,
            ),
            None => None,
        };
        let method = match input.method {
            Method::Get => "GET",
            Method::Head => "HEAD",
        };
        let mut request = Request::new(method, &input.url)
            .timeout(Duration::from_millis(input.timeout_ms.unwrap_or(5000)));
        for (k, v) in &input.headers {
            request = request.header(k, v);
        }
        let started = Instant::now();
        let result = request.send();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let response = match result {
            Ok(r) => r,
            Err(HttpError::Denied) => return Err(HttpError::Denied.into()),
            Err(HttpError::InvalidUrl(m)) => return Err(ToolError::InvalidInput(m)),
            Err(e) => {
                return Ok(Output {
                    ok: false,
                    url: input.url,
                    status: None,
                    latency_ms,
                    body_bytes: 0,
                    body_excerpt: String::new(),
                    checks: Vec::new(),
                    error: Some(e.to_string()),
                });
            }
        };
        Ok(evaluate(&input, regex.as_ref(), &response, latency_ms))
    }
}

fn evaluate(
    input: &Input,
    regex: Option<&regex_lite::Regex>,
    response: &warden_pdk::http::Response,
    latency_ms: f64,
) -> Output {
    let body = String::from_utf8_lossy(&response.body);
    let mut checks = Vec::new();
    let status_ok = if input.expect_status.is_empty() {
        (200..300).contains(&response.status)
    } else {
        input.expect_status.contains(&response.status)
    };
    checks.push(Check {
        name: "status".into(),
        ok: status_ok,
        detail: if input.expect_status.is_empty() {
            format!("got {}, expected 2xx", response.status)
        } else {
            format!(
                "got {}, expected one of {:?}",
                response.status, input.expect_status
            )
        },
    });
    if let Some(budget) = input.latency_budget_ms {
        checks.push(Check {
            name: "latency".into(),
            ok: latency_ms <= budget as f64,
            detail: format!("{latency_ms:.1} ms against a budget of {budget} ms"),
        });
    }
    if let Some(needle) = &input.body_contains {
        let ok = body.contains(needle.as_str());
        checks.push(Check {
            name: "body_contains".into(),
            ok,
            detail: format!("body {} `{needle}`", if ok { "contains" } else { "lacks" }),
        });
    }
    if let (Some(re), Some(pattern)) = (regex, &input.body_regex) {
        let ok = re.is_match(&body);
        checks.push(Check {
            name: "body_regex".into(),
            ok,
            detail: format!(
                "body {} /{pattern}/",
                if ok { "matches" } else { "does not match" }
            ),
        });
    }
    for (name, want) in &input.required_headers {
        let got = response.header(name);
        let ok = match got {
            Some(v) => want.is_empty() || v == want,
            None => false,
        };
        checks.push(Check {
            name: format!("header:{}", name.to_ascii_lowercase()),
            ok,
            detail: match got {
                Some(v) if want.is_empty() => format!("present: {v}"),
                Some(v) => format!("got `{v}`, expected `{want}`"),
                None => "missing".into(),
            },
        });
    }
    let excerpt_end = body
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|&end| end <= 256)
        .last()
        .unwrap_or(0);
    Output {
        ok: checks.iter().all(|c| c.ok),
        url: input.url.clone(),
        status: Some(response.status),
        latency_ms,
        body_bytes: response.body.len(),
        body_excerpt: body[..excerpt_end].to_string(),
        checks,
        error: None,
    }
}

export_tool!(HttpProbe);

#[cfg(test)]
mod tests {
    use super::*;
    use warden_pdk::http::Response;

    fn input(json: &str) -> Input {
        warden_pdk::serde_json::from_str(json).unwrap()
    }

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn default_expectation_is_any_2xx() {
        let i = input(r#"{"url":"http://x/"}"#);
        assert!(evaluate(&i, None, &response(204, "", &[]), 1.0).ok);
        assert!(!evaluate(&i, None, &response(503, "", &[]), 1.0).ok);
    }

    #[test]
    fn latency_over_budget_fails_the_probe() {
        let i = input(r#"{"url":"http://x/","latency_budget_ms":50}"#);
        let out = evaluate(&i, None, &response(200, "", &[]), 75.0);
        assert!(!out.ok);
        assert_eq!(out.checks[1].name, "latency");
    }

    #[test]
    fn body_and_header_checks_report_what_they_saw() {
        let i = input(
            r#"{"url":"http://x/","body_contains":"healthy","body_regex":"v[0-9]+","required_headers":{"Content-Type":"application/json","x-id":""}}"#,
        );
        let re = regex_lite::Regex::new("v[0-9]+").unwrap();
        let ok = evaluate(
            &i,
            Some(&re),
            &response(
                200,
                "healthy v12",
                &[("content-type", "application/json"), ("x-id", "7")],
            ),
            1.0,
        );
        assert!(ok.ok, "{:?}", ok.checks);
        let bad = evaluate(&i, Some(&re), &response(200, "sick", &[]), 1.0);
        assert!(!bad.ok);
        assert_eq!(bad.checks.iter().filter(|c| !c.ok).count(), 4);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: Result<Input, _> =
            warden_pdk::serde_json::from_str(r#"{"url":"http://x/","bogus":1}"#);
        assert!(r.is_err());
    }

    #[test]
    fn excerpt_never_splits_a_character() {
        let body = "é".repeat(200);
        let i = input(r#"{"url":"http://x/"}"#);
        let out = evaluate(&i, None, &response(200, &body, &[]), 1.0);
        assert!(out.body_excerpt.len() <= 256);
        assert!(out.body_excerpt.chars().all(|c| c == 'é'));
    }
}
