#!/usr/bin/env bash
# bench/run.sh: luafutures vs Python's concurrent.futures, side by side.
#
# Runs every workload of bench/lua and its twin in bench/py in the same
# call (machine speed and other load drift between calls), REPS whole-process
# runs of each, alternating sides, and prints the median of each figure in
# one table.  Run from anywhere; it works in the repository root and needs
# concurrent/futures.so built (make).
#
#   bash bench/run.sh [--check] [--reps N]
#
#   --check   exit 1 when a checked target is missed (W1 >= 15x Python,
#             W4 median <= 1/5 of Python's, W3 thread map >= 3x Python's
#             process map, W2 >= 5x Python, Q1 queue >= 5x Python's
#             queue.Queue, Q2 queue round trip median < 5 us, W8 main-
#             thread CPU per task of as_completed and of the drain loop
#             within 1.5x from 10^3 to 10^5 tasks); a skipped
#             workload does not fail, one that errors does
#   --reps N  whole-process runs per workload and side (default 3)
#
# Environment: LUA (default lua5.4), PYTHON (default python3.11, else
# python3), BENCH_TIMEOUT seconds per run (default 120),
# W3_PY_THREAD_ITEMS items for Python's thread-pool map (default 100000:
# it makes one future per item, ~18 s and 1.7 GiB for the full 1,000,000;
# its rate does not depend on the count).
set -u
cd "$(dirname "$0")/.." || exit 2

CHECK=0
REPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1 ;;
    --reps) shift; REPS=${1:?--reps needs a number} ;;
    --reps=*) REPS=${1#--reps=} ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

LUA=${LUA:-lua5.4}
if [ -z "${PYTHON:-}" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
TIMEOUT=${BENCH_TIMEOUT:-120}
PY_W3T=${W3_PY_THREAD_ITEMS:-100000}

if [ ! -f concurrent/futures.so ]; then
  echo "run.sh: concurrent/futures.so not found; run make first" >&2
  exit 2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/lua.kv"; : >"$TMP/py.kv"; : >"$TMP/luv.kv"

TIMECMD=()
if [ -x /usr/bin/time ]; then
  TIMECMD=(/usr/bin/time -f %M -o "$TMP/maxrss")
else
  echo "note: /usr/bin/time not found (Debian package 'time'); peak RSS column left empty" >&2
fi
HAVE_LUV=0
if "$LUA" -e 'require "luv"' >/dev/null 2>&1; then HAVE_LUV=1; fi

# job NAME SIDE CMD...: one whole-process run.  Each output line
# "<ID> k1 v1 k2 v2 ..." is stored as "NAME.k1 v1" ... in SIDE's file;
# "<ID> skipped why" as "NAME.skipped why"; a failure as "NAME.error rc".
job() {
  local name=$1 side=$2 rc
  shift 2
  rm -f "$TMP/maxrss"
  timeout "$TIMEOUT" "${TIMECMD[@]}" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "$name.error $rc" >>"$TMP/$side.kv"
    {
      echo "!! $side $name failed (exit $rc): $*"
      head -n 4 "$TMP/err" | sed 's/^/!!   /'
    } >&2
    return
  fi
  if [ -s "$TMP/err" ]; then
    sed "s/^/   ($side $name stderr) /" "$TMP/err" | head -n 5 >&2
  fi
  awk -v n="$name" '{ for (i = 2; i < NF; i += 2) print n "." $i, $(i + 1) }' \
    "$TMP/out" >>"$TMP/$side.kv"
  if [ -s "$TMP/maxrss" ]; then
    echo "$name.peak_kib $(tail -n 1 "$TMP/maxrss")" >>"$TMP/$side.kv"
  fi
}

both() {  # both NAME "lua args" "python args"
  job "$1" lua "$LUA" $2
  job "$1" py "$PYTHON" $3
}

echo "luafutures bench: $REPS run(s) per workload and side, median shown" >&2
START=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  echo "  run $rep of $REPS ..." >&2
  both W1  "bench/lua/w1.lua"          "bench/py/w1.py"
  job W1nt lua env LUAFUTURES_DEADLOCK_CHECK=0 "$LUA" bench/lua/w1.lua
  job W1c lua "$LUA" bench/lua/w1.lua 100000 closure
  if [ $HAVE_LUV = 1 ]; then
    UV_THREADPOOL_SIZE=2 job W1 luv "$LUA" bench/lua/luv_w1.lua
  fi
  both W2  "bench/lua/w2.lua"          "bench/py/w2.py"
  both W3t "bench/lua/w3.lua thread"   "bench/py/w3.py thread $PY_W3T"
  both W3p "bench/lua/w3.lua process"  "bench/py/w3.py process"
  both W4  "bench/lua/w4.lua"          "bench/py/w4.py"
  if command -v taskset >/dev/null 2>&1; then
    job W4pin lua taskset -c 0 "$LUA" bench/lua/w4.lua
    job W4pin py taskset -c 0 "$PYTHON" bench/py/w4.py
  fi
  both W5  "bench/lua/w5.lua"          "bench/py/w5.py"
  both W6  "bench/lua/w6.lua"          "bench/py/w6.py"
  both W7t "bench/lua/w7.lua thread"   "bench/py/w7.py thread"
  both W7s "bench/lua/w7.lua spawn"    "bench/py/w7.py spawn"
  both W7f "bench/lua/w7.lua fork"     "bench/py/w7.py process"
  both Q1  "bench/lua/queue.lua throughput" "bench/py/queues.py throughput"
  both Q2  "bench/lua/queue.lua roundtrip"  "bench/py/queues.py roundtrip"
  both W8a "bench/lua/w8.lua as_completed" "bench/py/w8.py as_completed"
  # Python's drain loop is O(n) per wait: past 4 minutes at 10^5, so 10^4.
  both W8d "bench/lua/w8.lua drain"    "bench/py/w8.py drain 10000"
  job W9r lua "$LUA" bench/lua/codec.lua records
  both W9f "bench/lua/codec.lua floats" "bench/py/codec.py floats"
  job W9d lua "$LUA" bench/lua/codec.lua deep
  both M1p "bench/lua/m1.lua pending"  "bench/py/m1.py pending"
  both M1t "bench/lua/m1.lua thread"   "bench/py/m1.py thread"
  both M1s "bench/lua/m1.lua spawn"    "bench/py/m1.py spawn"
  job S1 lua "$LUA" bench/lua/shared.lua
done
ELAPSED=$(( $(date +%s) - START ))

# Median of every numeric key; a key with any error or skip keeps that word.
for side in lua py luv; do
  sort -k1,1 -k2,2g "$TMP/$side.kv" | awk '
    function flush() {
      if (key == "") return
      if (bad != "") print key, bad
      else if (n % 2) print key, v[(n + 1) / 2]
      else print key, (v[n / 2] + v[n / 2 + 1]) / 2
    }
    {
      split($1, p, "."); job = p[1]
      if ($1 != key) { flush(); key = $1; n = 0; bad = "" }
      if (p[2] == "error") bad = "error"
      else if (p[2] == "skipped") bad = "skipped"
      else v[++n] = $2
    }
    END { flush() }' >"$TMP/$side.med"
done

# get SIDE NAME.KEY: the median, "error"/"skipped" when the job failed or
# skipped, or nothing.
get() {
  local side=$1 key=$2 job=${2%%.*} v
  v=$(awk -v k="$job.error" '$1 == k { print "error" }' "$TMP/$side.med")
  [ -n "$v" ] && { echo "$v"; return; }
  v=$(awk -v k="$job.skipped" '$1 == k { print "skipped" }' "$TMP/$side.med")
  [ -n "$v" ] && { echo "$v"; return; }
  awk -v k="$key" '$1 == k { print $2 }' "$TMP/$side.med"
}

isnum() { [[ $1 =~ ^-?[0-9.]+([eE][-+]?[0-9]+)?$ ]]; }
fmt() {  # fmt VALUE FORMAT: numbers formatted, anything else as "n/a"/"ERROR"
  if isnum "$1"; then awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }'
  elif [ "$1" = error ]; then printf 'ERROR'
  else printf 'n/a'; fi
}
calc() { awk "BEGIN { printf \"%.4g\", $1 }"; }
ratio() {  # ratio EXPR: 2 decimals below 100, none above
  awk "BEGIN { r = $1; if (r < 100) printf \"%.2fx\", r; else printf \"%.0fx\", r }"
}

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
echo
echo "## luafutures vs Python concurrent.futures"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); host: $(uname -srm)"
echo "- CPU: $CPU; nproc $(nproc); RAM $MEM; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- Lua: $("$LUA" -v 2>&1 | head -n 1); Python: $("$PYTHON" --version 2>&1) (multiprocessing default: $("$PYTHON" -c 'import multiprocessing as m; print(m.get_start_method())'))"
if [ $HAVE_LUV = 1 ]; then
  echo "- luv: $("$LUA" -e 'print((require "luv").version_string())') (uv.new_work, UV_THREADPOOL_SIZE=2)"
else
  echo "- luv: not installed (Debian package lua-luv); its column is empty"
fi
echo "- luafutures commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- runtime bindings 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "- $REPS whole-process run(s) per cell, median; $ELAPSED s in all. Process pools: luafutures spawn, Python fork, unless a row says otherwise."
echo
echo "| workload | luafutures | Python | ratio | luv | target |"
echo "|---|---:|---:|---:|---:|---|"

FAIL=0
NOTES=()
# row LABEL LUAKEY PYKEY DIR FORMAT [LUVKEY] [TARGET]
# DIR: up (higher is better, ratio lua/py), down (lower is better, ratio
# py/lua), none (no ratio).  The ratio is always "times better".
row() {
  local label=$1 lk=$2 pk=$3 dir=$4 f=$5 vk=${6:-} target=${7:-}
  local lv pv ratio="" luv=""
  lv=$(get lua "$lk"); pv=$(get py "$pk")
  if isnum "$lv" && isnum "$pv"; then
    case $dir in
      up) ratio=$(ratio "$lv / $pv") ;;
      down) ratio=$(ratio "$pv / $lv") ;;
    esac
  fi
  [ -n "$vk" ] && luv=$(fmt "$(get luv "$vk")" "$f")
  printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$(fmt "$lv" "$f")" \
    "$(fmt "$pv" "$f")" "$ratio" "$luv" "$target"
}

# target NAME ENFORCED LUAVALUE EXPR-WITH-x: prints ok/MISSED; EXPR uses x.
target() {
  local name=$1 enforced=$2 v=$3 expr=$4 verdict
  if [ "$v" = skipped ]; then verdict="skipped"
  elif [ "$v" = "" ] && [ "$enforced" = 0 ]; then verdict="n/a (no figure)"
  elif ! isnum "$v"; then verdict="MISSED (no figure: ${v:-missing})"
  elif awk -v x="$v" "BEGIN { exit !($expr) }"; then verdict="ok ($(printf '%.3g' "$v"))"
  else verdict="MISSED ($(printf '%.3g' "$v"))"; fi
  NOTES+=("$(printf '%-6s %-58s %s' "$([ "$enforced" = 1 ] && echo check || echo info)" "$name" "$verdict")")
  if [ "$enforced" = 1 ] && [ "${verdict%% *}" = MISSED ]; then FAIL=1; fi
}

row "W1 thread pool(2), 100k submit+result, tasks/s" W1.tasks_per_s W1.tasks_per_s up "%.0f" W1.luv_tasks_per_s ">= 15x, > luv"
row "W1 main-thread CPU per task, ns" W1.main_cpu_ns_per_task "" none "%.0f" "" "<= 400"
row "W1 with a one-upvalue closure, tasks/s" W1c.tasks_per_s "" none "%.0f"
row "W2 process pool(2), 20k submit+result, tasks/s" W2.tasks_per_s W2.tasks_per_s up "%.0f" "" ">= 5x"
row "W3 map 1M chunksize 1000, thread pool, items/s (Py: $PY_W3T items)" W3t.thread_items_per_s W3t.thread_items_per_s up "%.0f"
row "W3 map 1M chunksize 1000, process pool, items/s" W3p.process_items_per_s W3p.process_items_per_s up "%.0f" "" ">= 2x"
row "W3 luafutures thread map vs Python process map, items/s" W3t.thread_items_per_s W3p.process_items_per_s up "%.0f" "" ">= 3x"
row "W4 round trip, thread pool(1), median us" W4.median_us W4.median_us down "%.1f" "" "<= 1/5"
row "W4 round trip, p99 us" W4.p99_us W4.p99_us down "%.1f"
row "W4 round trip, pinned to 1 CPU, median us" W4pin.median_us W4pin.median_us down "%.1f"
row "W5 4 x sum(i*i, 5M), sequential s" W5.seq_s W5.seq_s down "%.3f"
row "W5 thread pool(2) s, incl. start" W5.thread_s W5.thread_s down "%.3f"
row "W5 thread pool speedup" W5.thread_speedup W5.thread_speedup none "%.2fx" "" ">= 1.85x"
row "W5 process pool(2) speedup (spawn)" W5.spawn_speedup W5.spawn_speedup none "%.2fx" "" ">= 1.85x"
row "W5 process pool(2) speedup (fork)" W5.fork_speedup W5.fork_speedup none "%.2fx"
row "W6 is_prime example, sequential s" W6.seq_s W6.seq_s down "%.3f"
row "W6 process pool(2) speedup (spawn)" W6.spawn_speedup W6.spawn_speedup none "%.2fx"
row "W6 process pool(2) speedup (fork)" W6.fork_speedup W6.fork_speedup none "%.2fx"
row "W6 thread pool(2) speedup" W6.thread_speedup W6.thread_speedup none "%.2fx"
row "W7 thread pool(2) create+task+shutdown, ms" W7t.thread_ms W7t.thread_ms down "%.3f" "" "<= 0.2 ms"
row "W7 process pool(2) cycle, spawn, ms" W7s.spawn_ms W7s.spawn_ms down "%.2f"
row "W7 process pool(2) cycle, fork, ms" W7f.fork_ms W7f.fork_ms down "%.2f"
row "Q1 Queue, 1 producer + 1 consumer thread, 1M ints, items/s" Q1.items_per_s Q1.items_per_s up "%.0f" "" ">= 5x"
row "Q2 Queue round trip main <-> worker, median us" Q2.median_us Q2.median_us down "%.2f" "" "< 5 us"
row "Q2 Queue round trip, p99 us" Q2.p99_us Q2.p99_us down "%.2f"
row "W8 as_completed, 10^3 tasks of 100 us, main-thread CPU ns/task" W8a.as_completed_ns_1000 W8a.as_completed_ns_1000 down "%.0f"
row "W8 as_completed, 10^5 tasks, main-thread CPU ns/task" W8a.as_completed_ns_100000 W8a.as_completed_ns_100000 down "%.0f" "" ">= 3x"
row "W8 as_completed growth 10^3 -> 10^5 (per-task CPU ratio)" W8a.as_completed_growth W8a.as_completed_growth none "%.2f" "" "<= 1.5"
row "W8 drain loop wait(FIRST_COMPLETED), 10^4 tasks, ns/task" W8d.drain_ns_10000 W8d.drain_ns_10000 down "%.0f"
row "W8 drain loop, 10^5 tasks, ns/task (Py: not run)" W8d.drain_ns_100000 W8d.drain_ns_100000 down "%.0f"
row "W8 drain loop growth 10^3 -> 10^5" W8d.drain_growth W8d.drain_growth none "%.2f" "" "<= 1.5"
row "W9 100k records through a Queue in one state (encode+decode), s" W9r.records_s "" none "%.3f" "" "<= cjson"
row "W9 the same records, lua-cjson decode(encode(t)) in Lua, s" W9r.cjson_s "" none "%.3f"
row "W9 1M floats to a process worker and back, s" W9f.floats_s W9f.floats_s down "%.3f" "" "<= 1/2"
row "W9 a table nested 1,000 deep to a thread worker and back, levels" W9d.depth "" none "%.0f"
row "M1 100k pending futures, peak RSS above bare interpreter, MiB" M1p.pending_mib M1p.pending_mib down "%.1f" "" "<= 20 MiB"
row "M1 RSS per idle thread worker, KiB" M1t.thread_worker_kib M1t.thread_worker_kib down "%.0f"
row "M1 RSS per idle worker process (spawn), KiB" M1s.process_worker_rss_kib M1s.process_worker_rss_kib down "%.0f"
row "M1 PSS per idle worker process (spawn), KiB" M1s.process_worker_pss_kib M1s.process_worker_pss_kib down "%.0f"
row "S1 futures.shared 5 MB table x 1000 tasks, process pool(2), bytes sent" S1.process_bytes_sent "" none "%.0f" "" "<= 1 copy/worker"
row "S1 the same: Shared payload, bytes" S1.process_payload_bytes "" none "%.0f"
row "S1 the same: decodes (one per worker process)" S1.process_decodes "" none "%.0f"
row "S1 thread pool(2) decodes" S1.thread_decodes "" none "%.0f"

if [ ${#TIMECMD[@]} -gt 0 ]; then
  echo
  echo "Whole-process peak RSS, MiB (/usr/bin/time -f %M, median):"
  echo
  echo "| run | luafutures | Python | luv |"
  echo "|---|---:|---:|---:|"
  for j in W1 W2 W3t W3p W4 W5 W6 W7t W7s W7f M1p; do
    l=$(get lua "$j.peak_kib"); p=$(get py "$j.peak_kib"); u=""
    [ $j = W1 ] && [ $HAVE_LUV = 1 ] && u=$(fmt "$(calc "$(get luv W1.peak_kib) / 1024")" "%.1f")
    isnum "$l" && l=$(calc "$l / 1024"); isnum "$p" && p=$(calc "$p / 1024")
    printf '| %s | %s | %s | %s |\n' "$j" "$(fmt "$l" "%.1f")" "$(fmt "$p" "%.1f")" "$u"
  done
fi

lv() { get lua "$1"; }
rel() {  # rel LUAKEY PYKEY: lua/py, or the lua word when not numeric
  local a b; a=$(get lua "$1"); b=$(get py "$2")
  if ! isnum "$a"; then echo "$a"; elif ! isnum "$b"; then echo "no-python-figure"
  else calc "$a / $b"; fi
}
target "W1 thread tasks/s >= 15x Python" 1 "$(rel W1.tasks_per_s W1.tasks_per_s)" "x >= 15"
target "W1 with deadlock tracking / without (LUAFUTURES_DEADLOCK_CHECK=0)" 0 \
  "$(a=$(lv W1.tasks_per_s); b=$(lv W1nt.tasks_per_s); isnum "$a" && isnum "$b" && calc "$a / $b" || echo "$a")" "x >= 0.97"
if [ $HAVE_LUV = 1 ]; then
  target "W1 thread tasks/s ahead of luv new_work" 0 \
    "$(a=$(lv W1.tasks_per_s); b=$(get luv W1.luv_tasks_per_s); isnum "$a" && isnum "$b" && calc "$a / $b" || echo "$a")" "x > 1"
fi
target "W1 one-upvalue closure tasks/s within 10% of a plain function" 0 \
  "$(a=$(lv W1c.tasks_per_s); b=$(lv W1.tasks_per_s); isnum "$a" && isnum "$b" && calc "$a / $b" || echo "$a")" "x >= 0.9"
target "W1 main-thread CPU per task <= 400 ns" 0 "$(lv W1.main_cpu_ns_per_task)" "x <= 400"
target "W2 process tasks/s >= 5x Python" 1 "$(rel W2.tasks_per_s W2.tasks_per_s)" "x >= 5"
target "W3 thread map items/s >= 3x Python process map" 1 "$(rel W3t.thread_items_per_s W3p.process_items_per_s)" "x >= 3"
target "W3 process map items/s >= 2x Python process map" 0 "$(rel W3p.process_items_per_s W3p.process_items_per_s)" "x >= 2"
target "W4 median round trip <= 1/5 of Python's" 1 "$(rel W4.median_us W4.median_us)" "x <= 0.2"
target "Q1 queue items/s >= 5x Python queue.Queue" 1 "$(rel Q1.items_per_s Q1.items_per_s)" "x >= 5"
# effil's channels moved ~570k tasks/s where CPython's ThreadPoolExecutor(2)
# did ~45k (research/peers.md); scaled by this run's W1 Python figure.
target "Q1 queue items/s ahead of effil's channel (scaled by W1 Python)" 0 \
  "$(a=$(lv Q1.items_per_s); b=$(get py W1.tasks_per_s); isnum "$a" && isnum "$b" && calc "$a / (570000 * $b / 45000)" || echo "$a")" "x > 1"
target "Q2 queue round trip median < 5 us" 1 "$(lv Q2.median_us)" "x < 5"
target "W5 thread pool speedup >= 1.85x" 0 "$(lv W5.thread_speedup)" "x >= 1.85"
target "W5 process pool speedup (spawn) >= 1.85x" 0 "$(lv W5.spawn_speedup)" "x >= 1.85"
target "W7 thread pool cycle <= 0.2 ms" 0 "$(lv W7t.thread_ms)" "x <= 0.2"
target "W8 as_completed main-thread CPU/task growth 10^3 -> 10^5 <= 1.5" 1 "$(lv W8a.as_completed_growth)" "x <= 1.5"
target "W8 as_completed main-thread CPU at 10^5 <= 1/3 of Python's" 0 "$(rel W8a.as_completed_ns_100000 W8a.as_completed_ns_100000)" "x <= 0.334"
target "W8 drain loop main-thread CPU/task growth 10^3 -> 10^5 <= 1.5" 1 "$(lv W8d.drain_growth)" "x <= 1.5"
target "W9 100k records encode+decode time / lua-cjson's" 0 \
  "$(a=$(lv W9r.records_s); b=$(lv W9r.cjson_s); isnum "$a" && isnum "$b" && calc "$a / $b" || echo "$a")" "x <= 1"
target "W9 1M floats process round trip <= 1/2 of Python's" 0 "$(rel W9f.floats_s W9f.floats_s)" "x <= 0.5"
target "W9 a 1,000-deep table travels" 0 "$(lv W9d.depth)" "x >= 1000"
target "M1 100k pending futures <= 20 MiB" 0 "$(lv M1p.pending_mib)" "x <= 20"
target "S1 shared 5 MB x 1000 tasks: bytes sent / (payload x decodes) <= 1.1" 0 \
  "$(lv S1.process_copies_per_worker)" "x <= 1.1"

echo
echo "Targets (check = enforced by --check, info = reported only):"
echo
for n in "${NOTES[@]}"; do echo "    $n"; done

if [ $CHECK = 1 ]; then
  if [ $FAIL = 1 ]; then echo; echo "bench-check: FAILED" >&2; exit 1; fi
  echo; echo "bench-check: ok"
fi
exit 0
