#!/usr/bin/env bash
# /health latency (p50, p99) of the reference service idle and during a storm
# of concurrent logins (argon2id at OWASP parameters), and the peak RSS.
#
#   scripts/bench-login-storm.sh [seconds=10] [storm-connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}; STORM=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build -q --release --example notes
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
B=http://127.0.0.1:$PORT
NOTES_ADDR=127.0.0.1:$PORT TRUSTED_PROXIES=127.0.0.1/32 RUST_LOG=off ./target/release/examples/notes > /tmp/notes-storm.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; kill $STORM_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null $B/health && break; sleep 0.1; done
lat() { wrk -t1 -c8 -d"${SECS}s" --latency "$B/health" | awk '/^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2} END {print p50, p99, rps}'; }
rss() { awk '/VmHWM/ {print $2}' /proc/$PID/status; }
read -r IP50 IP99 IRPS < <(lat)
IRSS=$(rss)
wrk -t1 -c"$STORM" -d"$((SECS + 4))s" -s scripts/bench/login-storm.lua "$B" > /tmp/storm.out 2>&1 &
STORM_PID=$!
sleep 2
read -r SP50 SP99 SRPS < <(lat)
wait $STORM_PID || true
SRSS=$(rss)
LOGINS=$(awk '/Requests\/sec/ {print $2}' /tmp/storm.out)
echo "| /health | p50 | p99 | requests/s | peak RSS (KiB) |"
echo "|---|---|---|---|---|"
echo "| idle | $IP50 | $IP99 | $IRPS | $IRSS |"
echo "| during $STORM concurrent logins ($LOGINS logins/s) | $SP50 | $SP99 | $SRPS | $SRSS |"
grep -E "Non-2xx|Socket errors" /tmp/storm.out || true
