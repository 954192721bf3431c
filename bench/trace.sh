#!/usr/bin/env bash
# What tracing costs on W1 (bench/lua/w1.lua): paired runs of the same
# source built twice, as `make` builds it (tracing off) and with the trace
# code compiled out (-DLFB_NOTRACE, in build-notrace/), and of the normal
# build tracing to a file (LUAFUTURES_TRACE). Each round runs the three in
# turn (in an order that turns), so a change of machine load hits all
# three; the medians of the
# per-round ratios are printed:
#   TRACE off_vs_notrace <ratio> on_vs_off <ratio> rounds <n>
# (tasks/s of the first over the second; 1.00 is no cost).
# Usage: bash bench/trace.sh [ROUNDS=7] [N=100000]   (from the repo root)
set -euo pipefail
ROUNDS=${1:-7}
N=${2:-100000}
LUA=${LUA:-lua5.4}
NT=build-notrace
make -s all >/dev/null
mkdir -p $NT/concurrent
make -s MODULE=$NT/concurrent/futures.so BUILD=$NT CFLAGS=-DLFB_NOTRACE \
  FLAVOR=$NT/.flavor $NT/concurrent/futures.so >/dev/null
trace=$(mktemp --suffix=.json)
trap 'rm -f "$trace"' EXIT
# The module of build-notrace/, loaded before w1.lua's own require.
PRE="package.loaded['concurrent.futures'] = assert(package.loadlib('$NT/concurrent/futures.so', 'luaopen_concurrent_futures'))()"
w1() { "$@" | awk '{ print $3 }'; }
ratios_off=() ratios_on=()
for r in $(seq "$ROUNDS"); do
  # the order turns every round, so none of the three always goes first
  for k in $(seq 0 2); do
    case $(( (r + k) % 3 )) in
      0) off=$(w1 $LUA bench/lua/w1.lua "$N") ;;
      1) notrace=$(w1 $LUA -e "$PRE" bench/lua/w1.lua "$N") ;;
      # removed after each run: ext4 writes back a file truncated and
      # written again at its close, which would load the next runs
      2) on=$(LUAFUTURES_TRACE=$trace w1 $LUA bench/lua/w1.lua "$N"); rm -f "$trace" ;;
    esac
  done
  ratios_off+=("$(awk -v a="$off" -v b="$notrace" 'BEGIN { printf "%.4f", a / b }')")
  ratios_on+=("$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.4f", a / b }')")
  echo "round: off $off notrace $notrace on $on" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "TRACE off_vs_notrace $(median "${ratios_off[@]}") on_vs_off $(median "${ratios_on[@]}") rounds $ROUNDS"
