#!/usr/bin/env python3
"""Which threads wait for a CPU (docs/performance.md, issue 15 point 7).

Samples /proc/PID/task/TID/schedstat of every running `wabill serve` and
`wabill load` process each 20 ms for SECONDS, and prints each interval in
which a thread waited over 12 ms on the run queue (it was runnable but got
no core), then how many such intervals each thread had. A tail that shows
here is CPU queueing; a thread that neither runs nor waits is blocked.

    python3 bench/run-queue.py 28 &   # during a bench/serve.sh round
"""
import collections
import os
import sys
import time

STEP = 0.02
WAITED_NS = 12e6


def threads():
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            if not cmd or b"wabill" not in cmd[0]:
                continue
            role = "load" if b"load" in cmd else "serve" if b"serve" in cmd else None
            if role is None:
                continue
            for tid in os.listdir(f"/proc/{pid}/task"):
                name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
                ran, waited, _ = map(int, open(f"/proc/{pid}/task/{tid}/schedstat").read().split())
                out[(role, tid)] = (name, ran, waited)
        except OSError:
            continue  # the process or thread ended meanwhile
    return out


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30
    before, start = threads(), time.time()
    per_thread = collections.Counter()
    while time.time() - start < seconds:
        time.sleep(STEP)
        now = threads()
        for key, (name, ran, waited) in now.items():
            if key in before and waited - before[key][2] > WAITED_NS:
                per_thread[(key[0], name)] += 1
                print("t=%6.2f %-5s %-16s waited %3d ms for a CPU, ran %3d ms" % (
                    time.time() - start, key[0], name,
                    (waited - before[key][2]) / 1e6, (ran - before[key][1]) / 1e6))
        before = now
    for (role, name), n in per_thread.most_common():
        print(f"{role} {name}: {n} intervals waiting over 12 ms of ~20")
    print("intervals:", sum(per_thread.values()))


if __name__ == "__main__":
    main()
