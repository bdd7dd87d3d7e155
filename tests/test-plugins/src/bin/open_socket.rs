//! Test guest `open_socket`.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "open-socket";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::ReadOnly;

    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    #[allow(unused_variables, unreachable_code)]
    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let addr = input.text.unwrap_or_else(|| "127.0.0.1:9".into());
        match std::net::TcpStream::connect(addr.as_str()) {
            Ok(_) => Ok(out(format!("connected to {addr}"))),
            Err(e) => Ok(out(format!("refused: {e}"))),
        }
    }
}

export_tool!(Guest);

fn main() {}
