#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Where vfiod's wall time goes, from `strace -f -tt -T` (vm-profile.sh).

    strace-summary.py TRACE

Splits the trace into jobs (a worker thread's life: from its first system
call to its last) and, over all jobs, sums the time spent in each kind of
system call and in the files they name, by category: sysfs writes (the
floor's share), sysfs reads, the module directory (libkmod, modules.alias),
the runtime directory (journal, records: fsync), netlink (vfio_select),
and the rest; plus the time between system calls (user space).
"""
import collections
import re
import sys

LINE = re.compile(r'^(\d+)\s+(\d+):(\d+):(\d+\.\d+) (\w+)\((.*?)(?:\) += (.*?) <(\d+\.\d+)>)?$')


def category(call, args):
    if "/sys/" in args or call in ("readlinkat",) and "/sys" in args:
        return "sysfs-" + ("write" if call in ("write", "pwrite64") else "read")
    if "/lib/modules" in args or "/usr/lib/modules" in args or "modprobe" in args:
        return "modules"
    if "/run/vfiod" in args:
        return "runtime-dir"
    if call in ("fsync", "fdatasync"):
        return "fsync"
    if call in ("sendmsg", "recvmsg", "sendto", "recvfrom") and "NETLINK" in args:
        return "netlink"
    return "other"


def main():
    fds = collections.defaultdict(dict)  # pid -> fd -> path
    pending = {}
    per_thread = collections.defaultdict(list)  # pid -> [(t, call, args, dur)]
    for raw in open(sys.argv[1], errors="replace"):
        raw = raw.rstrip("\n")
        pid = raw.split(None, 1)[0]
        if "<unfinished ...>" in raw:
            pending[pid] = raw.replace(" <unfinished ...>", "")
            continue
        m = re.match(r'^(\d+)\s+[\d:.]+ <\.\.\. \w+ resumed>(.*)$', raw)
        if m and pid in pending:
            raw = pending.pop(pid) + m.group(2)
        m = LINE.match(raw)
        if not m or m.group(8) is None:
            continue
        t = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
        call, args, ret, dur = m.group(5), m.group(6), m.group(7), float(m.group(8))
        fdm = re.match(r'^(\d+),', args)
        if call in ("openat", "open") and ret and ret.split()[0].isdigit():
            path = re.search(r'"([^"]*)"', args)
            fds[pid][ret.split()[0]] = path.group(1) if path else "?"
        elif fdm and fdm.group(1) in fds[pid]:
            args = args + " " + fds[pid][fdm.group(1)]
        per_thread[pid].append((t, call, args, dur))

    main_pid = min(per_thread, key=lambda p: per_thread[p][0][0])
    jobs = [p for p in per_thread if p != main_pid and len(per_thread[p]) > 20]
    by_cat = collections.Counter()
    by_call = collections.Counter()
    wall = 0.0
    for p in jobs:
        calls = per_thread[p]
        wall += calls[-1][0] + calls[-1][3] - calls[0][0]
        for t, call, args, dur in calls:
            by_cat[category(call, args)] += dur
            by_call[call] += dur
    insys = sum(by_cat.values())
    print(f"{len(jobs)} worker jobs, {wall * 1000:.0f} ms of wall time in all "
          f"({wall * 1000 / max(len(jobs), 1):.1f} ms a job; strace slows system calls)")
    for c, v in by_cat.most_common():
        print(f"  {c:14s} {v * 1000:8.1f} ms  {100 * v / wall:5.1f}%")
    print(f"  {'user space':14s} {(wall - insys) * 1000:8.1f} ms  {100 * (wall - insys) / wall:5.1f}%")
    print("system calls by time:", ", ".join(f"{c} {v * 1000:.0f} ms" for c, v in by_call.most_common(8)))
    main_calls = per_thread[main_pid]
    print(f"main thread: {len(main_calls)} system calls, "
          f"{sum(c[3] for c in main_calls) * 1000:.0f} ms in them")


if __name__ == "__main__":
    main()
