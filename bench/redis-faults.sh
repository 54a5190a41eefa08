#!/usr/bin/env bash
# Requests while Redis fails under load: the storefront on Redis alone
# (`--redis-only`, every hit a Redis round trip; `TIERED=1` for the tiered
# store) under `wrk -c16` for 30 s, while its redis-server is killed at 5 s,
# restarted at 8 s, and paused (SIGSTOP) from 15 s to 20 s. Prints wrk's
# requests, latency distribution and timeouts (wrk gives up after 2 s).
#
#   bench/redis-faults.sh
#   TIERED=1 bench/redis-faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release -q -p storefront

redis_port=6391
app=127.0.0.1:3091
work=$(mktemp -d)
redis_pid=
app_pid=
cleanup() {
    [ -n "$redis_pid" ] && kill -CONT "$redis_pid" 2>/dev/null && kill "$redis_pid" 2>/dev/null
    [ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_redis() {
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
    redis_pid=$!
    for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return; sleep 0.1; done
}

start_redis
mode=(--redis-only)
[ -n "${TIERED:-}" ] && mode=()
target/release/storefront --listen "$app" --redis "redis://127.0.0.1:$redis_port" "${mode[@]}" >"$work/app.log" 2>&1 &
app_pid=$!
for _ in $(seq 1 100); do curl -sf -o /dev/null -H 'X-Tenant-ID: acme' "http://$app/api/v1/products/1" && break; sleep 0.1; done

cat >"$work/products.lua" <<'EOF'
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/products/" .. (n % 200 + 1), { ["X-Tenant-ID"] = "acme" })
end
EOF

(
    sleep 5; echo "5 s: redis killed" >&2; kill "$redis_pid"
    sleep 3; echo "8 s: redis restarted" >&2; start_redis
    sleep 7; echo "15 s: redis paused (SIGSTOP) for 5 s" >&2; kill -STOP "$redis_pid"
    sleep 5; echo "20 s: redis resumed" >&2; kill -CONT "$redis_pid"
    echo "$redis_pid" >"$work/redis.pid"
) &
faults=$!
wrk -t2 -c16 -d30s --timeout 2s --latency -s "$work/products.lua" "http://$app"
wait "$faults"
redis_pid=$(cat "$work/redis.pid")
