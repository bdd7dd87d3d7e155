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
#
#   EDGE_NATIVE_ONLY=1 scripts/edge-budget.sh   # x86-64 only: no cross-build,
#                                               # no qemu, no scripts/edge.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NATIVE_ONLY=${EDGE_NATIVE_ONLY:-}

. scripts/edge-env.sh
# The x86-64 comparison builds name their target too, so both architectures
# link like scripts/edge.sh's device binaries without changing flags for
# any other build.
HOST_TARGET=x86_64-unknown-linux-gnu
[ -z "$RELR_FLAGS" ] || export "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS=$RELR_FLAGS"
X86=$T/$HOST_TARGET/edge
device=$OUT/device
[ -n "$NATIVE_ONLY" ] || { [ -x "$OUT/bin/incident-responder" ] && [ -d "$device/plugins" ]; } || {
  echo "run scripts/edge.sh first (it builds the device binaries and installs the bundle in $device)" >&2
  exit 1
}
mkdir -p "$OUT"
report=$OUT/budget.txt
: >"$report"
row() { printf '%-58s %s\n' "$1" "$2" | tee -a "$report"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
stripped_size() { # binary, strip tool
  local tmp; tmp=$(mktemp); "$2" -o "$tmp" "$1"; stat -c %s "$tmp"; rm -f "$tmp"
}

echo "== builds for the size comparison (cargo profile edge: opt-level z, fat LTO, one codegen unit, packed relative relocations)"
cargo build --profile edge --target "$HOST_TARGET" -p incident-responder -p warden-cli --no-default-features
mkdir -p "$OUT/x86-rt" && cp "$X86"/incident-responder "$X86"/warden "$OUT/x86-rt/"
cargo build --profile edge --target "$HOST_TARGET" -p incident-responder -p warden-cli
if [ -z "$NATIVE_ONLY" ] && [ "${EDGE_SKIP_FULL_ARM:-}" != 1 ]; then
  cargo build --profile edge --target "$TARGET" -p incident-responder
fi

echo
echo "== sizes (stripped)"
if [ -z "$NATIVE_ONLY" ]; then
row "aarch64 runtime-only incident-responder" "$(mb "$(stripped_size "$OUT/bin/incident-responder" "${ARCH}-linux-gnu-strip")")  (budget 12 MB)"
row "aarch64 runtime-only warden CLI (serve, mcp, bundle)" "$(mb "$(stripped_size "$OUT/bin/warden" "${ARCH}-linux-gnu-strip")")"
fi
if [ -z "$NATIVE_ONLY" ] && [ "${EDGE_SKIP_FULL_ARM:-}" != 1 ]; then
  row "aarch64 full incident-responder (cranelift, llm, azure)" "$(mb "$(stripped_size "$T/$TARGET/edge/incident-responder" "${ARCH}-linux-gnu-strip")")  (budget 25 MB)"
fi
row "x86-64 runtime-only incident-responder" "$(mb "$(stripped_size "$OUT/x86-rt/incident-responder" strip)")"
row "x86-64 runtime-only warden CLI" "$(mb "$(stripped_size "$OUT/x86-rt/warden" strip)")"
row "x86-64 full incident-responder" "$(mb "$(stripped_size "$X86"/incident-responder strip)")"
for full in "$T"/release/warden "$X86"/warden; do
  [ -x "$full" ] && row "x86-64 full warden CLI ($(basename "$(dirname "$full")"))" "$(mb "$(stripped_size "$full" strip)")"
done

# Cold start: from just before exec to the journal's first `call` record.
cold_ms() { # t0_ns journal
  python3 - "$1" "$2" <<'PY'
import json, sys, datetime
t0 = int(sys.argv[1]) / 1e9
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r.get("kind") == "call":
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
  rm -f "$journal" "$journal.head"
  local t0; t0=$(date +%s%N)
  /usr/bin/time -v -o "$OUT/time.txt" "$@" --journal "$journal" --examples examples >"$OUT/run.txt" 2>&1 || {
    cat "$OUT/run.txt" >&2; echo "$label: the agent failed" >&2; return 1; }
  grep -q "^RESOLVED" "$OUT/run.txt" || { cat "$OUT/run.txt" >&2; return 1; }
  row "$label: peak RSS" "$(peak_rss "$OUT/time.txt")  (budget 64 MB)"
  row "$label: cold start to first plugin call done" "$(cold_ms "$t0" "$journal")"
}

echo
echo "== runs (env dev, warm plugin cache; the first native run fills it)"
export WARDEN_KEY_FILE=$(realpath -m "$device")/host.key
# The same bundle for x86-64, installed by the x86-64 runtime-only warden.
native_box=$OUT/x86-box
# Any warden with the compiler: the debug one edge.sh built, else the
# full edge-profile one built above.
host_warden=$T/debug/warden; [ -x "$host_warden" ] || host_warden=$X86/warden
"$host_warden" plugin build --target "$HOST_TARGET" --profile edge
"$host_warden" bundle pack --target "$HOST_TARGET" --out "$OUT/x86-bundle.tar.gz"
rm -rf "$native_box"
"$OUT/x86-rt/warden" bundle install "$OUT/x86-bundle.tar.gz" --dir "$native_box"
native=("$X86"/incident-responder --profile edge --plugin-dir .warden/plugins)
rm -f "$OUT"/*.jsonl "$OUT"/*.jsonl.head
"${native[@]}" --journal "$OUT/warmup.jsonl" --examples examples >/dev/null
run_agent "x86-64 native, full build, edge profile" "$OUT/native.jsonl" "${native[@]}"
run_agent "x86-64 native, full build, default profile" "$OUT/native-default.jsonl" \
  "$X86"/incident-responder --plugin-dir .warden/plugins
native_rt=("$OUT/x86-rt/incident-responder" --profile edge --plugin-dir "$native_box/plugins"
  --policy "$native_box/policies" --runbooks "$native_box/runbooks")
run_agent "x86-64 native, runtime-only, edge profile, installed bundle" "$OUT/native-rt.jsonl" "${native_rt[@]}"
if [ -z "$NATIVE_ONLY" ]; then
# Bound to this run's host key (edge.sh may have run with another).
"${QEMU[@]}" "$OUT/bin/warden" bundle install "$OUT/warden-bundle.tar.gz" --dir "$device" >/dev/null
emulated=("${QEMU[@]}" "$OUT/bin/incident-responder" --profile edge
  --plugin-dir "$device/plugins" --policy "$device/policies" --runbooks "$device/runbooks")
run_agent "aarch64 under qemu, runtime-only, edge profile" "$OUT/qemu.jsonl" "${emulated[@]}"
fi

# Idle `warden serve`: examples/serve/warden-edge.toml next to the
# installed bundle, RSS read from /proc after it answers /healthz and has
# sat idle for 2 s.
serve_rss() { # label, config, command...
  local label=$1 config=$2; shift 2
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sed -i "s/^addr = .*/addr = \"127.0.0.1:$port\"/" "$config"
  "$@" serve --config "$config" >"$OUT/serve.txt" 2>&1 &
  local pid=$! up=
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && { up=1; break; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$up" ]; then
    sleep 2
    row "$label: idle RSS" "$(awk '/VmRSS/ { printf "%.1f MB", $2 * 1024 / 1e6 }
      /RssAnon/ { a = $2 } /RssFile/ { f = $2 }
      END { printf " (anon %.1f, file %.1f)", a * 1024 / 1e6, f * 1024 / 1e6 }' "/proc/$pid/status")  (budget 30 MB)"
  else
    cat "$OUT/serve.txt" >&2; row "$label: idle RSS" "FAILED to start"
  fi
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}
serve_dir() { # dir: an installed bundle
  rm -rf "$1/journal" && mkdir -p "$1/secrets" "$1/journal"
  cp examples/serve/warden-edge.toml "$1/warden.toml"
  for name in admin-token alertmanager-token webhook-secret; do
    [ -s "$1/secrets/$name" ] || (umask 077; od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$1/secrets/$name")
  done
}
export WARDEN_PROFILE=edge
echo
echo "== idle warden serve (examples/serve/warden-edge.toml, WARDEN_PROFILE=edge)"
serve_dir "$native_box"
serve_rss "x86-64 native, runtime-only warden serve" "$native_box/warden.toml" "$OUT/x86-rt/warden"
if [ -z "$NATIVE_ONLY" ]; then
serve_dir "$device"
serve_rss "aarch64 under qemu, runtime-only warden serve (RSS includes qemu)" "$device/warden.toml" "${QEMU[@]}" "$OUT/bin/warden"
fi
unset WARDEN_PROFILE

echo
echo "== under ulimit -v 2000000"
for run in native native_rt; do
  declare -n cmd=$run
  if (ulimit -v 2000000 && "${cmd[@]}" --journal "$OUT/ulimit-$run.jsonl" --examples examples >/dev/null 2>&1); then
    row "x86-64 $run under ulimit -v 2000000" "resolved"
  else
    row "x86-64 $run under ulimit -v 2000000" "FAILED"
  fi
done
if [ -n "$NATIVE_ONLY" ]; then
  :
elif (ulimit -v 2000000 && "${emulated[@]}" --journal "$OUT/ulimit-qemu.jsonl" --examples examples >/dev/null 2>&1); then
  row "aarch64 under qemu under ulimit -v 2000000" "resolved"
else
  row "aarch64 under qemu under ulimit -v 2000000" "FAILED (qemu-user itself may reserve guest address space)"
fi

echo
bloat_target=$TARGET; [ -n "$NATIVE_ONLY" ] && bloat_target=$HOST_TARGET
echo "== where the bytes go ($bloat_target runtime-only, biggest crates)"
if command -v cargo-bloat >/dev/null; then
  cargo bloat --profile edge --target "$bloat_target" -p incident-responder --no-default-features \
    --crates -n 25 2>/dev/null | tee -a "$report" || true
else
  # What `cargo bloat --crates` does, from the symbol table: a function's
  # crate is the first path segment of its demangled name.
  bin=$OUT/bin/incident-responder nm=${ARCH}-linux-gnu-nm
  [ -n "$NATIVE_ONLY" ] && bin=$OUT/x86-rt/incident-responder nm=nm
  echo "(cargo-bloat not installed: code bytes per crate from $nm)" | tee -a "$report"
  "$nm" -S --size-sort -C "$bin" | python3 -c '
import collections, re, sys
sizes, total = collections.Counter(), 0
for line in sys.stdin:
    parts = line.split(None, 3)
    if len(parts) < 4 or parts[2] not in "tTwW":
        continue
    size = int(parts[1], 16); total += size
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", re.sub(r"^[_<]+", "", parts[3]))
    crate = m.group(1) if m else "[C/other]"
    sizes["std/core/alloc" if crate in ("std", "core", "alloc") else crate] += size
for crate, size in sizes.most_common(25):
    print(f"{crate:<28} {size / 1024:>8.0f} KiB {100 * size / total:>5.1f}%")
label = "(all code)"
print(f"{label:<28} {total / 1024:>8.0f} KiB")' | tee -a "$report"
fi
echo
echo "written to $report"
