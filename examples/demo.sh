#!/usr/bin/env bash
# The main job, offline: build the tool plugins, then run each one in the
# sandbox under the default policy on the sample data in examples/data.
# No API key, no network beyond a loopback server this script starts.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q -p warden-cli
warden() { ./target/debug/warden "$@"; }

echo "== build and precompile the plugins"
warden plugin build
echo
echo "== installed plugins"
warden plugin list
echo
echo "== log-templates: which messages are new in the checkout log?"
warden plugin call log-templates --input-file examples/data/checkout-log.json \
  | python3 -c '
import json, sys
out = json.load(sys.stdin)
for t in out["templates"]:
    flag = "RARE " if t["rare"] else "     "
    print("%4d  %s%s" % (t["count"], flag, t["text"]))
'
echo
echo "== metric-anomaly: where does checkout latency leave its daily band?"
warden plugin call metric-anomaly --input-file examples/data/latency-series.json
echo
echo "== http-probe: is the (loopback) service up and serving errors?"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory examples/data >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.1)" 2>/dev/null && break; sleep 0.1; done
warden plugin call http-probe --input "{\"url\":\"http://127.0.0.1:$port/checkout.log\",\"body_contains\":\"ERROR\",\"latency_budget_ms\":500}"
echo
echo "== the policy keeps plugins away from cloud metadata endpoints"
if warden plugin call http-probe --input '{"url":"http://169.254.169.254/latest/meta-data/"}'; then
  echo "unexpected: the metadata request was allowed" >&2; exit 1
fi
