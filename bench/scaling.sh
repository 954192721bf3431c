#!/usr/bin/env bash
# bench/scaling.sh: how CPU-bound work scales with the number of workers,
# luafutures' thread and process pools beside Python's process pool.
# Prints a table and writes bench/results/scaling.md and scaling.svg.
# Run from anywhere; it needs concurrent/futures.so built (make), or an
# interpreter with the module built in (LUA=bin/luafutures).
#
#   bash bench/scaling.sh            (what `make bench-scaling` runs)
#
# Environment: LUA (default lua5.4; any Lua 5.4 interpreter that can load
# the module, e.g. a statically linked bin/luafutures), PYTHON (default
# python3), SCALING_REPS (runs per point, default 3), SCALING_MAX_WORKERS
# (default: the number of online CPUs), SCALING_TASK_S (seconds per task,
# default 0.2), SCALING_N_LUA / SCALING_N_PY (fix N instead of calibrating),
# SCALING_OUT (default bench/results).
set -u
cd "$(dirname "$0")/.." || exit 2
export LUA=${LUA:-lua5.4}
export PYTHON=${PYTHON:-python3}
if ! command -v "$LUA" >/dev/null 2>&1; then
  echo "scaling.sh: no Lua interpreter '$LUA'; set LUA" >&2
  exit 2
fi
if ! "$LUA" -e 'package.cpath = "./?.so;" .. package.cpath; require "concurrent.futures"' >/dev/null 2>&1; then
  echo "scaling.sh: '$LUA' cannot load concurrent.futures; run make first" >&2
  exit 2
fi
exec "$LUA" bench/lua/scaling.lua "$@"
