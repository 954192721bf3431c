"""W2: throughput of eager submission on a warm ProcessPoolExecutor(2).

Same as W1 with a module-level function and N = 20,000.  Python 3.11 on
Linux uses the fork start method by default.
Usage: python3 bench/py/w2.py [N=20000]
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
        total = 0
        for f in fs:
            total += f.result()
        dt = time.perf_counter() - t0
    assert total == n * (n + 1) // 2 + n, total
    print("W2 tasks_per_s %.0f" % (n / dt))


if __name__ == "__main__":
    main()
