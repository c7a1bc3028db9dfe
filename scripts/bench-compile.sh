#!/usr/bin/env bash
# Compile-time cost of the macros: a generated crate with N handlers, once
# with plain #[handler], once with #[secure(...)]/#[public] under
# #[deny_unprotected]; `cargo check` and `cargo build --release` of that crate
# alone (dependencies built beforehand), best of R runs, and the ratio.
#
#   scripts/bench-compile.sh [handlers=200] [runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}; R=${2:-3}
ROOT=$(pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# BENCH_TARGET_DIR: reuse a target dir (dependencies already built) across runs.
export CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-$WORK/target}"

gen() { # gen <name> <secure:0|1>
  local dir="$WORK/$1"; mkdir -p "$dir/src"
  cat > "$dir/Cargo.toml" <<TOML
[package]
name = "$1"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
poem-secure = { path = "$ROOT" }
poem = { version = "3.1.12", default-features = false, features = ["server"] }
[workspace]
TOML
  {
    echo "#![allow(clippy::disallowed_methods)]"
    if [ "$2" = 1 ]; then
      echo "use poem_secure::{deny_unprotected, public, secure, route::{get, Route}};"
      echo "#[deny_unprotected]"
    else
      echo "use poem::{get, Route};"
    fi
    echo "pub mod api {"
    echo "    use super::*;"
    for i in $(seq "$N"); do
      if [ "$2" = 1 ]; then
        case $((i % 4)) in
          0) echo "    #[public]" ;;
          1) echo "    #[secure(scopes = \"items:read\")]" ;;
          2) echo "    #[secure(scopes = \"items:write\", roles = [\"admin\", \"owner\"], rate = \"10/min\")]" ;;
          3) echo "    #[secure(auth = any(bearer, api_key), permissions = \"p$i\")]" ;;
        esac
      fi
      echo "    #[poem::handler]"
      echo "    pub async fn h$i() -> &'static str { \"ok\" }"
    done
    echo "}"
    echo "pub fn app() -> impl poem::Endpoint {"
    echo "    Route::new()"
    for i in $(seq "$N"); do echo "        .at(\"/h$i\", get(api::h$i))"; done
    echo "}"
  } > "$dir/src/lib.rs"
}
gen plain 0
gen declared 1

best() { # best <dir> <cargo args...>: best wall time of R rebuilds of the crate alone
  local dir=$1; shift
  (cd "$dir" && cargo "$@" -q >/dev/null 2>&1)   # dependencies
  local best=
  for _ in $(seq "$R"); do
    touch "$dir/src/lib.rs"
    local t0 t1; t0=$(date +%s.%N)
    (cd "$dir" && cargo "$@" -q >/dev/null)
    t1=$(date +%s.%N)
    local t; t=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
  done
  echo "$best"
}
echo "| $N handlers | plain #[handler] (s) | #[secure]/#[public] + #[deny_unprotected] (s) | ratio |"
echo "|---|---|---|---|"
for cmd in "check" "build --release"; do
  p=$(best "$WORK/plain" $cmd); d=$(best "$WORK/declared" $cmd)
  printf "| cargo %s | %.2f | %.2f | %.2f |\n" "$cmd" "$p" "$d" "$(echo "$d / $p" | bc -l)"
done
