#!/usr/bin/env bash
# The edge rehearsal as a check: scripts/edge.sh (dev profile, faster to
# build), then the same incident natively; the aarch64 run under qemu must
# resolve it exactly as the x86-64 run does (same steps, tools and
# statuses, same outcome). Bounded by EDGE_CHECK_TIMEOUT seconds (1800).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
OUT=${EDGE_OUT:-$T/edge-box}
export EDGE_OUT=$OUT EDGE_PROFILE=${EDGE_PROFILE:-dev}
limit=${EDGE_CHECK_TIMEOUT:-1800}

timeout --foreground "$limit" scripts/edge.sh --json >"$OUT.qemu.json" || {
  echo "edge check: scripts/edge.sh failed or ran over ${limit}s" >&2
  exit 1
}
# The host build edge.sh made, with the plugins `warden plugin build` left.
"$T"/debug/incident-responder --json --journal "$OUT/native-check.jsonl" >"$OUT.native.json"
python3 - "$OUT.native.json" "$OUT.qemu.json" <<'PY'
import json, sys

def shape(path):
    text = open(path).read()
    # Other output comes before and after the agent's JSON outcome.
    start = 0 if text.startswith("{") else text.index("\n{") + 1
    outcome, _ = json.JSONDecoder().raw_decode(text[start:])
    return {
        "status": outcome["status"],
        "steps": [(o["step_id"], o["tool"], o["status"]) for o in outcome["observations"]],
    }

native, emulated = shape(sys.argv[1]), shape(sys.argv[2])
if native != emulated:
    print(f"edge check: aarch64 differs from x86-64\n  x86-64:  {native}\n  aarch64: {emulated}", file=sys.stderr)
    sys.exit(1)
if str(native["status"]).lower() != "resolved":
    print(f"edge check: the incident was not resolved: {native}", file=sys.stderr)
    sys.exit(1)
print(f"edge check: aarch64 under qemu resolved the incident as x86-64 did ({len(native['steps'])} steps)")
PY
