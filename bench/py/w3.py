"""W3: Executor.map over range(N) with chunksize=1000 on a warm pool of 2.

The results are summed.  The figure is items/s from the map call to the
last result.  ThreadPoolExecutor ignores chunksize and makes one future per
item, so its 1,000,000-item run takes ~18 s and ~1.7 GiB; bench/run.sh
gives it fewer items (its rate does not depend on N).
Usage: python3 bench/py/w3.py thread|process [N=1000000]
"""
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor


def square(x):
    return x * x


def main():
    kind = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    cls = {"thread": ThreadPoolExecutor, "process": ProcessPoolExecutor}[kind]
    with cls(2) as ex:
        ex.submit(square, 0).result()
        t0 = time.perf_counter()
        total = sum(ex.map(square, range(n), chunksize=1000))
        dt = time.perf_counter() - t0
    assert total == (n - 1) * n * (2 * n - 1) // 6, total
    print("W3 %s_items_per_s %.0f" % (kind, n / dt))


if __name__ == "__main__":
    main()
