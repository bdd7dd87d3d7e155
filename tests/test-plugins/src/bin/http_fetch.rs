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
        // Loopback and metadata names and IPv6 spellings of IPv4
        // addresses, so the host's gate path is what stops them; never
        // `127.0.0.1` itself (the undeclared-host check uses it).
        let hosts = [
            "localhost",
            "*.localhost",
            "ip6-localhost",
            "metadata",
            "metadata.google.internal",
            "instance-data",
            "::7f00:1",
            "::a9fe:a9fe",
            "::ffff:a9fe:a9fe",
            "2852039166",
        ];
        vec![Capability::Http {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
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
