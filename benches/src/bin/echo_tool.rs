//! The trivial test tool as a native process: read `{"text": ..}` on stdin,
//! write `{"result": ..}` on stdout. The process-spawn baseline of
//! `benches/plugin_call.rs`.
#![allow(clippy::print_stdout, reason = "the tool's output is its stdout")]

use std::io::Read;

fn main() -> std::process::ExitCode {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    let value: serde_json::Value = serde_json::from_str(&input).unwrap_or_default();
    let text = value["text"].as_str().unwrap_or_default();
    println!("{}", serde_json::json!({ "result": text }));
    std::process::ExitCode::SUCCESS
}
