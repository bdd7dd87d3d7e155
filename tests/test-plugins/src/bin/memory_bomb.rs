//! Test guest `memory_bomb`.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "memory-bomb";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::ReadOnly;

    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    #[allow(unused_variables, unreachable_code)]
    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        // Grow towards 4 GiB, touching every page.
        for _ in 0..4096 {
            hoard.push(vec![1u8; 1 << 20]);
        }
        Ok(out(format!("{}", hoard.len())))
    }
}

export_tool!(Guest);

fn main() {}
