#!/usr/bin/env bash
# Cluster benchmark on this machine (not a test: figures, no pass/fail).
#
# 1. Alert intake, JetStream publish -> PostgreSQL commit, with 1, 2 and
#    4 intake pumps (crates/warden-cluster/examples/intake_bench.rs).
# 2. Tasks: 1, 2 and 4 in-process workers (crates/warden-cluster/examples/
#    worker_bench.rs), each with its own PostgreSQL and NATS connections,
#    sandbox and agent, running the real plugins on the agent's path with
#    the ClusterLedger against a loopback service: tasks/s, step latency
#    p50/p99, PostgreSQL commits, and where the time goes.
#
#   scripts/cluster-bench.sh [ALERTS] [TASKS]   # default 2000 alerts, 300 tasks per run
#   WARDEN_BENCH_INTAKE_ONLY=1 / WARDEN_BENCH_TASKS_ONLY=1   # one half only
#   WARDEN_BENCH_PROFILE=dev scripts/cluster-bench.sh        # on a debug build
#   WARDEN_BENCH_PARALLEL=4   # tasks each worker runs at once (default 4)
#
# Servers run in target/cluster-bench (wiped at each start), on loopback
# ports WARDEN_BENCH_PG_PORT (55433) and WARDEN_BENCH_NATS_PORT (54223),
# with the same settings as the tests (fsync off for PostgreSQL: the
# figures are for the software path, not the disk; JetStream's file store
# does not fsync each message by default either).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
alerts=${1:-2000}
tasks=${2:-300}
parallel=${WARDEN_BENCH_PARALLEL:-4}
pg_port=${WARDEN_BENCH_PG_PORT:-55433}
nats_port=${WARDEN_BENCH_NATS_PORT:-54223}
dir=$root/target/cluster-bench
pg_url="host=127.0.0.1 port=$pg_port user=warden dbname=warden connect_timeout=5"
nats_url="nats://127.0.0.1:$nats_port"

scripts/cluster-deps.sh >/dev/null
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
  else
    "$@"
  fi
}
nats_pid=""
stop_servers() {
  set +e
  [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null
  nats_pid=""
  [ -d "$dir/pg" ] && as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1
  set -e
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

# Fresh servers for each run, so one run's backlog or table does not
# weigh on the next.
start_servers() {
  stop_servers
  rm -rf "$dir"
  mkdir -p "$dir/pg"
  [ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$dir" "$dir/pg"
  as_pg "$pg_bin/initdb" -D "$dir/pg" -U warden --auth=trust -E UTF8 --no-sync >/dev/null
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir/pg -c fsync=off -c shared_preload_libraries=pg_stat_statements" start >/dev/null
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U warden warden
  printf 'listen: "127.0.0.1:%s"\njetstream { store_dir: "%s/nats" }\n' "$nats_port" "$dir" >"$dir/nats.conf"
  target/cluster-venv/bin/nats-server -c "$dir/nats.conf" 2>"$dir/nats.log" &
  nats_pid=$!
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: nats-server did not start (see $dir/nats.log)" >&2
  exit 1
}

# WARDEN_BENCH_PROFILE=dev reuses a debug build (quicker to build; the
# client side then costs more CPU than in release; dependencies are built
# with opt-level 1 even then).
profile=${WARDEN_BENCH_PROFILE:-release}
profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
examples=${CARGO_TARGET_DIR:-$root/target}/$profile_dir/examples

if [ "${WARDEN_BENCH_TASKS_ONLY:-0}" != 1 ]; then
  cargo build -q --profile "$profile" -p warden-cluster --example intake_bench
  echo "## Intake: JetStream publish -> PostgreSQL commit ($alerts alerts per run, $(nproc) cores, $profile build)"
  echo
  echo "| pumps | alerts | publish/s (1 in flight) | publish/s (32 in flight) | drain/s (backlog) | end-to-end/s | publish->commit ms p50 / p99, saturated | same, paced 200/s |"
  echo "|---|---|---|---|---|---|---|---|"
  for pumps in 1 2 4; do
    start_servers
    "$examples/intake_bench" --pg "$pg_url" --nats "$nats_url" --alerts "$alerts" --pumps "$pumps"
  done
  stop_servers
  echo
fi

[ "${WARDEN_BENCH_INTAKE_ONLY:-0}" = 1 ] && exit 0
cargo build -q --profile "$profile" -p warden-cluster --example worker_bench
out=$dir-tasks.txt
: >"$out"
for workers in 1 2 4; do
  start_servers
  "$examples/worker_bench" --pg "$pg_url" --nats "$nats_url" --tasks "$tasks" \
    --workers "$workers" --parallel "$parallel" >>"$out"
done
stop_servers
echo "## Tasks: in-process workers, $parallel tasks each at once ($tasks tasks per run, 3 steps each, $(nproc) cores, $profile build)"
echo
echo "| workers | parallel | tasks | tasks/s | step p50 ms | step p99 ms | commit p50 / p99 ms | PostgreSQL commits (fenced) | unknown |"
echo "|---|---|---|---|---|---|---|---|---|"
sed -n 's/^T|/|/p' "$out"
echo
echo "## Where the time goes"
echo
echo "| workers | run | call p50 / p99 ms | slot time in ledger commits | slot time in sandbox calls | anchor lock wait (pg) | COMMIT time (pg) | CPU s: bench / postgres / nats-server |"
echo "|---|---|---|---|---|---|---|---|"
sed -n 's/^B|/|/p' "$out"
