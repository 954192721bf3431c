"""W4: latency of one submit(f).result() round trip on ThreadPoolExecutor(1).

N sequential round trips on a warm pool, each timed on its own.
Prints median, p99 and mean in microseconds.
Usage: python3 bench/py/w4.py [N=10000]
"""
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def f():
    return None


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    clock = time.perf_counter
    samples = []
    with ThreadPoolExecutor(1) as ex:
        ex.submit(f).result()
        for _ in range(n):
            t0 = clock()
            ex.submit(f).result()
            samples.append(clock() - t0)
    samples.sort()
    med = samples[(n + 1) // 2 - 1]
    p99 = samples[math.ceil(0.99 * n) - 1]
    mean = sum(samples) / n
    print("W4 median_us %.2f p99_us %.2f mean_us %.2f"
          % (med * 1e6, p99 * 1e6, mean * 1e6))


if __name__ == "__main__":
    main()
