"""Course benchmark: how long each chapter takes to run top to bottom in a fresh kernel, as a student runs it.

The budget is the course's promise: every chapter within 60 s and the whole course within 5 minutes on a
2-core CPU. The time per chapter includes starting its kernel. The exit status is 1 when a budget is missed.

    python benchmarks/bench_course.py [--chapters 02 06] [--chapter-budget 60] [--total-budget 300]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

COURSE = Path(__file__).resolve().parents[1] / "course"


def run_chapter(path: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the kernel): on a busy machine the CPU time is the better estimate of
    what the chapter costs on an idle one."""
    nb = nbformat.read(path, as_version=4)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(COURSE)}}).execute()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="+", metavar="NN", help="chapter numbers (default: all)")
    parser.add_argument("--chapter-budget", type=float, default=60.0, help="seconds allowed per chapter")
    parser.add_argument("--total-budget", type=float, default=300.0, help="seconds allowed for the course")
    args = parser.parse_args(argv)
    chapters = sorted(COURSE.glob("0*.ipynb"))
    if args.chapters:
        chapters = [p for p in chapters if p.name[:2] in args.chapters]
        if not chapters:
            parser.error(f"no chapter numbered {args.chapters} in {COURSE}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    seconds = {}
    for path in chapters:
        seconds[path.stem], cpu = run_chapter(path)
        flag = "" if seconds[path.stem] <= args.chapter_budget else f"   over the {args.chapter_budget:g} s budget"
        print(f"{path.stem:>28}: {seconds[path.stem]:6.1f} s wall, {cpu:6.1f} s CPU{flag}", flush=True)
    total = sum(seconds.values())
    print(f"{'total':>28}: {total:6.1f} s wall (budget {args.total_budget:g} s)")
    within = total <= args.total_budget and max(seconds.values()) <= args.chapter_budget
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
