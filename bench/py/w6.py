"""W6: the documentation's is_prime example, sequential vs ProcessPoolExecutor(2).

The six numbers and is_prime are those of the concurrent.futures docs
(ProcessPoolExecutor example).  The pool run is Executor.map on a pool of 2,
pool creation and shutdown counted; once with the default start method
(fork on Linux up to 3.13) and once with a spawn context.
Usage: python3 bench/py/w6.py
"""
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

PRIMES = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419]
EXPECT = [True, True, True, True, True, False]


def is_prime(n):
    if n < 2:
        return False
    if n == 2:
        return True
    if n % 2 == 0:
        return False

    sqrt_n = int(math.floor(math.sqrt(n)))
    for i in range(3, sqrt_n + 1, 2):
        if n % i == 0:
            return False
    return True


def timed_pool(**kw):
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2, **kw) as ex:
        res = list(ex.map(is_prime, PRIMES))
    dt = time.perf_counter() - t0
    assert res == EXPECT, res
    return dt


def main():
    t0 = time.perf_counter()
    res = [is_prime(n) for n in PRIMES]
    seq = time.perf_counter() - t0
    assert res == EXPECT, res
    fork = timed_pool()
    spawn = timed_pool(mp_context=multiprocessing.get_context("spawn"))
    print("W6 seq_s %.4f fork_s %.4f fork_speedup %.3f spawn_s %.4f "
          "spawn_speedup %.3f" % (seq, fork, seq / fork, spawn, seq / spawn))


if __name__ == "__main__":
    main()
