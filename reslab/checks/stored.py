"""The expected outputs stored for the public seeds: what visible checks (and stock nbgrader) compare with.

For each part and each public seed (0 for the visible check, the hidden-test seed of the source notebook for
stock nbgrader): the inputs, the expected outputs, and the outputs of every known mistake, so that the visible
check can name a mistake without any answer-key code in the student's kernel. Written by
``python -m autograder.key write``; a test regenerates them and compares.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from .core import Arrays, CheckFailed

FOLDER = Path(__file__).with_name("expected")
SEP = "|"


def path(assignment: str) -> Path:
    return FOLDER / f"{assignment}.npz"


@functools.lru_cache(maxsize=None)
def _load(assignment: str) -> tuple[dict, dict]:
    try:
        with np.load(path(assignment), allow_pickle=False) as arrays:
            data = {key: arrays[key] for key in arrays.files}
        index = json.loads(path(assignment).with_suffix(".json").read_text())
    except OSError:
        raise CheckFailed(f"the expected outputs of {assignment} are missing ({path(assignment)}): "
                          "reinstall the course, or run `python -m autograder.key write`") from None
    return data, index


def case(assignment: str, name: str, seed: int) -> tuple[Arrays, Arrays, dict[str, Arrays]]:
    """(inputs, expected outputs, {mistake sentence: its outputs, or its failure message}) stored for ``seed``."""
    data, index = _load(assignment)
    seeds = index.get(name, {}).get("seeds", [])
    if seed not in seeds:
        raise CheckFailed(f"no expected outputs are stored for {name!r} with seed {seed} (stored: {seeds})")
    mistakes = index[name]["mistakes"]

    def section(kind: str) -> Arrays:
        prefix = SEP.join((name, str(seed), kind, ""))
        return {k[len(prefix):]: v.astype(np.float64) if v.dtype == np.float32 else v
                for k, v in data.items() if k.startswith(prefix)}

    failed = index[name].get("failed", {}).get(str(seed), {})
    return section("in"), section("out"), {sentence: failed.get(sentence) or section(f"m{i}")
                                           for i, sentence in enumerate(mistakes)}


def pack(name: str, seed: int, inputs: Arrays, expected: Arrays, mistakes: list[Arrays]) -> Arrays:
    """The flat arrays of one part and seed, as ``case`` reads them back. Inputs that float32 holds exactly,
    and the mistakes' outputs (matched at a tolerance far above float32's precision), are stored as float32."""
    def compact(kind: str, v: np.ndarray) -> np.ndarray:
        small = v.astype(np.float32) if v.dtype == np.float64 else v
        return small if kind != "out" and (kind != "in" or np.array_equal(small, v)) else v

    sections = {"in": inputs, "out": expected, **{f"m{i}": m for i, m in enumerate(mistakes) if isinstance(m, dict)}}
    return {SEP.join((name, str(seed), kind, k)): compact(kind, v) for kind, arrays in sections.items()
            for k, v in arrays.items()}
