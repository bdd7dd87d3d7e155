//! Test guest `read_file`.
use warden_pdk::{Capability, Context, Effect, Tool, ToolError, export_tool};
use warden_test_plugins::{Input, Output, out};

struct Guest;

impl Tool for Guest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "read-file";
    const VERSION: &'static str = "0.0.0";
    const DESCRIPTION: &'static str = "test guest";
    const EFFECT: Effect = Effect::ReadOnly;

    fn capabilities() -> Vec<Capability> {
        Vec::new()
    }

    #[allow(unused_variables, unreachable_code)]
    fn invoke(ctx: &Context, input: Input) -> Result<Output, ToolError> {
        let mut seen = Vec::new();
        for p in ["/etc/passwd", "/etc/hostname", ".", "/", "../Cargo.toml"] {
            match std::fs::read(p) {
                Ok(b) => seen.push(format!("read {p}: {} bytes", b.len())),
                Err(e) => seen.push(format!("{p}: {e}")),
            }
        }
        match std::fs::read_dir("/") {
            Ok(_) => seen.push("listed /".into()),
            Err(e) => seen.push(format!("list /: {e}")),
        }
        Ok(out(seen.join("\n")))
    }
}

export_tool!(Guest);

fn main() {}
