"""Grading on a Dask cluster: throughput against 1, 2, 4 worker processes, and the dispatch overhead.

    python benchmarks/bench_distributed.py [--assignment a05_projected_add] [--submissions 12] [--workers 1 2 4]

For each worker count a LocalCluster (one thread per worker process) grades the same solved submissions
through ``grade --scheduler``'s code path, end to end (each worker's fork server starts inside the run, as it
does on a real cluster). Every submission must get full marks. Printed: wall seconds, submissions per minute,
the mean grading time of one submission on its worker (``execution_time``), and the dispatch overhead per
task (Dask's round trip for a task that needs the shared plan and does nothing). From those it prints the
cores a 50,000-submission week needs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bench_grading import make_course  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

from autograder import grade_assignment  # noqa: E402

WEEK = 50_000


def dispatch_overhead(client: Client, tasks: int = 200) -> float:
    """Seconds per task of scheduling, running and returning a no-op that depends on a shared value."""
    shared = client.submit(bytes, 70_000)  # about the size of a pickled plan
    wait(shared)
    started = time.monotonic()
    wait([client.submit(len, shared, key=f"noop-{i}") for i in range(tasks)])
    return (time.monotonic() - started) / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="a05_projected_add")
    parser.add_argument("--submissions", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-distributed-", dir="/var/tmp") as tmp:
        make_course(Path(tmp), args.assignment, args.submissions)
        for workers in args.workers:
            with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                overhead = dispatch_overhead(client)
                started = time.monotonic()
                results = grade_assignment(tmp, args.assignment, scheduler=cluster.scheduler_address)
                wall = time.monotonic() - started
            full = sum(r["score"] == r["max_score"] > 0 for r in results.values())
            if full != args.submissions:
                raise SystemExit(f"{workers} workers: {full} of {args.submissions} submissions got full marks")
            each = statistics.mean(r["execution_time"] for r in results.values())
            rows.append(dict(workers=workers, wall_s=round(wall, 1), per_minute=round(60 * args.submissions / wall, 1),
                             grading_s=round(each, 2), dispatch_ms=round(1000 * overhead, 2)))

    print(f"{args.submissions} submissions of {args.assignment}, {os.cpu_count()} CPU cores, all with full marks")
    print(f"  {'workers':>7} {'wall s':>7} {'per min':>8} {'grading s/submission':>21} {'dispatch ms/task':>17}")
    for r in rows:
        print(f"  {r['workers']:>7} {r['wall_s']:>7} {r['per_minute']:>8} {r['grading_s']:>21} {r['dispatch_ms']:>17}")
    one = rows[0]["grading_s"] if rows[0]["workers"] == 1 else min(r["grading_s"] for r in rows)
    core_hours = WEEK * one / 3600
    print(f"  a {WEEK:,}-submission week at {one:.2f} core-s each (one worker alone): {core_hours:.0f} core-hours;"
          f" graded within 2 hours of a deadline: {WEEK * one / 7200:.0f} worker threads (cores)")
    print(json.dumps({"assignment": args.assignment, "submissions": args.submissions, "cores": os.cpu_count(),
                      "rows": rows, "week_core_hours": round(core_hours, 1)}))


if __name__ == "__main__":
    main()
