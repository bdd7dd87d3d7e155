#!/usr/bin/env bash
# warden next to the peers users would otherwise pick, on the same inputs in
# one run (issue 15): Drain3 (masked and unmasked) vs the log miner, hnswlib vs
# the vector index, a do-nothing LangGraph node vs an agent step.
#
# Not part of the tests or CI: it installs PyPI packages and takes 10-20
# minutes on 2 cores (the hnswlib and warden index builds dominate).
#
#   benches/peers/run.sh                 # 100k vectors
#   PEERS_N=300000 benches/peers/run.sh  # another index size
#   PEERS_ONLY=vectors benches/peers/run.sh   # logs | vectors | agent
#
# Needs python3 (3.10+) with venv, a C++ compiler (hnswlib builds from source
# with -march=native), and ../shared/data/loghub for the log row (skipped
# without it). The venv and vector files live under $CARGO_TARGET_DIR (or
# ./target). See benches/README.md for the last figures.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=${PEERS_VENV:-$target/peers-venv}
n=${PEERS_N:-100000}
only=${PEERS_ONLY:-logs,vectors,agent}
log_file=${PEERS_LOG:-$root/../shared/data/loghub/HDFS/HDFS_2k.log}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r "$here/requirements.txt"
py="$venv/bin/python -W ignore"

cargo build -q --release -p warden-bench --example peers
peers="$target/release/examples/peers"

# One core for every single-threaded figure; index builds use all cores on both sides.
one_core() { taskset -c 0 "$@"; }

if [[ $only == *logs* ]]; then
  if [ -f "$log_file" ]; then
    echo "logs: $log_file" >&2
    one_core $py "$here/logs.py" "$log_file" > "$out/logs-peer.json"
    one_core "$peers" logs "$log_file" > "$out/logs-warden.json"
  else
    echo "skipping logs: $log_file not found (../shared/data absent)" >&2
  fi
fi

if [[ $only == *vectors* ]]; then
  vec="$target/peers-vectors-$n"
  if [ ! -f "$vec/truth.u32" ]; then
    echo "vectors: generating $n x 384-d mixture and exact top 10 in $vec" >&2
    $py "$here/vectors.py" gen "$vec" "$n" 1000
  fi
  echo "vectors: hnswlib build + queries" >&2
  $py "$here/vectors.py" hnswlib "$vec" > "$out/vectors-peer.json"
  echo "vectors: warden build + queries" >&2
  "$peers" vectors "$vec" > "$out/vectors-warden.json"
fi

if [[ $only == *agent* ]]; then
  echo "agent: LangGraph and warden" >&2
  one_core $py "$here/agent.py" > "$out/agent-peer.json"
  one_core "$peers" agent > "$out/agent-warden.json"
  # The same with the journal on tmpfs, where its per-task fsync is nearly free.
  if [ -d /dev/shm ]; then
    TMPDIR=/dev/shm one_core "$peers" agent > "$out/agent-warden-tmpfs.json"
  fi
fi

$py "$here/report.py" "$out"
