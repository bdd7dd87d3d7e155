#!/usr/bin/env bash
# Run a cluster on this machine with one command: PostgreSQL (the record)
# and nats-server with JetStream (the bus) on loopback ports, two
# `warden serve --cluster` workers on the example config, a few alerts
# posted to both, and what became of them. Everything is stopped on exit
# (Ctrl-C, an error, or the end of the demo).
#
#   scripts/cluster.sh            # demo, then stop
#   scripts/cluster.sh --stay     # keep it running until Ctrl-C
#   scripts/cluster.sh --servers  # only PostgreSQL and NATS, until Ctrl-C
#
# State lives in target/cluster-demo (wiped at each start). Ports:
# WARDEN_DEMO_PG_PORT (55432), WARDEN_DEMO_NATS_PORT (54222), workers on
# 127.0.0.1:18091 and :18092.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
stay=0
servers_only=0
case "${1:-}" in
  --stay) stay=1 ;;
  --servers) servers_only=1 ;;
  "") ;;
  *) echo "usage: scripts/cluster.sh [--stay | --servers]" >&2; exit 2 ;;
esac

pg_port=${WARDEN_DEMO_PG_PORT:-55432}
nats_port=${WARDEN_DEMO_NATS_PORT:-54222}
ports=(18091 18092)
demo=$root/target/cluster-demo
pg_url="host=127.0.0.1 port=$pg_port user=warden dbname=warden connect_timeout=5"
nats_url="nats://127.0.0.1:$nats_port"

scripts/cluster-deps.sh
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
nats_bin=$root/target/cluster-venv/bin/nats-server

# PostgreSQL refuses to run as root: then it runs as nobody.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"
  else
    "$@"
  fi
}

pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  [ -d "$demo/pg" ] && as_pg "$pg_bin/pg_ctl" -D "$demo/pg" -m fast -w stop >/dev/null 2>&1
  echo "cluster stopped (logs in $demo)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() { # port, what
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: $2 did not listen on 127.0.0.1:$1 within 30 s (see $demo)" >&2
  return 1
}

if [ "$servers_only" -eq 0 ]; then
  echo "== building warden and its plugins"
  cargo build -q -p warden-cli
  warden=${CARGO_TARGET_DIR:-$root/target}/debug/warden
  rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
  "$warden" plugin build >/dev/null
  if ! "$warden" serve --help 2>/dev/null | grep -q -- '--cluster'; then
    echo "error: this warden has no 'serve --cluster' yet (issue 17, the worker side);" >&2
    echo "       'scripts/cluster.sh --servers' starts PostgreSQL and NATS alone." >&2
    exit 2
  fi
fi

rm -rf "$demo"
mkdir -p "$demo"

echo "== PostgreSQL on 127.0.0.1:$pg_port"
mkdir -p "$demo/pg"
[ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$demo" "$demo/pg"
as_pg "$pg_bin/initdb" -D "$demo/pg" -U warden --auth=trust -E UTF8 --no-sync >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$demo/pg" -l "$demo/pg/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $demo/pg" start >/dev/null
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U warden warden

echo "== nats-server (JetStream) on 127.0.0.1:$nats_port"
cat >"$demo/nats.conf" <<EOF
listen: "127.0.0.1:$nats_port"
jetstream { store_dir: "$demo/nats" }
EOF
"$nats_bin" -c "$demo/nats.conf" 2>"$demo/nats.log" &
pids+=($!)
wait_port "$nats_port" nats-server

if [ "$servers_only" -eq 1 ]; then
  echo "postgres: $pg_url"
  echo "nats:     $nats_url"
  echo "running; Ctrl-C stops both"
  wait "${pids[0]}"
  exit 0
fi

umask 077
mkdir -p .warden/secrets
for name in admin-token alertmanager-token webhook-secret; do
  [ -s ".warden/secrets/$name" ] || od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >".warden/secrets/$name"
done
umask 022

# Each worker: the example config (paths re-rooted, its own journal and
# data directory, its own port) plus a [cluster] section.
for i in 1 2; do
  port=${ports[$((i - 1))]}
  conf=$demo/worker-$i.toml
  sed -e "s|^journal = .*|journal = \"worker-$i/journal.jsonl\"|" \
    -e "s|^data_dir = .*|data_dir = \"worker-$i/serve\"|" \
    -e "s|^runbooks = .*|runbooks = \"../../examples/runbooks\"|" \
    -e "s|^addr = .*|addr = \"127.0.0.1:$port\"|" \
    examples/serve/warden.toml >"$conf"
  cat >>"$conf" <<EOF

[cluster]
postgres = "$pg_url"
nats = "$nats_url"
worker = "worker-$i"
lease = "15s"
EOF
  mkdir -p "$demo/worker-$i"
  echo "== worker-$i on 127.0.0.1:$port"
  "$warden" serve --config "$conf" --cluster 2>"$demo/worker-$i.log" &
  pids+=($!)
done
for port in "${ports[@]}"; do wait_port "$port" "warden serve"; done

token=$(cat .warden/secrets/admin-token)
am=$(cat .warden/secrets/alertmanager-token)
# Three alerts; each is posted to both workers (a load balancer retrying,
# two Alertmanagers in HA): the record must hold three tasks, not six.
for n in 1 2 3; do
  body="{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"fingerprint\":\"demo-$n\",\"labels\":{\"alertname\":\"DemoAlert$n\",\"severity\":\"page\",\"job\":\"api\"},\"annotations\":{\"description\":\"demo alert $n\"}}]}"
  for port in "${ports[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $am" \
      -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/v1/alerts/alertmanager")
    echo "alert demo-$n -> worker on :$port: HTTP $code"
  done
done

echo "== the record (PostgreSQL)"
for _ in $(seq 1 100); do
  left=$("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U warden -d warden -Atc \
    "SELECT count(*) FROM warden_tasks WHERE state IN ('queued','running')" 2>/dev/null || echo "?")
  [ "$left" = "0" ] && break
  sleep 0.2
done
"$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U warden -d warden -c \
  "SELECT id, intake_key, state FROM warden_tasks ORDER BY created_at"
for port in "${ports[@]}"; do
  echo "== /v1/tasks on :$port"
  curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/tasks" | head -c 2000
  echo
done

if [ "$stay" -eq 1 ]; then
  echo "running; Ctrl-C stops everything"
  wait "${pids[0]}"
fi
