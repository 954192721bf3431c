"""W1: throughput of eager submission on a warm ThreadPoolExecutor(2).

Submit N trivial tasks (x + 1), then collect every result.  The figure is
tasks/s from the first submit to the last result; the pool has already run
one task, so thread start-up is not counted.
Usage: python3 bench/py/w1.py [N=100000]
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    inc = lambda x: x + 1
    with ThreadPoolExecutor(2) as ex:
        ex.submit(inc, 0).result()
        t0 = time.perf_counter()
        fs = [ex.submit(inc, i) for i in range(1, n + 1)]
        total = 0
        for f in fs:
            total += f.result()
        dt = time.perf_counter() - t0
    assert total == n * (n + 1) // 2 + n, total
    print("W1 tasks_per_s %.0f" % (n / dt))


if __name__ == "__main__":
    main()
