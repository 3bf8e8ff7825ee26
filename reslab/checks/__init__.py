"""The student's side of every graded part: what to call, how to pack the outputs, how to compare them.

A part is checked in two ways. In the student's own kernel, ``run_in_kernel`` runs the student's code on
inputs stored for a public seed and compares with the outputs stored beside them (instant feedback; also what
stock ``nbgrader autograde`` runs, unprotected). In the trusted grader, inputs come from a secret seed, only
``probe`` runs inside the sandboxed kernel, and the grader compares in its own process with its answer key
(``autograder.key``), which the sandbox can neither import nor read: nothing here computes an expected output.

One module per assignment (``a01_cnn_basics`` …) lists its parts; ``core`` compares, ``harness`` runs the
student's code, ``stored`` reads the public expected outputs (written by ``python -m autograder.key write``).
"""
from __future__ import annotations

import importlib
import io
import json
import os

import numpy as np

from . import display, stored
from .core import (Arrays, CheckFailed, Part, Result, diagnose, diagnose_failure, failure, rel_error, score, validate,
                   with_diagnosis)
from .harness import run

display.install()  # in a notebook: a failed check or a stub shows its message, not the library's frames

ASSIGNMENTS = ["a01_cnn_basics", "a02_gradients", "a03_nested", "a04_identity_add", "a05_projected_add",
               "a06_scaling", "a07_resnet", "a08_beyond"]

__all__ = ["ASSIGNMENTS", "Arrays", "CheckFailed", "Part", "Result", "diagnose", "diagnose_failure", "failure", "part",
           "parts_for", "probe", "rel_error", "run_in_kernel", "score", "validate", "with_diagnosis"]


def parts_for(assignment: str) -> list[Part]:
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}; known: {ASSIGNMENTS}")
    return list(importlib.import_module(f"{__name__}.{assignment}").PARTS)


def part(assignment: str, name: str) -> Part:
    found = {p.name: p for p in parts_for(assignment)}
    if name not in found:
        raise ValueError(f"no check {name!r} in {assignment!r}; its checks: {list(found)}")
    return found[name]


def run_in_kernel(assignment: str, name: str, namespace: dict, seed: int) -> Result:
    """Visible checks and stock-nbgrader hidden tests: run the student's code on the inputs stored for
    ``seed`` and compare with the outputs stored for it; raise AssertionError (CheckFailed) with a friendly
    message, naming the mistake where it is a known one, unless every quantity matches."""
    graded = part(assignment, name)
    inputs, expected, mistakes = stored.case(assignment, name, seed)
    try:
        outputs = run(graded.description, graded.run_student, namespace, inputs)
    except CheckFailed as err:
        raise CheckFailed(with_diagnosis(str(err), diagnose_failure(str(err), mistakes))) from None
    result = score(graded, outputs, expected, mistakes)
    if not result.passed:
        raise CheckFailed(result.message)
    print(f"{name}: passed ({result.score:g}/{result.max_score:g} points, seed {seed})")
    return result


def probe(assignment: str, name: str, namespace: dict, inputs_path, outputs_path) -> tuple[str, bytes]:
    """Inside the sandboxed kernel (called by ``guard``'s handler): read the inputs (no pickle), run the
    student's side, write the outputs npz to ``outputs_path``, or ``outputs_path + ".error.json"`` with a short
    message if it fails. Returns ("outputs" or "error", the bytes written)."""
    graded = part(assignment, name)
    with np.load(inputs_path, allow_pickle=False) as arrays:
        inputs = {key: arrays[key] for key in arrays.files}
    try:
        outputs = run(graded.description, graded.run_student, namespace, inputs)
    except CheckFailed as err:
        return "error", _atomic_write(str(outputs_path) + ".error.json", json.dumps({"error": str(err)}).encode())
    buffer = io.BytesIO()
    np.savez(buffer, **outputs)
    return "outputs", _atomic_write(outputs_path, buffer.getvalue())


def _atomic_write(path, data: bytes) -> bytes:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return data
