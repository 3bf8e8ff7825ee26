"""Make the students' release from solutions/: draw every block a task specifies from the library's own
implementation into the task's markdown cell, then run ``nbgrader generate_assignment`` for every assignment.

The pictures are PNG attachments of the cell (``![...](attachment:NAME.png)``), so they travel inside the
notebook wherever it goes (the release, the student bundle, the hub, the static site) and can never disagree
with the module the grader compares against. Run it at the repository root after editing solutions/ or the
library's blocks; ``--check`` only says which attachments are stale (tests/test_exercises.py runs it).

    python scripts/release_assignments.py [--check]
"""
from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]


def _diagrams() -> dict[str, dict[str, list[tuple[str, str, nn.Module]]]]:
    """assignment -> task cell's grade_id -> [(attachment name, title, the library module drawn)]."""
    from reslab import beyond, models
    from reslab.models import BasicBlock, Scale

    def identity_add(scale):
        return BasicBlock(8, 8, shortcut=nn.Identity(), scale=scale)

    def projection(in_ch, out_ch, stride):
        return models.make_shortcut(models.NetConfig(shortcut="B"), in_ch, out_ch, stride)

    return {
        "a03_nested": {
            "part1": [("plain_block.png", "Part 1: the plain block (norm=False)", BasicBlock(8, 8, norm=False))],
            "part2": [("residual_block.png", "Part 2: the residual block", BasicBlock(8, 8, shortcut=nn.Identity()))]},
        "a04_identity_add": {
            "part1": [("plain_block.png", "Part 1: PlainBlock(8)", BasicBlock(8, 8))],
            "part2": [("basic_block.png", "Part 2: BasicBlock(8)", BasicBlock(8, 8, shortcut=nn.Identity()))]},
        "a05_projected_add": {
            "part3": [("option_a.png", 'Part 3: BasicBlock(16, 32, stride=2, option="A")',
                       BasicBlock(16, 32, 2, shortcut=models.ZeroPadShortcut(2, 16))),
                      ("option_b.png", 'Part 3: BasicBlock(16, 32, stride=2, option="B")',
                       BasicBlock(16, 32, 2, shortcut=projection(16, 32, 2)))]},
        "a06_scaling": {
            "part1": [("scaled_block.png", "Part 1: ScaledBlock(8, 0.2)", identity_add(Scale(0.2)))],
            "part2": [("rezero_block.png", "Part 2: ReZeroBlock(8)", identity_add(Scale(0.0, learnable=True)))],
            "part3": [("layerscale_block.png", "Part 3: LayerScaleBlock(8)",
                       identity_add(Scale(0.1, channels=8, learnable=True)))]},
        "a07_resnet": {
            "part1": [("bottleneck.png", "Part 1: Bottleneck(32, 16, stride=2)",
                       models.Bottleneck(32, 16, 2, shortcut=projection(32, 64, 2)))],
            "part2": [("preact_block.png", "Part 2: PreActBlock(16, 32, stride=2)",
                       models.PreActBlock(16, 32, 2, shortcut=projection(16, 32, 2)))],
            "part3": [("resnet.png", "Part 3: ResNet((3, 3, 3), (16, 32, 64))",
                       models.build(models.NetConfig(stages=(3, 3, 3), widths=(16, 32, 64))))]},
        "a08_beyond": {
            "part1": [("dense_layer.png", "Part 1: DenseLayer(8, 4)", beyond.DenseLayer(8, 4)),
                      ("transition.png", "Part 1: Transition(12, 6)", beyond.Transition(12, 6))],
            "part2": [("resnext.png", "Part 2: ResNeXtBottleneck(64, 64, cardinality=8, group_width=4)",
                       beyond.ResNeXtBottleneck(64, 64, 8, 4))],
            "part3": [("stochastic_depth.png", "Part 3: StochasticDepthBlock(16, 16), eval mode",
                       beyond.StochasticDepthBlock(16, 16, survival=0.8).eval())]},
    }


def source_notebook(assignment: str) -> Path:
    return ROOT / "solutions" / assignment / f"{assignment}.ipynb"


def attachments() -> dict[str, dict[str, dict]]:
    """assignment -> task cell -> the cell's attachments, freshly drawn."""
    from reslab import diagrams
    return {assignment: {cell: {name: {"image/png": base64.b64encode(diagrams.png(module, title)).decode("ascii")}
                                for name, title, module in drawn}
                         for cell, drawn in cells.items()}
            for assignment, cells in _diagrams().items()}


def stale(wanted: dict[str, dict[str, dict]]) -> list[str]:
    """The task cells whose attachments differ from ``wanted``, or whose text does not show each of them."""
    found = []
    for assignment, cells in wanted.items():
        nb = nbformat.read(source_notebook(assignment), as_version=4)
        by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        for cell_id, attached in cells.items():
            cell = by_id.get(cell_id)
            if cell is None or cell.get("attachments") != attached or any(
                    f"(attachment:{name})" not in cell.source for name in attached):
                found.append(f"{assignment}: {cell_id}")
    return found


def attach(wanted: dict[str, dict[str, dict]]) -> None:
    """Write the attachments into the source notebooks in place (other cells untouched); each task cell's text
    must already show them with ``![...](attachment:NAME)``."""
    for assignment, cells in wanted.items():
        path = source_notebook(assignment)
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            attached = cells.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
            if attached is None:
                continue
            missing = [name for name in attached if f"(attachment:{name})" not in cell.source]
            if missing:
                raise ValueError(f"{assignment}: the text of cell {cell.metadata.nbgrader['grade_id']!r} does not "
                                 f"show {missing}: add ![what it is](attachment:NAME) where the picture belongs")
            cell.attachments = attached
        nbformat.write(nb, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the task cells whose pictures are stale")
    args = parser.parse_args(argv)
    wanted = attachments()
    if args.check:
        found = stale(wanted)
        print("\n".join(found) or "every task picture is current")
        return 1 if found else 0
    attach(wanted)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "*", "--force"],
                          cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
