# Sourced by scripts/edge.sh and scripts/edge-budget.sh: the target, the
# output directories, and how the device binaries are linked. Set here,
# not in a committed .cargo/config, so nobody else's build changes.
TARGET=${EDGE_TARGET:-aarch64-unknown-linux-gnu}
T=${CARGO_TARGET_DIR:-target}
OUT=${EDGE_OUT:-$T/edge-box}
ARCH=${TARGET%%-*}
TRIPLE_ENV=$(echo "$TARGET" | tr 'a-z-' 'A-Z_')
GCC=${ARCH}-linux-gnu-gcc
QEMU=("qemu-$ARCH" -L "/usr/${ARCH}-linux-gnu")
# Linker and C compiler (ring) for the target.
export "CARGO_TARGET_${TRIPLE_ENV}_LINKER=$GCC" "CC_${TARGET//-/_}=$GCC" "AR_${TARGET//-/_}=${ARCH}-linux-gnu-ar"
# Packed relative relocations (DT_RELR): a position-independent binary keeps
# its ASLR without 1.4 MB of `.rela.dyn`. Linked by the Rust toolchain's own
# lld (Debian 12's GNU ld 2.40 ignores `-z pack-relative-relocs` on
# aarch64). Needs glibc >= 2.36 on the device (Debian 12, Ubuntu 23.04); an
# older loader refuses the binary by name ("version `GLIBC_ABI_DT_RELR' not
# found"). EDGE_RELR=0 links without it. RELR_FLAGS is empty then.
RELR_FLAGS=
if [ "${EDGE_RELR:-1}" != 0 ]; then
  gcc_ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld"
  RELR_FLAGS="-C link-arg=-fuse-ld=lld -C link-arg=-B$gcc_ld -C link-arg=-Wl,-z,pack-relative-relocs"
  export "CARGO_TARGET_${TRIPLE_ENV}_RUSTFLAGS=$RELR_FLAGS"
fi
