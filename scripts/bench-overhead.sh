#!/usr/bin/env bash
# Request overhead of poem-secure: one server, the same handler body behind
# #[public], #[secure(scopes)], #[secure(scopes, rate)] and poem-grants (the
# nearest peer), driven by wrk on loopback, routes alternated in rounds so the
# comparison is side by side. Prints a Markdown table of medians and ratios.
#
#   scripts/bench-overhead.sh [rounds=3] [seconds=5] [connections=32]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; SECS=${2:-5}; CONNS=${3:-32}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build -q --release -p poem-secure-benches --bin bench_server
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
# Server on core 0, load generator on core 1 (2-core machine).
BENCH_ADDR=$ADDR taskset -c 0 ./target/release/bench_server > /tmp/bench_server.out 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null' EXIT
for _ in $(seq 50); do grep -q TOKEN /tmp/bench_server.out 2>/dev/null && curl -s -o /dev/null http://$ADDR/public && break; sleep 0.1; done
TOKEN=$(grep TOKEN /tmp/bench_server.out | cut -d' ' -f2)
ROUTES="public secure secure_rate grants"
declare -A RESULTS
for r in $ROUTES; do  # warm-up
  taskset -c 1 wrk -t1 -c"$CONNS" -d1s -H "Authorization: Bearer $TOKEN" "http://$ADDR/$r" >/dev/null
done
for round in $(seq "$ROUNDS"); do
  for r in $ROUTES; do
    rps=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $TOKEN" "http://$ADDR/$r" \
          | awk '/Requests\/sec/ {print $2}')
    non2xx=$(taskset -c 1 wrk -t1 -c1 -d1s -H "Authorization: Bearer $TOKEN" "http://$ADDR/$r" | grep -c "Non-2xx" || true)
    [ "$non2xx" = 0 ] || { echo "route $r answered non-2xx" >&2; exit 1; }
    RESULTS[$r]="${RESULTS[$r]:-} $rps"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
PUB=$(echo "${RESULTS[public]}" | median)
GR=$(echo "${RESULTS[grants]}" | median)
echo "| route | requests/s (median of $ROUNDS × ${SECS}s, runs) | ÷ #[public] | ÷ poem-grants |"
echo "|---|---|---|---|"
for r in $ROUTES; do
  m=$(echo "${RESULTS[$r]}" | median)
  printf "| %s | %s (%s) | %.3f | %.3f |\n" "$r" "$m" "$(echo ${RESULTS[$r]} | tr ' ' '/')" "$(echo "$m / $PUB" | bc -l)" "$(echo "$m / $GR" | bc -l)"
done
