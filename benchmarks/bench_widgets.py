"""Widget latency: time from a control change to the new plot and text, in the kernel, per control.

Every explorer and trainer is built as its chapter builds it (the calls are read from course/*.ipynb). For
each control a simulated student makes a walk of one-step moves (arrow keys, clicks, menu picks) with a
pause between them, as when reading the plot; the explorer uses that pause to compute the settings one step
away. A move is timed from setting the control's value to the new PNG and summary in the widgets: the whole
kernel-side update (the comm message and the browser's paint add a few ms). Also timed: a walk of mixed
moves back to back (no time for the warm-up: the worst case), the trainer's Train and Stop buttons, and the
block-deletion slider. Each line gives median and p95 of the wall time and of the kernel thread's CPU time
(what an idle machine would show); the load average is printed too, since the machine may be shared.

    python benchmarks/bench_widgets.py [--moves 12] [--seed 0] [--pause 0.6]
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import time
from pathlib import Path

import nbformat

from reslab import widgets as W
from reslab.widgets.controls import read_settings
from reslab.widgets.flow import CONTROL_ORDER

COURSE = Path(__file__).resolve().parents[1] / "course"
BUDGET_MS = 100.0  # an update should feel instant


def chapter_calls(name: str) -> list[tuple[str, str]]:
    """(chapter, call) for every ``name(...)`` a chapter's code ends a line with."""
    line = re.compile(rf"^{name}\(.*\)$", re.M)
    return [(path.name[:2], call) for path in sorted(COURSE.glob("0*.ipynb"))
            for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"
            for call in line.findall(cell.source)]


def build(call: str):
    return eval(call, {"gradient_flow_explorer": W.gradient_flow_explorer, "train_few_steps": W.train_few_steps,
                       "block_deletion": W.block_deletion})


def timed(action) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    action()
    return time.perf_counter() - wall, time.thread_time() - cpu


def row(label: str, wall: list[float], cpu: list[float] | None = None, extra: str = "") -> str:
    def stats(seconds):
        ms = sorted(1e3 * s for s in seconds)
        return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]

    median, p95 = stats(wall)
    text = f"  {label:<24s} n={len(wall):3d}  wall median {median:6.1f} ms  p95 {p95:6.1f} ms"
    if cpu is not None:
        text += "   CPU median {:6.1f} ms  p95 {:6.1f} ms".format(*stats(cpu))
    flag = "" if median <= BUDGET_MS else f"   over {BUDGET_MS:g} ms"
    return text + (f"   {extra}" if extra else "") + flag


def walk(widget, name: str, moves: int, rng: random.Random, pause: float) -> tuple[list, list, int]:
    """``moves`` one-step moves of control ``name``; returns wall and CPU seconds and the cache hits."""
    wall, cpu, hits = [], [], 0
    control = widget.controls[name]
    for _ in range(moves):
        target = getattr(rng.choice(W.one_step(read_settings(widget.controls), name)), name)
        before = W.gradient_flow.cache_info().hits
        w, c = timed(lambda: setattr(control, "value", target))
        wall.append(w)
        cpu.append(c)
        hits += W.gradient_flow.cache_info().hits > before
        time.sleep(pause)
    return wall, cpu, hits


def bench_controls(chapter: str, call: str, moves: int, seed: int, pause: float) -> None:
    W.gradient_flow.cache_clear()
    widget = build(call)
    start = read_settings(widget.controls)
    print(f"chapter {chapter}: {call} ({moves} moves per control, {pause:g} s between moves)")
    for name in CONTROL_ORDER:
        if name in start.not_applicable():
            print(f"  {name:<24s} greyed out: {start.not_applicable()[name]}")
            continue
        wall, cpu, hits = walk(widget, name, moves, random.Random(seed), pause)
        print(row(name, wall, cpu, f"{hits} cache hits"))
        widget.controls[name].value = getattr(start, name)
        time.sleep(pause)
    if isinstance(widget, W.TrainFewSteps):
        step = widget.steps.step
        wall, cpu = zip(*[timed(lambda: setattr(widget.steps, "value", widget.steps.value + step * (-1) ** k))
                          for k in range(moves)])
        print(row("steps", wall, cpu))
        bench_train_and_stop(widget, rounds=max(3, moves // 3))


def bench_train_and_stop(widget, rounds: int) -> None:
    """Train: click to the first point of the loss curve; Stop: click to the training thread's end."""
    train, stop = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        widget.train_button.click()
        while widget.progress.value == 0 and widget.thread.is_alive():
            time.sleep(0.001)
        train.append(time.perf_counter() - started)
        time.sleep(0.3)
        started = time.perf_counter()
        widget.stop_button.click()
        widget.thread.join()
        stop.append(time.perf_counter() - started)
    print(row("Train (to first point)", train))
    print(row("Stop (to thread end)", stop))


def mixed_move(rng: random.Random, settings: W.FlowSettings) -> tuple[str, object]:
    """Mostly depth, sometimes any other control that applies: one step each."""
    names = [n for n in CONTROL_ORDER if W.one_step(settings, n)]
    name = "depth" if rng.random() < 0.6 else rng.choice(names)
    return name, getattr(rng.choice(W.one_step(settings, name)), name)


def bench_back_to_back(call: str, moves: int, seed: int) -> None:
    W.gradient_flow.cache_clear()
    rng, explorer = random.Random(seed), build(call)
    wall, cpu = [], []
    for _ in range(moves):
        name, value = mixed_move(rng, explorer.settings)
        w, c = timed(lambda: setattr(explorer.controls[name], "value", value))
        wall.append(w)
        cpu.append(c)
    print(f"{call}: mixed moves back to back (no time for the warm-up)")
    print(row("every move", wall, cpu))


def bench_deletion(call: str, rounds: int) -> None:
    widget = build(call)
    blocks = len(widget.infos)
    wall, cpu = zip(*[timed(lambda: setattr(widget.block, "value", (i + 1) % blocks)) for i in range(rounds * blocks)])
    print(f"{call}: block slider")
    print(row("delete block", wall, cpu))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=12, help="moves per control")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.6, help="think time between moves")
    args = parser.parse_args(argv)
    loads = [os.getloadavg()[0]]
    explorers = chapter_calls("gradient_flow_explorer") + chapter_calls("train_few_steps")
    for chapter, call in explorers:
        bench_controls(chapter, call, args.moves, args.seed, args.pause)
        loads.append(os.getloadavg()[0])
    bench_back_to_back(explorers[0][1], 10 * args.moves, args.seed)
    for _, call in chapter_calls("block_deletion"):
        bench_deletion(call, rounds=5)
    loads.append(os.getloadavg()[0])
    print(f"CPU: {os.cpu_count()} cores; 1-minute load average before each part and at the end: "
          f"{', '.join(f'{x:.1f}' for x in loads)}")


if __name__ == "__main__":
    main()
