#!/usr/bin/env bash
# Cached hits against the ceiling, side by side in one run, with wrk.
#
# FRAMEWORK=axum (default):
#   ceiling     an axum handler returning the product's bytes from memory, no cache
#   ceiling+h   the same, plus the headers a hit carries, as fixed values
#   layer       the same handler behind a cache-axum layer (every request a hit)
#   storefront  the storefront's cached GET /api/v1/products/42 (every request a hit)
# FRAMEWORK=actix:
#   ceiling     an actix-web handler returning the same bytes, no cache
#   layer       the same handler behind cache-actix middleware
#   storefront  storefront-actix's cached product route
#
# Each server runs on one core (taskset, one worker) and wrk on the other,
# so that they do not take turns on the same core. Rounds alternate the
# contenders so that noise on this shared machine spreads over all of
# them; the table shows the median requests/s and the server's CPU time per
# request (user + system, from /proc), each with its ratio to the ceiling.
# Settings: FRAMEWORK, DURATION (10s), CONNS (64), THREADS (1), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."

FRAMEWORK=${FRAMEWORK:-axum}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
TENANT_HEADER='X-Tenant-ID: acme'
PATH_42=/api/v1/products/42

if ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
packages=(-p storefront)
[ "$FRAMEWORK" = actix ] && packages+=(-p storefront-actix)
cargo build --release -q "${packages[@]}"
# The ceilings live in the bench workspace (bench/Cargo.toml).
cargo build --release -q --manifest-path bench/Cargo.toml --bin ceiling --bin ceiling-actix
ceilings=bench/target/release

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

wait_for() {
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null -H "$TENANT_HEADER" "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    exit 1
}

declare -A pid_of urls
names=()
# start NAME PORT COMMAND...: a contender on core 0 with one worker thread.
start() {
    local name=$1 port=$2
    shift 2
    (TOKIO_WORKER_THREADS=1 exec taskset -c 0 "$@" >"$work/$name.log" 2>&1) &
    pids+=($!)
    pid_of[$name]=$!
    urls[$name]="http://127.0.0.1:$port$PATH_42"
    names+=("$name")
    wait_for "${urls[$name]}"
}

# The product's bytes, from the storefront itself.
if [ "$FRAMEWORK" = axum ]; then
    start storefront 3000 target/release/storefront --listen 127.0.0.1:3000
    curl -sf -H "$TENANT_HEADER" "${urls[storefront]}" >"$work/product.json"
    names=()
    start ceiling 3100 "$ceilings/ceiling" --listen 127.0.0.1:3100 --body-file "$work/product.json"
    start ceiling+h 3102 "$ceilings/ceiling" --listen 127.0.0.1:3102 --body-file "$work/product.json" --hit-headers
    start layer 3101 "$ceilings/ceiling" --listen 127.0.0.1:3101 --body-file "$work/product.json" --cache
    names+=(storefront)
else
    start storefront 3001 target/release/storefront-actix --listen 127.0.0.1:3001
    curl -sf -H "$TENANT_HEADER" "${urls[storefront]}" >"$work/product.json"
    names=()
    start ceiling 3200 "$ceilings/ceiling-actix" --listen 127.0.0.1:3200 --body-file "$work/product.json"
    start layer 3201 "$ceilings/ceiling-actix" --listen 127.0.0.1:3201 --body-file "$work/product.json" --cache
    names+=(storefront)
fi

for name in layer storefront; do
    status=$(curl -s -D - -o /dev/null -H "$TENANT_HEADER" "${urls[$name]}" | tr -d '\r' | grep -i '^x-cache:')
    [ "$status" = "x-cache: HIT" ] || { echo "$name is not serving hits: $status" >&2; exit 1; }
done
cmp -s "$work/product.json" <(curl -s -H "$TENANT_HEADER" "${urls[ceiling]}") || { echo "ceiling bytes differ" >&2; exit 1; }

echo "$FRAMEWORK: body $(wc -c <"$work/product.json") bytes; wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS rounds, $(nproc) cores"
# CPU time (user + system, in clock ticks) a server has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick_us=$((1000000 / $(getconf CLK_TCK)))

for round in $(seq 1 "$ROUNDS"); do
    for name in "${names[@]}"; do
        before=$(cpu_ticks "${pid_of[$name]}")
        out=$(taskset -c 1 wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -H "$TENANT_HEADER" "${urls[$name]}")
        ticks=$(($(cpu_ticks "${pid_of[$name]}") - before))
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        cpu=$(echo "$ticks * $tick_us / $requests" | bc -l)
        echo "$name $rps $cpu" >>"$work/results"
        printf "round %s  %-10s  %10.0f req/s  %6.2f us CPU/request\n" "$round" "$name" "$rps" "$cpu"
    done
done

median() { grep "^$1 " "$work/results" | awk -v f="$2" '{print $f}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ceiling=$(median ceiling 2)
ceiling_cpu=$(median ceiling 3)
echo
echo "| contender  | requests/s (median) | ratio to ceiling | server CPU per request (median) | ceiling CPU / contender CPU |"
echo "|------------|--------------------:|-----------------:|--------------------------------:|----------------------------:|"
for name in "${names[@]}"; do
    m=$(median "$name" 2)
    c=$(median "$name" 3)
    printf "| %-10s | %19.0f | %16.3f | %28.2f us | %27.3f |\n" "$name" "$m" "$(echo "$m / $ceiling" | bc -l)" "$c" "$(echo "$ceiling_cpu / $c" | bc -l)"
done
