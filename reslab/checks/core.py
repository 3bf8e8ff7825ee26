"""What a graded part is, and how its outputs are compared: shared by the student's kernel and the grader.

A part's outputs are a dict of plain arrays. They are compared with the expected ones by CS231n's relative
error ``max(|x - y| / max(1e-8, |x| + |y|))`` against the part's stated tolerance; when they do not match and
the outputs match those of a known mistake instead, the message names the mistake.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Arrays = dict[str, np.ndarray]


class CheckFailed(AssertionError):
    """A submission that does not meet a check; the message is meant for the student."""


@dataclass(frozen=True)
class Part:
    """One graded part: the student-side half of its check (the answer key is in ``autograder.key``)."""
    assignment: str
    name: str  # unique in its assignment; the nbgrader grade_id of its autograded test cell
    points: float
    description: str  # one line for feedback, no solution in it
    run_student: Callable[[dict, Arrays], Arrays]  # (notebook globals, inputs) -> outputs
    rtol: float  # CS231n relative-error tolerance
    cases: dict = field(default_factory=dict)  # case label -> how feedback names it ("stride 2, more channels")
    library: tuple[str, ...] = ()  # names of reslab objects that implement this part: using them is copying


@dataclass(frozen=True)
class Result:
    name: str
    score: float
    max_score: float
    passed: bool
    message: str
    diagnosis: str = ""  # the known mistake the outputs match, if any


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """CS231n's relative error: the largest elementwise |x - y| / max(1e-8, |x| + |y|)."""
    if x.size == 0:
        return 0.0
    x, y = x.astype(np.float64), y.astype(np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def validate(outputs, expected: Arrays, labels: dict | None = None) -> None:
    """Raise CheckFailed unless ``outputs`` has exactly the expected keys, and each value is a plain
    np.ndarray of the expected dtype and shape with finite entries."""
    if not isinstance(outputs, dict):
        raise CheckFailed(f"outputs must be a dict of arrays, got {type(outputs).__name__}")
    missing, extra = sorted(set(expected) - set(outputs)), sorted(set(outputs) - set(expected))
    if missing or extra:
        raise CheckFailed(f"outputs do not have the expected entries (missing {missing[:5]}, unexpected "
                          f"{[str(k)[:80] for k in extra[:5]]})")
    for key, want in expected.items():
        got = outputs[key]
        what = phrase(key, labels)
        if type(got) is not np.ndarray:
            raise CheckFailed(f"{what} must be a numpy array, got {type(got).__name__}")
        if got.dtype != want.dtype:
            raise CheckFailed(f"{what}: dtype {got.dtype}, expected {want.dtype}")
        if got.shape != want.shape:
            raise CheckFailed(f"{what}: shape {got.shape}, expected {want.shape}")
        if got.dtype.kind in "fc" and not np.isfinite(got).all():
            raise CheckFailed(f"{what} contains NaN or infinity")


PHRASES = {
    "out": "the output", "dx": "the gradient with respect to the input", "sizes": "the output sizes",
    "norms": "the gradient norms", "stds": "the activation standard deviations",
    "hooks_left": "the number of hooks left on the model", "rms": "the root mean square of the weights",
    "kurtosis": "the shape of the weight distribution (kurtosis)", "mean": "the mean of the weights",
    "logits": "the logits", "shallow_logits": "the shallow net's logits after deepening",
    "shallow_blocks": "the shallow net's blocks per stage after deepening",
    "new_bn2": "the last BatchNorm's weight and bias in the new blocks",
    "new_convs_nonzero": "which convolutions of the new blocks have non-zero weights",
    "original_logits": "the original net's logits afterwards", "accuracy": "the test accuracy",
    "out_no_bias": "the output with bias=None", "fields": "the receptive fields",
    "types": "the types of the returned values", "mode_after": "the model's train/eval mode afterwards",
    "same_parameters": "whether the parameters are still the same objects (edited in place)",
    "requires_grad": "which parameters require gradients", "shared": "parameters shared between modules",
    "returns_weight": "whether it returns the weight it was given",
    "independent": "whether two calls draw different samples", "config_stages": "the new net's config.stages",
    "kept_or_dropped": "whether every training pass gives the kept or the dropped block's output",
    "whole_batch": "whether each training pass keeps or drops the branch for the whole batch at once",
    "both_happen": "whether the branch is sometimes kept and sometimes dropped",
    "rate": "how often the branch is kept (should be about survival of the passes)",
    "eval_fixed": "whether eval mode gives the same output every time",
    "float32": "whether a float32 input gives a float32 output", "device": "whether the output stays on the input's device",
}
PORTABLE = ("float32", "device")  # the last part of the keys that say whether a module follows its input's dtype and device
ELSEWHERE = ("creates a tensor in forward without the input's {}(or keeps one that is not a registered parameter or "
             "buffer): make it with x.new_zeros(...), torch.zeros_like(x) or torch.zeros(..., dtype=x.dtype, "
             "device=x.device)")


def phrase(key: str, labels: dict | None = None) -> str:
    """A readable name for an output key such as ``B.grad.conv1.weight`` or ``eval.same.out``."""
    head, _, rest = key.partition(".")
    if rest and labels and head in labels:
        return f"{labels[head]}: {phrase(rest, labels)}"
    if rest and head == "eval":
        return f"in eval mode, {phrase(rest, labels)}"
    if head == "grad":
        return f"the gradient of {rest}"
    if head == "fresh":
        return f"the initial value of {rest}"
    if head == "after":
        return f"{rest} afterwards"
    return PHRASES.get(key, key)


def matches(outputs: Arrays, expected: Arrays, rtol: float) -> list[str]:
    """The keys of ``expected`` that ``outputs`` gets wrong (outputs already validated)."""
    return [key for key, want in expected.items() if not rel_error(outputs[key], want) <= rtol]


def portable(key: str) -> bool:
    return key.rpartition(".")[2] in PORTABLE


def diagnose(outputs, mistakes: dict[str, Arrays], rtol: float) -> str:
    """The first known mistake whose outputs the student's match, or ''; whether the code follows its input's
    dtype and device is left out (a mistake made with tensors on the CPU is still that mistake)."""
    for sentence, theirs in mistakes.items():
        theirs = {k: v for k, v in theirs.items() if not portable(k)}
        if isinstance(outputs, dict) and theirs and theirs.keys() <= outputs.keys() and all(
                type(outputs[k]) is np.ndarray and outputs[k].shape == v.shape and outputs[k].dtype == v.dtype
                for k, v in theirs.items()) and not matches(outputs, theirs, max(rtol, 1e-6)):
            return sentence
    return ""


_WHERE = re.compile(r" at line \d+ of your cell( \(`[^`]*`\))?")


def failure(message: str) -> str:
    """A failure message without what differs between two codes making the same mistake (the line and its
    source); what stays is the step and case, the function that raised, the torch call and its shapes, and
    the error."""
    return _WHERE.sub("", message)


def diagnose_failure(message: str, failures: dict[str, str]) -> str:
    """The first known mistake that fails the check the same way (``failure``: in the same function, torch call
    and shapes, with the same error; not by the error's message alone), or ''."""
    if "Diagnosis: " in message:  # the failure names its cause already
        return ""
    return next((sentence for sentence, theirs in failures.items() if theirs == failure(message)), "")


def with_diagnosis(message: str, mistake: str) -> str:
    """What the student reads: the diagnosis (what their code does) first, then what the check measured."""
    return f"Diagnosis: your code {mistake}.\n{message}" if mistake else message


def score(part: Part, outputs, expected: Arrays, mistakes: dict | None = None) -> Result:
    """All points or none: the student's ``outputs`` against the ``expected`` ones; a failure names the first
    quantity that is off (never its value) and, where it matches one, the known mistake. ``mistakes`` maps
    each known mistake to its outputs, or to its failure message where its code fails the check."""
    labels, full = part.cases, float(part.points)
    mistakes = mistakes or {}
    failures = {k: v for k, v in mistakes.items() if isinstance(v, str)}
    arrays = {k: v for k, v in mistakes.items() if isinstance(v, dict)}
    try:
        validate(outputs, expected, labels)
    except CheckFailed as err:
        message = f"{part.description}: {err}"
        mistake = diagnose_failure(message, failures) or diagnose(outputs, arrays, part.rtol)  # e.g. a wrong shape
        return Result(part.name, 0.0, full, False, with_diagnosis(message, mistake), mistake)
    bad = matches(outputs, expected, part.rtol)
    if not bad:
        return Result(part.name, full, full, True, f"{part.description}: passed")
    first = bad[0]
    message = (f"{part.description}: {phrase(first, labels)}: relative error {rel_error(outputs[first], expected[first]):.1e}"
               f" against the reference implementation (tolerance {part.rtol:.0e})")
    if len(bad) > 1:
        message += f"; {len(bad) - 1} more quantit{'y is' if len(bad) == 2 else 'ies are'} off too"
    rest = [key for key in bad if not portable(key)]
    moved = elsewhere(bad)
    mistake = diagnose(outputs, arrays, part.rtol) or pattern(rest, expected) if rest else ""
    mistake = f"{mistake}, and {moved}" if mistake and moved else mistake or moved
    return Result(part.name, 0.0, full, False, with_diagnosis(message, mistake), mistake)


def elsewhere(bad: list[str]) -> str:
    """What the dtype and device checks that failed say the code does, or ''."""
    failed = {key.rpartition(".")[2] for key in bad if portable(key)}
    if not failed:
        return ""
    return ELSEWHERE.format("device " if failed == {"device"} else "dtype " if failed == {"float32"} else "dtype and device ")


def pattern(bad: list[str], expected: Arrays) -> str:
    """A mistake told by *which* quantities are off, when no known mistake matches the outputs exactly: only
    gradients, only initial values, or (the BatchNorm hint, only where the part's module has BatchNorm, i.e.
    running statistics among its outputs) only eval mode and the state after training."""
    fields = [set(key.split(".")) for key in bad]
    if all(f & {"dx", "grad"} for f in fields):
        return ("gets the forward pass right but not the gradients: look for .detach(), .data, numpy round trips "
                "or in-place operations")
    if all("fresh" in f for f in fields):
        names = sorted({key.rpartition(".")[2] for key in bad})
        return f"starts {' and '.join(names)} at a value other than the task's"
    if all(f & {"eval", "after"} for f in fields) and any(".running_" in key for key in expected):
        return ("is right in training mode but not in eval mode: BatchNorm must use (and update) its running "
                "statistics, so no F.batch_norm(..., training=True) and no .train() inside forward")
    return ""
