//! Test guest `http_post`: POSTs `bytes` bytes of `a..z` repeated to `url`
//! and answers with the status and the response body.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "http-post";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::ReadOnly;

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Http {
            hosts: vec!["localhost".to_string()],
        }]
    }

    fn invoke(_ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let url = input.url.unwrap_or_default();
        let body: Vec<u8> = (0..input.bytes.unwrap_or(0))
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let r = warden_pdk::http::Request::new("POST", &url)
            .header("content-type", "text/plain")
            .body(body)
            .send()?;
        Ok(out(format!(
            "{} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )))
    }
}

export_tool!(Guest);

fn main() {}
