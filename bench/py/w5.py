"""W5: 4 CPU-bound tasks, sum(i*i for i in range(N)), N = 5,000,000.

Sequential, then Executor.map on ThreadPoolExecutor(2), then on
ProcessPoolExecutor(2), with the default start method (fork on Linux up to
3.13) and with a spawn context.  Pool creation and shutdown are counted.
Prints seconds and speedups.
Usage: python3 bench/py/w5.py [N=5000000]
"""
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

TASKS = 4


def work(n):
    return sum(i * i for i in range(n))


def timed_pool(cls, n, **kw):
    t0 = time.perf_counter()
    with cls(2, **kw) as ex:
        res = list(ex.map(work, [n] * TASKS))
    return time.perf_counter() - t0, res


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    t0 = time.perf_counter()
    expect = [work(n) for _ in range(TASKS)]
    seq = time.perf_counter() - t0
    thr, r1 = timed_pool(ThreadPoolExecutor, n)
    fork, r2 = timed_pool(ProcessPoolExecutor, n)
    spawn, r3 = timed_pool(ProcessPoolExecutor, n,
                           mp_context=multiprocessing.get_context("spawn"))
    assert r1 == expect and r2 == expect and r3 == expect
    print("W5 seq_s %.4f thread_s %.4f thread_speedup %.3f fork_s %.4f "
          "fork_speedup %.3f spawn_s %.4f spawn_speedup %.3f"
          % (seq, thr, seq / thr, fork, seq / fork, spawn, seq / spawn))


if __name__ == "__main__":
    main()
