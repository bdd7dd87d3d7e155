//! Test guest `kv_undeclared`.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "kv-undeclared";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::ReadOnly;

    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    #[allow(unused_variables, unreachable_code)]
    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        match warden_pdk::kv::get("anything") {
            Ok(_) => Ok(out("read")),
            Err(e) => Ok(out(format!("{e}"))),
        }
    }
}

export_tool!(Guest);

fn main() {}
