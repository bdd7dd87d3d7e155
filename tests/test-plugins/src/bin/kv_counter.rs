//! Test guest `kv_counter`.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "kv-counter";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::Mutating;

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Kv]
    }

    #[allow(unused_variables, unreachable_code)]
    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let n = warden_pdk::kv::get("count")?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        if !ctx.dry_run {
            warden_pdk::kv::set("count", n.to_string().as_bytes())?;
        }
        Ok(out(n.to_string()))
    }
}

export_tool!(Guest);

fn main() {}
