"""W7: pool life cycle: create a pool of 2, run one task, shutdown(wait=True).

Prints ms per cycle.  'process' uses the default start method (fork on
Linux up to 3.13), 'spawn' a spawn context.
Usage: python3 bench/py/w7.py thread|process|spawn [cycles]
"""
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor


def one():
    return 1


def main():
    kind = sys.argv[1]
    default = {"thread": 2000, "process": 100, "spawn": 10}[kind]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else default
    if kind == "thread":
        make = lambda: ThreadPoolExecutor(2)
    elif kind == "process":
        make = lambda: ProcessPoolExecutor(2)
    else:
        ctx = multiprocessing.get_context("spawn")
        make = lambda: ProcessPoolExecutor(2, mp_context=ctx)
    t0 = time.perf_counter()
    for _ in range(n):
        ex = make()
        assert ex.submit(one).result() == 1
        ex.shutdown(wait=True)
    dt = time.perf_counter() - t0
    key = {"thread": "thread_ms", "process": "fork_ms", "spawn": "spawn_ms"}[kind]
    print("W7 %s %.4f" % (key, dt / n * 1e3))


if __name__ == "__main__":
    main()
