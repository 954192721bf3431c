#!/usr/bin/env bash
# bench/mpi.sh: MPIPoolExecutor over 2 worker ranks (one job of three on
# this machine, shared memory) against Python's ProcessPoolExecutor(2)
# (mpi4py.futures cannot be installed here) and our own process pool, in
# the same call, REPS runs of each side, alternating; medians.
#
#   bash bench/mpi.sh [--check] [--reps N]
#
#   --check   exit 1 when a target is missed: 20,000 tasks >= 5x Python's
#             process pool and >= 1/2 of ours; W3's map with chunks >= 2x
#             Python's process map
#
# Needs make (with mpicc found) and mpiexec; PYTHON as bench/run.sh.
set -u
cd "$(dirname "$0")/.." || exit 2
CHECK=0
REPS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --check) CHECK=1 ;;
    --reps) shift; REPS=${1:?--reps needs a number} ;;
    *) echo "mpi.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
PYTHON=${PYTHON:-$(command -v python3.11 || echo python3)}
if [ ! -f concurrent/futures/mpi.so ] || ! command -v mpiexec >/dev/null; then
  echo "mpi.sh: needs concurrent/futures/mpi.so (make mpi) and mpiexec" >&2
  exit 2
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
export MPIEXEC_TIMEOUT=${MPIEXEC_TIMEOUT:-120}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for _ in $(seq "$REPS"); do
  mpiexec -n 3 bin/luafutures -m concurrent.futures.mpi bench/lua/mpi.lua >>"$TMP/lua" || exit 1
  "$PYTHON" bench/py/w2.py 20000 | sed "s/^W2/MPI/" >>"$TMP/py" || exit 1
  "$PYTHON" bench/py/w3.py process >>"$TMP/py" || exit 1
done

# The median of the figures named $2 in file $1.
median() {
  awk -v k="$2" '$2 == k { print $3 }' "$1" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "nan" }'
}
mt=$(median "$TMP/lua" tasks_per_s)
mp=$(median "$TMP/lua" process_tasks_per_s)
mm=$(median "$TMP/lua" map_items_per_s)
pt=$(median "$TMP/py" tasks_per_s)
pm=$(median "$TMP/py" process_items_per_s)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ok() { awk -v x="$1" -v m="$2" 'BEGIN { exit !(x >= m) }' && echo ok || echo MISSED; }

printf '%-58s %12s %12s\n' "figure (median of $REPS)" luafutures other
printf '%-58s %12.0f %12.0f\n' "20k tasks, MPI 2 ranks vs Python ProcessPool(2), tasks/s" "$mt" "$pt"
printf '%-58s %12.0f %12.0f\n' "20k tasks, MPI 2 ranks vs our ProcessPool(2), tasks/s" "$mt" "$mp"
printf '%-58s %12.0f %12.0f\n' "W3 map 1M chunksize 1000, MPI vs Python process map" "$mm" "$pm"
r1=$(ratio "$mt" "$pt"); r2=$(ratio "$mt" "$mp"); r3=$(ratio "$mm" "$pm")
echo
printf '%-58s %8s %s\n' "target: tasks >= 5x Python" "${r1}x" "$(ok "$r1" 5)"
printf '%-58s %8s %s\n' "target: tasks within 2x of our process pool" "${r2}x" "$(ok "$r2" 0.5)"
printf '%-58s %8s %s\n' "target: map >= 2x Python's process map" "${r3}x" "$(ok "$r3" 2)"
if [ $CHECK = 1 ]; then
  for r in "$r1 5" "$r2 0.5" "$r3 2"; do
    set -- $r
    awk -v x="$1" -v m="$2" 'BEGIN { exit !(x >= m) }' || exit 1
  done
fi
