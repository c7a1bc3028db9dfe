#!/usr/bin/env bash
# Request overhead of poem-secure: one server (poem-secure-benches'
# bench_server, release), the same handler body behind six protections (see
# benches/app.rs), driven by wrk on loopback. Routes alternate within each
# round (the starting route rotates from round to round), so every ratio
# compares runs seconds apart. Prints the load average, a Markdown table of
# medians, and the ratios two ways: of the medians, and the median (min–max)
# of the ratios within each round.
#
# Two measures per run: requests/s (wrk), and the server's CPU time per
# request (utime + stime of its process over the run, /proc/PID/stat, divided
# by the requests wrk completed). On a machine shared with other work the
# first swings with whatever else runs on core 0; the second counts only the
# time the server actually ran, so it is the steadier one. Its ratios are
# printed the same way up (b's CPU per request ÷ a's, >1 when a is cheaper).
#
#   scripts/bench-overhead.sh [rounds=5] [seconds=5] [connections=32]
#
# Server pinned to core 0, wrk to core 1 (a 2-core machine).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}; SECS=${2:-5}; CONNS=${3:-32}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build -q --release -p poem-secure-benches --bin bench_server
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
OUT=$(mktemp)
BENCH_ADDR=$ADDR taskset -c 0 "$TARGET_DIR/release/bench_server" > "$OUT" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$OUT"' EXIT
for _ in $(seq 100); do grep -q TOKEN "$OUT" 2>/dev/null && curl -s -o /dev/null "http://$ADDR/none" && break; sleep 0.1; done
TOKEN=$(grep TOKEN "$OUT" | cut -d' ' -f2)
ROUTES=(none public secure secure_rate floor grants)
for r in "${ROUTES[@]}"; do  # every route answers 200 to the token, and 401 without it (but none, public)
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://$ADDR/$r")
  [ "$code" = 200 ] || { echo "route $r answered $code" >&2; exit 1; }
  anon=$(curl -s -o /dev/null -w '%{http_code}' "http://$ADDR/$r")
  case $r in none|public) want=200 ;; *) want=401 ;; esac
  [ "$anon" = "$want" ] || { echo "route $r answered $anon without a token (want $want)" >&2; exit 1; }
  taskset -c 1 wrk -t1 -c"$CONNS" -d1s -H "Authorization: Bearer $TOKEN" "http://$ADDR/$r" >/dev/null  # warm-up
done
LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
declare -A RPS CPU   # RPS[route,round]; CPU[route,round] = server CPU µs per request
TICK=$(getconf CLK_TCK)
cputicks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
N=${#ROUTES[@]}
for round in $(seq "$ROUNDS"); do
  for i in $(seq 0 $((N - 1))); do
    r=${ROUTES[$(((i + round - 1) % N))]}
    t0=$(cputicks)
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $TOKEN" "http://$ADDR/$r")
    t1=$(cputicks)
    if grep -qE "Non-2xx|Socket errors" <<<"$out"; then echo "route $r: $(grep -E 'Non-2xx|Socket errors' <<<"$out")" >&2; exit 1; fi
    RPS[$r,$round]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    CPU[$r,$round]=$(echo "($t1 - $t0) * 1000000 / $TICK / $reqs" | bc -l)
  done
done
LOAD_AFTER=$(uptime | sed 's/.*load average: //')
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
runs() { local -n m=$1; local s=; for round in $(seq "$ROUNDS"); do s="$s ${m[$2,$round]}"; done; echo "$s"; }
echo "load average (1, 5, 15 min): before $LOAD_BEFORE; after $LOAD_AFTER; $(nproc) cores"
echo
echo "| route | requests/s, median of $ROUNDS × ${SECS}s | runs | server CPU µs/request, median | runs |"
echo "|---|---|---|---|---|"
declare -A MED MCPU
for r in "${ROUTES[@]}"; do
  MED[$r]=$(runs RPS "$r" | median)
  MCPU[$r]=$(runs CPU "$r" | median)
  printf "| %s | %.0f | %s | %.2f | %s |\n" "$r" "${MED[$r]}" "$(runs RPS "$r" | xargs printf '%.0f ' | sed 's/ $//; s/ / \/ /g')" \
    "${MCPU[$r]}" "$(runs CPU "$r" | xargs printf '%.2f ' | sed 's/ $//; s/ / \/ /g')"
done
echo
echo "| ratio | requests/s: of the medians | requests/s: median of the rounds' ratios (min – max) | CPU/request: of the medians | CPU/request: median of the rounds' ratios (min – max) |"
echo "|---|---|---|---|---|"
for pair in secure:floor secure:grants secure:none public:none floor:none grants:none secure_rate:secure; do
  a=${pair%:*}; b=${pair#*:}
  rr=$(for round in $(seq "$ROUNDS"); do echo "${RPS[$a,$round]} / ${RPS[$b,$round]}" | bc -l; done)
  cr=$(for round in $(seq "$ROUNDS"); do echo "${CPU[$b,$round]} / ${CPU[$a,$round]}" | bc -l; done)
  printf "| %s ÷ %s | %.3f | %.3f (%.3f – %.3f) | %.3f | %.3f (%.3f – %.3f) |\n" "$a" "$b" \
    "$(echo "${MED[$a]} / ${MED[$b]}" | bc -l)" \
    "$(echo "$rr" | median)" "$(echo "$rr" | sort -g | head -1)" "$(echo "$rr" | sort -g | tail -1)" \
    "$(echo "${MCPU[$b]} / ${MCPU[$a]}" | bc -l)" \
    "$(echo "$cr" | median)" "$(echo "$cr" | sort -g | head -1)" "$(echo "$cr" | sort -g | tail -1)"
done
