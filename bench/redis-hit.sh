#!/usr/bin/env bash
# Hits served from Redis, side by side in one run.
#
# Latency (one connection, one request at a time; p50 and p99):
#   redis GET     redis-benchmark GET of a value as large as the stored entry
#   moka          the storefront on its embedded store: the HTTP + engine cost
#   L2 (redis)    the storefront on the Redis store alone: every hit reads Redis
#   L1 (tiered)   the storefront on the tiered store: hits answer from moka
# Throughput (CONNS connections): requests/s of the three storefronts.
#
# A redis-server of its own (on a free port) and the storefronts run on core
# 0, wrk and redis-benchmark on core 1. Rounds alternate the contenders.
# Settings: DURATION (10s), CONNS (64), ROUNDS (3), REQUESTS (100000, for
# redis-benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-100000}
TENANT_HEADER='X-Tenant-ID: acme'
PATH_42=/api/v1/products/42

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
cargo build --release -q -p storefront

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis="redis://127.0.0.1:$port"

wait_for() {
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null -H "$TENANT_HEADER" "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    exit 1
}

declare -A urls
names=(moka "L2 (redis)" "L1 (tiered)")
start() {
    local name=$1 listen=$2
    shift 2
    (TOKIO_WORKER_THREADS=1 exec taskset -c 0 target/release/storefront --listen "$listen" "$@" >"$work/${listen##*:}.log" 2>&1) &
    pids+=($!)
    urls[$name]="http://$listen$PATH_42"
    wait_for "${urls[$name]}"
}
start moka 127.0.0.1:3300
start "L2 (redis)" 127.0.0.1:3301 --redis "$redis" --redis-only --redis-prefix l2:
start "L1 (tiered)" 127.0.0.1:3302 --redis "$redis" --redis-prefix l1:

for name in "${names[@]}"; do
    curl -s -o /dev/null -H "$TENANT_HEADER" "${urls[$name]}"
    status=$(curl -s -D - -o /dev/null -H "$TENANT_HEADER" "${urls[$name]}" | tr -d '\r' | grep -i '^x-cache:')
    [ "$status" = "x-cache: HIT" ] || { echo "$name is not serving hits: $status" >&2; exit 1; }
done
entry=$(redis-cli -p "$port" --scan --pattern 'l2:*}e:*products/42*' | head -1)
size=$(redis-cli -p "$port" strlen "$entry")
body=$(curl -s -H "$TENANT_HEADER" "${urls[moka]}" | wc -c)
echo "entry for $PATH_42: $size bytes in Redis (body $body bytes); $ROUNDS rounds, $(nproc) cores"

# p50 and p99 in ms from wrk --latency with one connection.
wrk_latency() {
    local out
    out=$(taskset -c 1 wrk -t1 -c1 -d"$DURATION" --latency -H "$TENANT_HEADER" "$1")
    local p50 p99
    p50=$(awk '/^ +50%/ {print $2}' <<<"$out")
    p99=$(awk '/^ +99%/ {print $2}' <<<"$out")
    echo "$(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() {
    case $1 in
    *us) echo "${1%us} / 1000" | bc -l ;;
    *ms) echo "${1%ms}" ;;
    *s) echo "${1%s} * 1000" | bc -l ;;
    esac
}
# p50 and p99 in ms from redis-benchmark, one client, GET of $size bytes.
redis_latency() {
    taskset -c 1 redis-benchmark -p "$port" -c 1 -n "$REQUESTS" -d "$size" -r 1 -t set -q >/dev/null
    taskset -c 1 redis-benchmark -p "$port" -c 1 -n "$REQUESTS" -d "$size" -t get --csv |
        awk -F, 'NR==2 {gsub(/"/,""); print $5, $7}'
}

for round in $(seq 1 "$ROUNDS"); do
    read -r p50 p99 < <(redis_latency)
    echo "redis-GET $p50 $p99" >>"$work/latency"
    printf "round %s  %-12s  p50 %7.3f ms  p99 %7.3f ms\n" "$round" "redis GET" "$p50" "$p99"
    for name in "${names[@]}"; do
        read -r p50 p99 < <(wrk_latency "${urls[$name]}")
        echo "${name// /-} $p50 $p99" >>"$work/latency"
        printf "round %s  %-12s  p50 %7.3f ms  p99 %7.3f ms\n" "$round" "$name" "$p50" "$p99"
        out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" -H "$TENANT_HEADER" "${urls[$name]}")
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        echo "${name// /-} $rps" >>"$work/throughput"
        printf "round %s  %-12s  %10.0f req/s\n" "$round" "$name" "$rps"
    done
done

median() { grep "^$1 " "$2" | awk -v f="$3" '{print $f}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "| contender    | p50 (ms) | p99 (ms) | requests/s, $CONNS conns | ratio to moka |"
echo "|--------------|---------:|---------:|------------------------:|--------------:|"
moka=$(median moka "$work/throughput" 2)
printf "| %-12s | %8.3f | %8.3f | %23s | %13s |\n" "redis GET" "$(median redis-GET "$work/latency" 2)" "$(median redis-GET "$work/latency" 3)" "-" "-"
for name in "${names[@]}"; do
    key=${name// /-}
    rps=$(median "$key" "$work/throughput" 2)
    printf "| %-12s | %8.3f | %8.3f | %23.0f | %13.3f |\n" "$name" "$(median "$key" "$work/latency" 2)" "$(median "$key" "$work/latency" 3)" "$rps" \
        "$(echo "$rps / $moka" | bc -l)"
done
