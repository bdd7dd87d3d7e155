#!/usr/bin/env bash
# warden mcp over stdio: the plugins as MCP tools for Claude Desktop, an IDE
# or any MCP client, every call decided by the policy in `staging` and
# journaled to .warden/mcp/journal.jsonl. Builds the CLI and the plugins
# first (progress on stderr: stdout carries the protocol).
#
#   ./examples/mcp/run.sh                 # what an MCP client launches
#   WARDEN_ENV=prod ./examples/mcp/run.sh # changes then need a human's approval
set -euo pipefail
cd "$(dirname "$0")/../.."
{
  rustup target add wasm32-wasip2
  cargo build -p warden-cli
  ./target/debug/warden plugin build
} >&2
exec ./target/debug/warden mcp \
  --policy policies \
  --env "${WARDEN_ENV:-staging}" \
  --runbooks examples/runbooks \
  --journal .warden/mcp/journal.jsonl \
  "$@"
