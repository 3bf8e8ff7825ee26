"""How many wrong implementations the checks catch, and how many of those they name, per assignment and part.

    python benchmarks/bench_diagnosis.py [--seed 2024] [--assignment a06_scaling ...] [--list]

Every wrong variant in tests/exercise_variants (``MISTAKES``) runs in process, as the grader runs it, on the
inputs of one secret-like seed, and is graded by the answer key with its known mistakes; the valid variants
(``VALID``) must all get full marks. A mistake counts as *named* when the feedback says what the code does
(a ``Diagnosis:``) beyond the two generic hints that only say where to look. ``--list`` prints every variant
with the diagnosis it got.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from autograder import key as answer_key  # noqa: E402
from autograder.key import apply  # noqa: E402
from exercise_variants import run_in_process, solution_sources  # noqa: E402
from reslab import checks  # noqa: E402

GENERIC = ("gets the forward pass right but not the gradients", "is right in training mode but not in eval mode")


@dataclass(frozen=True)
class Outcome:
    assignment: str
    part: str
    variant: str
    wrong: bool  # a MISTAKES variant (else a VALID one)
    passed: bool
    diagnosis: str  # what the feedback names, '' if nothing

    @property
    def named(self) -> bool:
        return bool(self.diagnosis) and not self.diagnosis.startswith(GENERIC)


def named_in(message: str) -> str:
    """The mistake a feedback message names (``Diagnosis: your code ... .``, first or inside it), or ''."""
    return message.partition("Diagnosis: your code ")[2].split("\n")[0].rstrip(".")


def grade(assignment: str, seed: int) -> list[Outcome]:
    """Every variant of ``assignment`` graded on the inputs of ``seed``."""
    variants = importlib.import_module(f"exercise_variants.{assignment}")
    solution = solution_sources(assignment)
    found = []
    for key in answer_key.keys_for(assignment):
        inputs = key.make_inputs(np.random.default_rng(seed))
        expected, mistakes = key.expected(inputs), key.mistake_outputs(inputs)
        failures = {k: v for k, v in mistakes.items() if isinstance(v, str)}
        for wrong, table in ((True, variants.MISTAKES), (False, variants.VALID)):
            for what, variant in table.get(key.name, {}).items():
                cell = f"{key.name}_solution"
                namespace, _ = run_in_process(assignment, {**solution, cell: apply(solution[cell], variant)}, tests=False)
                try:
                    outputs = checks.run(key.part.description, key.part.run_student, namespace, inputs)
                    result = checks.score(key.part, outputs, expected, mistakes)
                    passed, message = result.passed, result.message
                except checks.CheckFailed as err:
                    passed = False
                    message = checks.with_diagnosis(str(err), checks.diagnose_failure(str(err), failures))
                found.append(Outcome(assignment, key.name, what, wrong, passed, named_in(message)))
    return found


def table(outcomes: list[Outcome]) -> str:
    rows = [("assignment", "part", "wrong", "caught", "named", "valid", "accepted")]
    groups = dict.fromkeys((o.assignment, o.part) for o in outcomes)
    total = [0] * 5
    for assignment, part in groups:
        mine = [o for o in outcomes if (o.assignment, o.part) == (assignment, part)]
        wrong = [o for o in mine if o.wrong]
        valid = [o for o in mine if not o.wrong]
        counts = [len(wrong), sum(not o.passed for o in wrong), sum(not o.passed and o.named for o in wrong),
                  len(valid), sum(o.passed for o in valid)]
        total = [a + b for a, b in zip(total, counts)]
        rows.append((assignment, part, *map(str, counts)))
    rows.append(("total", "", *map(str, total)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--assignment", nargs="*", default=checks.ASSIGNMENTS, choices=checks.ASSIGNMENTS)
    parser.add_argument("--list", action="store_true", help="print every variant and its diagnosis")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest
    outcomes = [o for a in args.assignment for o in grade(a, args.seed)]
    if args.list:
        for o in outcomes:
            verdict = ("caught" if not o.passed else "MISSED") if o.wrong else ("accepted" if o.passed else "REFUSED")
            print(f"{o.assignment} {o.part} | {o.variant[:60]} | {verdict} | {o.diagnosis[:90]}")
    print(table(outcomes))
    return 0 if all(o.passed != o.wrong for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
