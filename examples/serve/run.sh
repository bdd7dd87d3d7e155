#!/usr/bin/env bash
# warden serve on the example config, on 127.0.0.1:8087: builds the CLI and
# the plugins (cargo prints progress), creates the secrets on first use
# (.warden/secrets, mode 0600), then serves until Ctrl-C.
#
#   ./examples/serve/run.sh
#   curl -H "Authorization: Bearer $(cat .warden/secrets/admin-token)" 127.0.0.1:8087/v1/tasks
set -euo pipefail
cd "$(dirname "$0")/../.."
rustup target add wasm32-wasip2
cargo build -p warden-cli
./target/debug/warden plugin build
umask 077
mkdir -p .warden/secrets
for name in admin-token alertmanager-token webhook-secret; do
  [ -s ".warden/secrets/$name" ] || od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > ".warden/secrets/$name"
done
./target/debug/warden serve --config examples/serve/warden.toml --check-config
exec ./target/debug/warden serve --config examples/serve/warden.toml "$@"
