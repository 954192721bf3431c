"""M1: memory.

pending: peak RSS (VmHWM) with N = 100,000 futures pending on a
         ThreadPoolExecutor(1) whose only worker is held by a gate, above the
         RSS of the bare interpreter (read before concurrent.futures is
         imported).
thread:  RSS per idle thread worker: start 8 workers (8 overlapping sleeping
         tasks), let them go idle, (RSS after - RSS before the pool) / 8.
spawn:   RSS and PSS of each idle worker process of a spawn-context
         ProcessPoolExecutor(2), read from /proc/PID/status and
         /proc/PID/smaps_rollup (PSS splits shared pages between processes).
Usage: python3 bench/py/m1.py pending|thread|spawn [N=100000]
"""


def status_kib(field, pid="self"):
    with open("/proc/%s/status" % pid) as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def pss_kib(pid):
    with open("/proc/%s/smaps_rollup" % pid) as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise KeyError("Pss")


BARE_KIB = status_kib("VmRSS")

import multiprocessing  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor  # noqa: E402


def inc(x):
    return x + 1


def nap_pid(s):
    time.sleep(s)
    return os.getpid()


def pending(n):
    gate = threading.Event()
    with ThreadPoolExecutor(1) as ex:
        ex.submit(inc, 0).result()
        blocker = ex.submit(gate.wait)
        fs = [ex.submit(inc, i) for i in range(n)]
        peak = status_kib("VmHWM")
        assert not any(f.done() for f in fs[-10:])
        gate.set()
        blocker.result()
        assert sum(f.result() for f in fs) == n * (n + 1) // 2
    print("M1 pending_mib %.2f" % ((peak - BARE_KIB) / 1024))


def thread_workers(k=8):
    before = status_kib("VmRSS")
    with ThreadPoolExecutor(k) as ex:
        fs = [ex.submit(time.sleep, 0.05) for _ in range(k)]
        for f in fs:
            f.result()
        after = status_kib("VmRSS")
        assert len(ex._threads) == k
    print("M1 thread_worker_kib %.1f" % ((after - before) / k))


def spawn_workers():
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        pids = {f.result() for f in [ex.submit(nap_pid, 0.3) for _ in range(2)]}
        assert len(pids) == 2, pids
        rss = sum(status_kib("VmRSS", p) for p in pids) / 2
        pss = sum(pss_kib(p) for p in pids) / 2
    print("M1 process_worker_rss_kib %.0f process_worker_pss_kib %.0f" % (rss, pss))


def main():
    mode = sys.argv[1]
    if mode == "pending":
        pending(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
    elif mode == "thread":
        thread_workers()
    elif mode == "spawn":
        spawn_workers()
    else:
        raise SystemExit("usage: m1.py pending|thread|spawn")


if __name__ == "__main__":
    main()
