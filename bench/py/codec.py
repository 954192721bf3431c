"""W9: the codec's Python side.

floats: 1,000,000 floats sent to a ProcessPoolExecutor(1) worker and
returned (pickled both ways), seconds, median of 5.
Usage: python3 bench/py/codec.py floats [N=1000000]
"""
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def echo(x):
    return x


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "floats"
    if mode != "floats":
        print("W9f skipped no-such-mode")
        return
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    xs = [i * 0.5 for i in range(1, n + 1)]
    times = []
    with ProcessPoolExecutor(1) as ex:
        ex.submit(echo, 0).result()
        for _ in range(5):
            t0 = time.perf_counter()
            back = ex.submit(echo, xs).result()
            times.append(time.perf_counter() - t0)
            assert len(back) == n and back[-1] == n * 0.5
    times.sort()
    print("W9f floats_s %.4f" % times[2])


if __name__ == "__main__":
    main()
