"""The expected outputs of the public seeds, stored in the library for the visible checks.

The public seeds are the ones the source notebooks' test cells name: ``seed=0`` in the visible part and the
seed between the hidden-test markers (what stock nbgrader runs). Secret seeds never pass through here.
"""
from __future__ import annotations

import io
import json
import re

import numpy as np

from reslab.checks import ASSIGNMENTS, stored

from . import ROOT, keys_for

SEED = re.compile(r'run_in_kernel\("(?P<a>\w+)", "(?P<name>\w+)", globals\(\), seed=(?P<seed>\d+)\)')


def public_seeds(assignment: str) -> dict[str, list[int]]:
    """Part name -> the seeds its test cell passes to run_in_kernel, in the source notebook."""
    import nbformat
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    seeds = {}
    for cell in nb.cells:
        for match in SEED.finditer(cell.source if cell.cell_type == "code" else ""):
            seeds.setdefault(match["name"], []).append(int(match["seed"]))
    return seeds


def build(assignment: str) -> tuple[bytes, str]:
    """The .npz bytes and .json text of ``assignment``'s stored cases."""
    arrays, index = {}, {}
    seeds = public_seeds(assignment)
    for key in keys_for(assignment):
        mistakes, failed = list(key.mistakes), {}
        for seed in seeds.get(key.name, []):
            inputs = key.make_inputs(np.random.default_rng(seed))
            found = key.mistake_outputs(inputs)
            arrays.update(stored.pack(key.name, seed, inputs, key.expected(inputs), [found[m] for m in mistakes]))
            failed[str(seed)] = {m: found[m] for m in mistakes if isinstance(found[m], str)}
        index[key.name] = {"seeds": seeds.get(key.name, []), "mistakes": mistakes, "failed": failed}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue(), json.dumps(index, indent=1, sort_keys=True) + "\n"


def write(assignments=ASSIGNMENTS) -> None:
    stored.FOLDER.mkdir(exist_ok=True)
    for assignment in assignments:
        data, index = build(assignment)
        stored.path(assignment).write_bytes(data)
        stored.path(assignment).with_suffix(".json").write_text(index)
        print(f"wrote {stored.path(assignment)} ({len(data) / 1024:.0f} kB)")
