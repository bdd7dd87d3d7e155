#!/usr/bin/env bash
# Fuzz warden's parsers of outside input with cargo-fuzz (libFuzzer), each
# target for SECONDS (default 60), and print one summary line per target.
#
#   scripts/fuzz.sh [SECONDS]
#
# Targets (fuzz/fuzz_targets/): alert (webhook bodies), runbook (runbook
# YAML), manifest (tool manifests and input schemas), journal (damaged
# journal and head files). Each must never panic, hang (-timeout=10) or grow
# memory with its input (-rss_limit_mb=2048, and a 64 MiB cap on any single
# allocation, see fuzz/src/lib.rs).
#
# Environment:
#   FUZZ_TARGETS    targets to run (default: all four, in that order)
#   FUZZ_SANITIZER  address (default) or none (faster, no ASan)
#   CARGO_BUILD_JOBS  build parallelism (the fuzz build is a full one:
#                   wasmtime and the rest get coverage instrumentation)
#
# New inputs go to fuzz/corpus/<target>/ (only the hand-written seed-* files
# there are tracked); crashes to fuzz/artifacts/<target>/, libFuzzer's log to
# fuzz/artifacts/<target>.log. Reproduce a crash with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# Not run in CI.
set -euo pipefail

seconds=${1:-60}
case $seconds in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS]" >&2
	exit 2
	;;
esac
cd "$(dirname "$0")/.."
read -r -a targets <<<"${FUZZ_TARGETS:-alert runbook manifest journal}"
sanitizer=${FUZZ_SANITIZER:-address}

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "installing cargo-fuzz" >&2
	cargo install cargo-fuzz --locked
fi
# libfuzzer-sys compiles libFuzzer itself with the system C++ compiler.
if ! command -v c++ >/dev/null && ! command -v clang++ >/dev/null; then
	echo "error: no C++ compiler for libFuzzer" >&2
	echo "hint: apt-get install -y g++ (or clang)" >&2
	exit 1
fi
# cargo-fuzz passes -Z flags (sanitizers); the pinned toolchain is stable.
export RUSTC_BOOTSTRAP=1
# Its own target dir (fuzz/target): these flags would otherwise rebuild
# everything in the main one.
unset CARGO_TARGET_DIR

echo "building fuzz targets (sanitizer: $sanitizer)" >&2
cargo fuzz build --sanitizer "$sanitizer" >&2

failed=0
for target in "${targets[@]}"; do
	mkdir -p "fuzz/artifacts/$target" "fuzz/corpus/$target"
	log="fuzz/artifacts/$target.log"
	marker=$(mktemp)
	status=0
	cargo fuzz run --sanitizer "$sanitizer" "$target" -- \
		-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 >"$log" 2>&1 || status=$?
	stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$log" | tail -n 1; }
	runs=$(stat number_of_executed_units)
	rate=$(stat average_exec_per_sec)
	rss=$(stat peak_rss_mb)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$log" | tail -n 1 || true)
	found=$(find "fuzz/artifacts/$target" -type f -newer "$marker" | sort)
	rm -f "$marker"
	crashes=$(printf '%s' "$found" | grep -c . || true)
	printf '%-9s %s runs, %s exec/s, %s, peak rss %s MB, crashes %s\n' \
		"$target" "${runs:-?}" "${rate:-?}" "${cov:-cov: ?}" "${rss:-?}" "$crashes"
	if [ -n "$found" ]; then
		printf '          %s\n' $found
	fi
	if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
		[ -z "$found" ] && echo "          exit $status, see $log"
		failed=1
	fi
done
exit "$failed"
