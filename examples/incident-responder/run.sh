#!/usr/bin/env bash
# The example agent, offline: build the warden CLI, the example agent and the
# tool plugins, then let the agent resolve a local incident: a loopback
# "checkout" service whose health check fails, an Alertmanager webhook about
# it, a runbook from examples/runbooks, sandboxed probes and analysis, a
# policy-gated remediation and a validation. Ends with the journal check and
# the task's timeline. No API key, no server, no network.
#
#   ./examples/incident-responder/run.sh              # env dev: remediation allowed
#   ./examples/incident-responder/run.sh --env prod   # remediation asks for approval
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "== toolchain: the pinned Rust and the wasm32-wasip2 target"
rustup target add wasm32-wasip2
echo
echo "== build the warden CLI and the example agent"
echo "   (the first build compiles wasmtime and friends: ~15 minutes on 2 cores;"
echo "    cargo prints each crate as it goes, later builds take seconds)"
cargo build -p warden-cli -p incident-responder
warden() { ./target/debug/warden "$@"; }

echo
echo "== build and install the tool plugins (wasm32-wasip2, then precompiled)"
warden plugin build
echo
echo "== the agent"
status=0
./target/debug/incident-responder "$@" || status=$?
echo
echo "== journal"
warden journal verify
warden journal show last
exit "$status"
