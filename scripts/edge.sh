#!/usr/bin/env bash
# warden on a small ARM box, rehearsed on this x86-64 machine in one command:
# cross-build the runtime-only binaries (no Cranelift, no LLM client, no
# Azure) for aarch64, precompile the plugins for aarch64 with the edge
# profile, pack them with the policy bundle and runbooks, install the bundle
# and run the example agent under qemu-aarch64, then verify its journal.
#
#   scripts/edge.sh                  # the whole rehearsal, env dev
#   scripts/edge.sh --env prod       # arguments go to the example agent
#
# Environment: EDGE_TARGET (aarch64-unknown-linux-gnu), EDGE_PROFILE (cargo
# profile for the device binaries: edge = size-optimised with fat LTO, or dev
# for a faster build), EDGE_OUT ($CARGO_TARGET_DIR/edge-box), EDGE_RELR (1:
# pack relative relocations, needs glibc >= 2.36 on the device; 0: plain
# relocations). On a real box, copy $EDGE_OUT/bin/* and the bundle there and
# run the last two steps without qemu.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${EDGE_PROFILE:-edge}
. scripts/edge-env.sh
say() { printf '\n== %s\n' "$*"; }

say "toolchain: $GCC, qemu-$ARCH, rustup targets $TARGET and wasm32-wasip2"
if ! command -v "$GCC" >/dev/null || ! command -v "qemu-$ARCH" >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      "gcc-${ARCH}-linux-gnu" "libc6-dev-${ARCH/aarch64/arm64}-cross" qemu-user >/dev/null
  else
    echo "missing $GCC or qemu-$ARCH; install gcc-${ARCH}-linux-gnu, libc6-dev-arm64-cross and qemu-user" >&2
    exit 1
  fi
fi
rustup target add "$TARGET" wasm32-wasip2

say "build: the host warden (with the compiler) and the $TARGET runtime-only binaries ($PROFILE)"
cargo build -p warden-cli -p incident-responder
cargo build --profile "$PROFILE" --target "$TARGET" --no-default-features \
  -p incident-responder -p warden-cli
dir=$PROFILE; [ "$PROFILE" = dev ] && dir=debug
mkdir -p "$OUT/bin"
cp "$T/$TARGET/$dir/incident-responder" "$T/$TARGET/$dir/warden" "$OUT/bin/"
ls -l "$OUT/bin"

say "plugins: build, then precompile for $TARGET with the edge profile"
"$T"/debug/warden plugin build --target "$TARGET" --profile edge

say "bundle: precompiled plugins + policy + runbooks, with checksums"
"$T"/debug/warden bundle pack --target "$TARGET" --out "$OUT/warden-bundle.tar.gz"

say "device ($ARCH under qemu): install the bundle, run the example agent"
device=$OUT/device
rm -rf "$device" && mkdir -p "$device/journal"
export WARDEN_KEY_FILE=$(realpath -m "$device")/host.key
"${QEMU[@]}" "$OUT/bin/warden" bundle install "$OUT/warden-bundle.tar.gz" --dir "$device"
status=0
"${QEMU[@]}" "$OUT/bin/incident-responder" --profile edge \
  --plugin-dir "$device/plugins" --policy "$device/policies" --runbooks "$device/runbooks" \
  --journal "$device/journal/journal.jsonl" --examples examples "$@" || status=$?

say "journal"
"${QEMU[@]}" "$OUT/bin/warden" journal verify "$device/journal/journal.jsonl"
exit "$status"
