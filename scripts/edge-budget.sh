#!/usr/bin/env bash
# The edge budgets, measured: binary sizes (runtime-only and full, aarch64
# and x86-64), the example agent's peak RSS natively and under qemu-aarch64,
# a run under `ulimit -v 2000000`, and cold start (process start to the end
# of the first plugin call, from the journal's timestamps). Prints a table
# and writes it to $EDGE_OUT/budget.txt.
#
#   scripts/edge.sh && scripts/edge-budget.sh
#
# Budgets (issue 16): runtime-only aarch64 binary <= 12 MB stripped, full
# <= 25 MB; peak RSS <= 64 MB; cold start natively <= 150 ms. Misses are
# reported, not hidden; the exit status is 0 either way.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${EDGE_TARGET:-aarch64-unknown-linux-gnu}
OUT=${EDGE_OUT:-target/edge}
ARCH=${TARGET%%-*}
TRIPLE_ENV=$(echo "$TARGET" | tr 'a-z-' 'A-Z_')
GCC=${ARCH}-linux-gnu-gcc
export "CARGO_TARGET_${TRIPLE_ENV}_LINKER=$GCC" "CC_${TARGET//-/_}=$GCC" "AR_${TARGET//-/_}=${ARCH}-linux-gnu-ar"
QEMU=("qemu-$ARCH" -L "/usr/${ARCH}-linux-gnu")
device=$OUT/device
[ -x "$OUT/bin/incident-responder" ] && [ -d "$device/plugins" ] || {
  echo "run scripts/edge.sh first (it builds the device binaries and installs the bundle in $device)" >&2
  exit 1
}
report=$OUT/budget.txt
: >"$report"
row() { printf '%-58s %s\n' "$1" "$2" | tee -a "$report"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
stripped_size() { # binary, strip tool
  local tmp; tmp=$(mktemp); "$2" -o "$tmp" "$1"; stat -c %s "$tmp"; rm -f "$tmp"
}

echo "== builds for the size comparison (cargo profile edge: release at opt-level s)"
cargo build --profile edge -p incident-responder --no-default-features
mkdir -p "$OUT/x86-rt" && cp target/edge/incident-responder "$OUT/x86-rt/"
cargo build --profile edge -p incident-responder
if [ "${EDGE_SKIP_FULL_ARM:-}" != 1 ]; then
  cargo build --profile edge --target "$TARGET" -p incident-responder
fi

echo
echo "== sizes (stripped)"
row "aarch64 runtime-only incident-responder" "$(mb "$(stripped_size "$OUT/bin/incident-responder" "${ARCH}-linux-gnu-strip")")  (budget 12 MB)"
row "aarch64 runtime-only warden CLI (llm, azure, serve kept)" "$(mb "$(stripped_size "$OUT/bin/warden" "${ARCH}-linux-gnu-strip")")"
if [ -x "target/$TARGET/edge/incident-responder" ]; then
  row "aarch64 full incident-responder (cranelift, llm, azure)" "$(mb "$(stripped_size "target/$TARGET/edge/incident-responder" "${ARCH}-linux-gnu-strip")")  (budget 25 MB)"
fi
row "x86-64 runtime-only incident-responder" "$(mb "$(stripped_size "$OUT/x86-rt/incident-responder" strip)")"
row "x86-64 full incident-responder" "$(mb "$(stripped_size target/edge/incident-responder strip)")"

# Cold start: from just before exec to the journal's first `call` record.
cold_ms() { # t0_ns journal
  python3 - "$1" "$2" <<'PY'
import json, sys, datetime
t0 = int(sys.argv[1]) / 1e9
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r.get("event") == "call" or r.get("type") == "call" or "call" in r and isinstance(r["call"], dict):
        ts = r["ts"].replace("Z", "+00:00")
        # Python < 3.11 takes at most 6 fractional digits.
        head, _, frac = ts.partition(".")
        if frac:
            digits = "".join(c for c in frac if c.isdigit())
            ts = head + "." + digits[:6].ljust(6, "0") + frac[len(digits):]
        t = datetime.datetime.fromisoformat(ts).timestamp()
        print(f"{(t - t0) * 1000:.0f} ms")
        break
else:
    print("n/a")
PY
}
peak_rss() { awk -F: '/Maximum resident set size/ { printf "%.1f MB", $2 / 1000 }' "$1"; }
run_agent() { # label, journal, command...
  local label=$1 journal=$2; shift 2
  rm -f "$journal"
  local t0; t0=$(date +%s%N)
  /usr/bin/time -v -o "$OUT/time.txt" "$@" --journal "$journal" --examples examples >"$OUT/run.txt" 2>&1 || {
    cat "$OUT/run.txt" >&2; echo "$label: the agent failed" >&2; return 1; }
  grep -q "^RESOLVED" "$OUT/run.txt" || { cat "$OUT/run.txt" >&2; return 1; }
  row "$label: peak RSS" "$(peak_rss "$OUT/time.txt")  (budget 64 MB)"
  row "$label: cold start to first plugin call done" "$(cold_ms "$t0" "$journal")"
}

echo
echo "== runs (env dev, warm plugin cache; the first native run fills it)"
export WARDEN_KEY_FILE=$PWD/$device/host.key
native=(target/edge/incident-responder --profile edge --plugin-dir .warden/plugins)
"${native[@]}" --journal "$OUT/warmup.jsonl" --examples examples >/dev/null
run_agent "x86-64 native, full build, edge profile" "$OUT/native.jsonl" "${native[@]}"
run_agent "x86-64 native, full build, default profile" "$OUT/native-default.jsonl" \
  target/edge/incident-responder --plugin-dir .warden/plugins
emulated=("${QEMU[@]}" "$OUT/bin/incident-responder" --profile edge
  --plugin-dir "$device/plugins" --policy "$device/policies" --runbooks "$device/runbooks")
run_agent "aarch64 under qemu, runtime-only, edge profile" "$OUT/qemu.jsonl" "${emulated[@]}"

echo
echo "== under ulimit -v 2000000"
if (ulimit -v 2000000 && "${native[@]}" --journal "$OUT/ulimit.jsonl" --examples examples >/dev/null 2>&1); then
  row "x86-64 native under ulimit -v 2000000" "resolved"
else
  row "x86-64 native under ulimit -v 2000000" "FAILED"
fi
if (ulimit -v 2000000 && "${emulated[@]}" --journal "$OUT/ulimit-qemu.jsonl" --examples examples >/dev/null 2>&1); then
  row "aarch64 under qemu under ulimit -v 2000000" "resolved"
else
  row "aarch64 under qemu under ulimit -v 2000000" "FAILED (qemu-user itself may reserve guest address space)"
fi

echo
echo "== where the bytes go (aarch64 runtime-only, biggest crates)"
if command -v cargo-bloat >/dev/null; then
  cargo bloat --profile edge --target "$TARGET" -p incident-responder --no-default-features \
    --crates -n 15 2>/dev/null | tee -a "$report" || true
else
  echo "(cargo install cargo-bloat for a per-crate table; largest symbols instead)" | tee -a "$report"
  "${ARCH}-linux-gnu-nm" --size-sort -S -C "$OUT/bin/incident-responder" 2>/dev/null | tail -15 | tee -a "$report" || true
fi
echo
echo "written to $report"
