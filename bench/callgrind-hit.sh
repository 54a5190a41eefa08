#!/usr/bin/env bash
# User-space instructions per request of contenders under load: each
# contender runs under callgrind on core 0 (instrumentation off), is warmed
# up with wrk on core 1, then counted during a 5 s wrk run; the total over
# wrk's request count is printed. Exact and unaffected by the machine's
# noise, unlike timings (the kernel's part is not counted).
#
#   bench/callgrind-hit.sh ceiling moka axum-response-cache actix-ceiling actix-moka
#   REDIS=redis://127.0.0.1:6379 bench/callgrind-hit.sh tiered
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v valgrind >/dev/null || need+=(valgrind)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release -q --manifest-path bench/Cargo.toml --bin contender

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
url_path=/b/1024/hot
port=4712
for kind in "$@"; do
    extra=()
    [ -n "${REDIS:-}" ] && extra=(--redis "$REDIS")
    taskset -c 0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/$kind.out" \
        bench/target/release/contender "$kind" "${extra[@]}" --listen "127.0.0.1:$port" >"$work/$kind.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port$url_path" && break; sleep 0.2; done
    taskset -c 1 wrk -t1 -c64 -d2s "http://127.0.0.1:$port$url_path" >/dev/null
    callgrind_control -i on "$pid" >/dev/null
    requests=$(taskset -c 1 wrk -t1 -c64 -d5s "http://127.0.0.1:$port$url_path" | awk '/requests in/ {print $1}')
    callgrind_control -i off "$pid" >/dev/null
    callgrind_control -d "$pid" >/dev/null
    sleep 1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    total=$(cat "$work/$kind.out"* | awk '/^summary:/ {s += $2} /^totals:/ {t += $2} END {print (s > 0 ? s : t)}')
    echo "$kind: $((total / requests)) instructions per request ($requests requests)"
    port=$((port + 1))
done
