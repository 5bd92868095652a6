#!/usr/bin/env bash
# Runs weldr locally from this clone. Today: one node (clustering lands in a later
# issue; this script will then start three nodes n1..n3 on loopback).
#
#   deploy/local-cluster.sh            # node n1: proxy :8080, admin 127.0.0.1:8687, data ./data/n1
#   deploy/local-cluster.sh --demo     # also two test-servers on :8081/:8082, added to the pool
#
# Ctrl-C stops everything this script started (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -f packages/node/dist/src/main.js ] || npm run build

# Children get their own process groups (job control), so a Ctrl-C in the terminal
# reaches only this script, which then sends each child exactly one SIGTERM: weldr
# treats a second signal as "exit now" and would skip its graceful drain.
set -m
pids=()
cleaned=0
cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

node packages/node/bin/weldr.js start --id n1 --listen 0.0.0.0:8080 --admin 127.0.0.1:8687 \
  --raft 127.0.0.1:8688 --data ./data/n1 &
pids+=($!)

if [ "${1:-}" = "--demo" ]; then
  for port in 8081 8082; do
    node packages/node/bin/weldr.js test-server --port "$port" --id "origin-$port" &
    pids+=($!)
  done
  # Wait (bounded) for the admin API, then register both origins.
  for _ in $(seq 1 50); do
    curl -fsS http://127.0.0.1:8687/health >/dev/null 2>&1 && break
    sleep 0.2
  done
  for port in 8081 8082; do
    curl -fsS http://127.0.0.1:8687/servers -H 'content-type: application/json' \
      -d "{\"ip\":\"127.0.0.1\",\"port\":$port}" >/dev/null || echo "could not add origin :$port" >&2
  done
  echo "demo: curl http://127.0.0.1:8080/  (Ctrl-C stops everything)" >&2
fi

wait
