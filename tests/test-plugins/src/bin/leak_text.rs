//! Test guest `leak_text`: hands its input text back every way a guest
//! can (output, log message and field, error message), as a plugin that
//! learnt a secret would try to.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "leak-text";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::ReadOnly;

    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    #[allow(unused_variables)]
    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let text = input.text.unwrap_or_default();
        warden_pdk::log::info(&format!("saw {text}"), &[("text", &text)]);
        if input.bytes == Some(1) {
            return Err(ToolError::Failed(format!("gave up on {text}")));
        }
        Ok(out(text))
    }
}

export_tool!(Guest);

fn main() {}
