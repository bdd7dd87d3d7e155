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

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q -p warden-cli -p incident-responder
warden() { ./target/debug/warden "$@"; }

echo "== build and install the tool plugins"
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
