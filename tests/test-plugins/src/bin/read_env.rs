//! Test guest `read_env`.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "read-env";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::ReadOnly;

    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    #[allow(unused_variables, unreachable_code)]
    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        let home = std::env::var("HOME").ok();
        let args: Vec<String> = std::env::args().collect();
        Ok(out(format!(
            "vars={} home={home:?} args={}",
            vars.len(),
            args.len()
        )))
    }
}

export_tool!(Guest);

fn main() {}
