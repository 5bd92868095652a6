#!/usr/bin/env bash
# Runs weldr locally from this clone.
#
#   deploy/local-cluster.sh                    # node n1: proxy :8080, admin 127.0.0.1:8687, data ./data/n1
#   deploy/local-cluster.sh --demo             # also two test-servers on :8081/:8082, added to the pool
#   deploy/local-cluster.sh --cluster [--demo] # three nodes n1..n3 (Raft): proxies :8080/:8090/:8100,
#                                              # admin 127.0.0.1:8687/8697/8707, raft :8688/8698/8708,
#                                              # data ./data/cluster-n1..n3
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

cluster=0
demo=0
for arg in "$@"; do
  case "$arg" in
    --cluster) cluster=1 ;;
    --demo) demo=1 ;;
    *) echo "usage: $0 [--cluster] [--demo]" >&2; exit 2 ;;
  esac
done

if [ "$cluster" = 1 ]; then
  peers=n1=127.0.0.1:8688,n2=127.0.0.1:8698,n3=127.0.0.1:8708
  # No fixed fallback: a fresh random token for this run unless one is given.
  if [ -z "${WELDR_CLUSTER_TOKEN:-}" ]; then
    WELDR_CLUSTER_TOKEN="$(node -e "process.stdout.write(require('node:crypto').randomBytes(24).toString('base64url'))")"
  fi
  export WELDR_CLUSTER_TOKEN
  for i in 0 1 2; do
    node packages/node/bin/weldr.js start --id "n$((i + 1))" --listen "0.0.0.0:$((8080 + 10 * i))" \
      --admin "127.0.0.1:$((8687 + 10 * i))" --raft "127.0.0.1:$((8688 + 10 * i))" --peers "$peers" \
      --data "./data/cluster-n$((i + 1))" &
    pids+=($!)
  done
  echo "cluster: curl http://127.0.0.1:8687/cluster   (any node's admin API takes writes)" >&2
else
  node packages/node/bin/weldr.js start --id n1 --listen 0.0.0.0:8080 --admin 127.0.0.1:8687 \
    --raft 127.0.0.1:8688 --data ./data/n1 &
  pids+=($!)
fi

if [ "$demo" = 1 ]; then
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
    # In a cluster the first write waits for a leader: retry (bounded) on 503.
    added=0
    for _ in $(seq 1 25); do
      if curl -fsS http://127.0.0.1:8687/servers -H 'content-type: application/json' \
        -H "Idempotency-Key: local-demo-$port" -d "{\"ip\":\"127.0.0.1\",\"port\":$port}" >/dev/null 2>&1; then
        added=1
        break
      fi
      sleep 0.2
    done
    [ "$added" = 1 ] || echo "could not add origin :$port" >&2
  done
  echo "demo: curl http://127.0.0.1:8080/  (Ctrl-C stops everything)" >&2
fi

wait
