"""Q1/Q2: Python's queue.Queue with two threads, the twin of bench/lua/queue.lua.

throughput [N=1000000]: one producer thread puts N small integers, one
consumer thread takes them; items/s.
roundtrip [N=20000]: the main thread puts i, a second thread gets it and puts
it back on a second queue, the main thread gets it; median and p99, us.
Usage: python3 bench/py/queues.py throughput|roundtrip [N]
"""
import os
import sys

# This file's own directory comes first on sys.path, and its name would hide
# the standard library's queue module: drop it before importing.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import queue  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

DONE = object()


def throughput(n):
    q = queue.Queue()
    out = []

    def consume():
        total = 0
        while True:
            v = q.get()
            if v is DONE:
                break
            total += v
        out.append(total)

    def produce():
        for i in range(1, n + 1):
            q.put(i)
        q.put(DONE)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=consume), threading.Thread(target=produce)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    assert out[0] == n * (n + 1) // 2, out
    print("Q1 items_per_s %.0f" % (n / dt))


def roundtrip(n):
    req, rep = queue.Queue(), queue.Queue()

    def echo():
        while True:
            v = req.get()
            if v is DONE:
                break
            rep.put(v)

    t = threading.Thread(target=echo)
    t.start()
    for i in range(1000):
        req.put(i)
        rep.get()
    now, samples = time.perf_counter, []
    for i in range(n):
        t0 = now()
        req.put(i)
        v = rep.get()
        samples.append(now() - t0)
        assert v == i
    req.put(DONE)
    t.join()
    samples.sort()
    med = samples[max(0, -(-len(samples) // 2) - 1)]
    p99 = samples[max(0, -(-len(samples) * 99 // 100) - 1)]
    print("Q2 median_us %.2f p99_us %.2f" % (med * 1e6, p99 * 1e6))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "throughput"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else None
    if mode == "throughput":
        throughput(n or 1_000_000)
    elif mode == "roundtrip":
        roundtrip(n or 20_000)
    else:
        sys.exit("usage: queues.py throughput|roundtrip [N]")


if __name__ == "__main__":
    main()
