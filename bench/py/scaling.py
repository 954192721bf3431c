"""SC: the Python side of `make bench-scaling` (bench/lua/scaling.lua runs it).

The task is the Lua side's: the sum of i*i for i = 1 .. N, the same loop.
Python's integers do not wrap (past N of about 3,000,000 the sum is a big
integer) and each step costs several times Lua's, so the runner calibrates
N separately for each side: a Python task takes about as long as a Lua task
with a larger N.  Standard library only; ProcessPoolExecutor with the
default start method (fork on Linux up to 3.13).

Usage, from the repository root:
  python3 bench/py/scaling.py calibrate SECONDS
      prints "SC n N task_s T"
  python3 bench/py/scaling.py run WORKERS N
      2*WORKERS tasks on a 1-worker pool, then on a WORKERS-worker pool
      (every worker started first); prints
      "SC base_s B par_s P speedup B/P workers K"
"""
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def work(n):
    s = 0
    for i in range(1, n + 1):
        s += i * i
    return s


def pause(s):
    time.sleep(s)
    return os.getpid()


def calibrate(target):
    n = 100_000
    while True:  # grow until one timing is long enough to trust
        t0 = time.perf_counter()
        work(n)
        t = time.perf_counter() - t0
        if t >= target / 4:
            break
        n *= 4
    for _ in range(2):  # rescale twice, taking the fastest of three timings
        n = max(1, round(n * target / t))
        t = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            work(n)
            t = min(t, time.perf_counter() - t0)
    print("SC n %d task_s %.4f" % (n, t), flush=True)


def start_all(ex, k):
    """Rounds of k sleeping tasks until k distinct worker processes answered."""
    p, seen = 0.05, 0
    for _ in range(6):
        fs = [ex.submit(pause, p) for _ in range(k)]
        seen = len({f.result() for f in fs})
        if seen == k:
            break
        p *= 2
    return seen


def timed(ex, count, n):
    t0 = time.perf_counter()
    fs = [ex.submit(work, n) for _ in range(count)]
    res = [f.result() for f in fs]
    return time.perf_counter() - t0, res


def run(k, n):
    count = 2 * k
    expect = n * (n + 1) * (2 * n + 1) // 6
    with ProcessPoolExecutor(1) as ex:
        start_all(ex, 1)
        base, r1 = timed(ex, count, n)
    with ProcessPoolExecutor(k) as ex:
        started = start_all(ex, k)
        par, r2 = timed(ex, count, n)
    assert r1 == r2 == [expect] * count
    print("SC base_s %.4f par_s %.4f speedup %.4f workers %d"
          % (base, par, base / par, started), flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "calibrate":
        calibrate(float(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "run":
        run(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: scaling.py calibrate SECONDS | run WORKERS N")


if __name__ == "__main__":
    main()
