#!/usr/bin/env bash
# Load check for `warden serve` (not run in CI): a fresh service with a
# one-probe runbook takes RATE Alertmanager alerts a second for SECS
# seconds; prints accept latency p50/p99, tasks completed, lost alerts
# (must be 0) and the server's peak RSS.
#
#   benches/serve_load.sh [--release] [RATE [SECS [WORKERS]]]     # default 50 20 2
#
# Debug by default: a release build of the wasmtime host takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export NO_PROXY=127.0.0.1,localhost,::1 no_proxy=127.0.0.1,localhost,::1
profile=debug
cargo_profile=()
if [ "${1:-}" = "--release" ]; then
  profile=release
  cargo_profile=(--release)
  shift
fi
rate=${1:-50} secs=${2:-20} workers=${3:-2}
target=${CARGO_TARGET_DIR:-target}
cargo build "${cargo_profile[@]}" -p warden-cli --bin warden
cargo build -p warden-bench --bin serve-load
exec "$target/debug/serve-load" --warden "$target/$profile/warden" \
  --rate "$rate" --secs "$secs" --workers "$workers"
