//! Test guest `http_fetch`.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "http-fetch";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::ReadOnly;

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Http {
            hosts: vec!["localhost".into()],
        }]
    }

    #[allow(unused_variables, unreachable_code)]
    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let url = input.url.unwrap_or_default();
        let r = warden_pdk::http::Request::get(&url).send()?;
        Ok(out(format!(
            "{} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )))
    }
}

export_tool!(Guest);

fn main() {}
