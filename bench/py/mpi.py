"""MPI's Python side: ProcessPoolExecutor(2), as mpi4py.futures cannot be
installed here.

tasks: submit N trivial tasks (x + 1), then collect every result; tasks/s
from the first submit to the last result, on a warm pool.  The map figure
is W3's (bench/py/w3.py process).
Usage: python3 bench/py/mpi.py [N=20000]
"""
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def inc(x):
    return x + 1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with ProcessPoolExecutor(2) as ex:
        ex.submit(inc, 0).result()
        t0 = time.perf_counter()
        fs = [ex.submit(inc, i) for i in range(1, n + 1)]
        total = sum(f.result() for f in fs)
        dt = time.perf_counter() - t0
    assert total == n * (n + 1) // 2 + n, total
    print("MPI tasks_per_s %.0f" % (n / dt))


if __name__ == "__main__":
    main()
