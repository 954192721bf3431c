"""W8: the main thread's CPU while it waits for many tasks of 100 us on a
ThreadPoolExecutor(2), by as_completed and by the drain loop
(while pending: done, pending = wait(pending, FIRST_COMPLETED)), for 10^3,
10^4 and 10^5 tasks: time.thread_time() from the first submit to the last
future seen, per task.  Twin of bench/lua/w8.lua.
Usage: python3 bench/py/w8.py [as_completed|drain|both] [MAXN=100000]
"""
import gc
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait


def task():
    time.sleep(0.0001)
    return 1


def by_as_completed(ex, n):
    fs = [ex.submit(task) for _ in range(n)]
    return sum(f.result() for f in as_completed(fs))


def by_drain(ex, n):
    pending = [ex.submit(task) for _ in range(n)]
    seen = 0
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        seen += sum(f.result() for f in done)
    return seen


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "both"
    maxn = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    ways = {"as_completed": by_as_completed, "drain": by_drain}
    with ThreadPoolExecutor(2) as ex:
        ex.submit(task).result()
        for way in (["as_completed", "drain"] if mode == "both" else [mode]):
            out, first, last = [], None, None
            n = 1000
            while n <= maxn:
                gc.collect()  # the last size's futures are not this one's cost
                c0 = time.thread_time_ns()
                assert ways[way](ex, n) == n
                per = (time.thread_time_ns() - c0) / n
                out.append("%s_ns_%d %.0f" % (way, n, per))
                first = first if first is not None else per
                last = per
                n *= 10
            out.append("%s_growth %.2f" % (way, last / first))
            print("W8 " + " ".join(out), flush=True)


if __name__ == "__main__":
    main()
