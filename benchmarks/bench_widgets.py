"""Widget latency: time from a control change to the new plot, in the kernel.

Simulates a student with seeded random walks over the gradient-flow explorer's controls and times each move
from setting the control's value to the new PNG in the Image widget and the new ratio text: the whole
kernel-side update (the comm message and the browser's paint add a few ms). Three walks:
- mixed moves back to back: mostly the depth slider dragged by 1-5 blocks, sometimes a toggle, a dropdown or
  a scale slider; no time for the explorer's background warm-up of the likely next settings;
- the same kind of moves with a pause between them, as a student reads the plot;
- arrow keys on the depth slider and the residual toggle, with pauses: what the warm-up is for.
Each prints median and p95 of the wall time and of the kernel thread's CPU time (what an idle machine would
show), over all moves and over moves to settings reached for the first time; the load average is printed
too, since the machine may be shared. Then the block-deletion slider.

    python benchmarks/bench_widgets.py [--moves 300] [--seed 0] [--pause 0.5]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import time

from reslab import widgets as W

CHOICES = {"activation": ("sigmoid", "tanh", "relu"), "init": ("naive", "xavier", "kaiming"),
           "block": ("preact", "basic")}


def mixed_move(rng: random.Random, settings: W.FlowSettings) -> tuple[str, object]:
    """One control and a new value for it, different from the current one."""
    roll = rng.random()
    if roll < 0.6:
        return "depth", rng.choice([d for d in range(settings.depth - 5, settings.depth + 6)
                                    if 1 <= d <= W.MAX_DEPTH and d != settings.depth])
    if roll < 0.7:
        return "residual", not settings.residual
    if roll < 0.75:
        return "norm", not settings.norm
    if roll < 0.9 or not settings.residual:  # the scale sliders are disabled for a plain net
        name = rng.choice(list(CHOICES))
        return name, rng.choice([c for c in CHOICES[name] if c != getattr(settings, name)])
    name = rng.choice(["shortcut_scale", "branch_scale"])
    current = getattr(settings, name)
    return name, rng.choice([v for v in (round(current + 0.05 * k, 2) for k in range(-5, 6))
                             if 0 <= v <= W.MAX_SCALE and v != current])


def keyboard_move(rng: random.Random, settings: W.FlowSettings) -> tuple[str, object]:
    """An arrow key on the depth slider, or a click on residual."""
    if rng.random() < 0.2:
        return "residual", not settings.residual
    return "depth", rng.choice([d for d in (settings.depth - 1, settings.depth + 1) if 1 <= d <= W.MAX_DEPTH])


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(1e3 * s for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"  {label:<32s} n={len(ms):4d}  median {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms"


def timed(set_value) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    set_value()
    return time.perf_counter() - wall, time.thread_time() - cpu


def bench_explorer(title: str, move, moves: int, seed: int, pause: float) -> None:
    W.gradient_flow.cache_clear()
    rng = random.Random(seed)
    explorer = W.gradient_flow_explorer()
    seen = {explorer.settings}
    wall, cpu, first, warmed = [], [], [], 0
    for _ in range(moves):
        name, value = move(rng, explorer.settings)
        control = explorer.controls[name]
        hits = W.gradient_flow.cache_info().hits
        w, c = timed(lambda: setattr(control, "value", value))
        wall.append(w)
        cpu.append(c)
        if explorer.settings not in seen:
            seen.add(explorer.settings)
            first.append(w)
            warmed += W.gradient_flow.cache_info().hits > hits  # computed ahead by the warm-up
        time.sleep(pause)
    depth = statistics.median(s.depth for s in seen)
    print(f"{title}: {moves} moves (seed {seed}), {pause:g} s between moves, median depth {depth:g} blocks; "
          f"{len(first)} first visits, {warmed} of them warmed up ahead")
    print(summary("every move, wall", wall))
    print(summary("every move, CPU of the kernel thread", cpu))
    print(summary("first visits, wall", first))


def bench_deletion(rounds: int) -> None:
    widget = W.block_deletion()
    blocks = len(widget.infos)
    wall = [timed(lambda: setattr(widget.block, "value", (i + 1) % blocks))[0] for i in range(rounds * blocks)]
    print(f"block deletion (resnet20 / plain20): {len(wall)} slider moves")
    print(summary("every move, wall", wall))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.5, help="think time between moves (second and third walk)")
    args = parser.parse_args(argv)
    loads = [os.getloadavg()[0]]
    bench_explorer("explorer, mixed moves", mixed_move, args.moves, args.seed, pause=0.0)
    loads.append(os.getloadavg()[0])
    bench_explorer("explorer, mixed moves", mixed_move, args.moves // 3, args.seed, pause=args.pause)
    loads.append(os.getloadavg()[0])
    bench_explorer("explorer, arrow keys and residual", keyboard_move, args.moves // 5, args.seed, pause=args.pause)
    loads.append(os.getloadavg()[0])
    bench_deletion(rounds=5)
    print(f"CPU: {os.cpu_count()} cores; 1-minute load average before each part: "
          f"{', '.join(f'{x:.1f}' for x in loads)}")


if __name__ == "__main__":
    main()
