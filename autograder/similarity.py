"""Similarity review: which submissions' solution cells share unusually much code with each other, with the
solution, or with the library's source (``reslab/``). copydetect fingerprints the code (names and strings
normalised, so renaming hides nothing); the released stub is boilerplate, so code every student was given does
not count. The result is evidence for a person to read, never a score: nothing here touches a grade.
"""
from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import filter_code, hashed_kgrams

from .course import Course

NOISE = 25  # copydetect's noise threshold: matches shorter than this many normalised characters are ignored
GUARANTEE = 30  # ... and its guarantee threshold: every match this long is found
THRESHOLD = 0.5  # a pair is listed when at least this share of one side's code is found in the other
MARKERS = re.compile(r"^\s*###\s*(BEGIN|END)\s+SOLUTION.*$", re.M)


@dataclass
class Pair:
    """Two documents and what they share: ``share_a`` is the part of a's code found in b (0..1), and
    ``snippets`` the shared code as it stands in a."""
    a: str
    b: str
    share_a: float
    share_b: float
    snippets: list[str]

    @property
    def share(self) -> float:
        return max(self.share_a, self.share_b)


def solution_ids(notebook) -> set[str]:
    """The grade ids of the cells a student writes (nbgrader's solution cells) in the source notebook."""
    return {cell.metadata["nbgrader"]["grade_id"] for cell in notebook.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")}


def solution_code(notebook, ids: set[str]) -> str:
    """The code of the cells with these grade ids, marker lines removed, one cell after another."""
    cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"
             and cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in ids]
    return MARKERS.sub("", "\n\n".join(cells))


def _fingerprint(name: str, code: str, boilerplate=None) -> CodeFingerprint:
    return CodeFingerprint(f"{name}.py", NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate,
                           fp=io.StringIO(code))


def compare(documents: dict[str, str], references: dict[str, str] | None = None, boilerplate: str = "",
            threshold: float = THRESHOLD) -> list[Pair]:
    """Every pair of ``documents`` and every document against every reference whose shared code is at least
    ``threshold`` of either side, most similar first. ``boilerplate`` is code everyone was given."""
    # every k-gram of the given code, not only those winnowing picked in it: a student's document picks others
    given = np.unique(hashed_kgrams(filter_code(boilerplate, "boilerplate.py")[0], NOISE)) if boilerplate.strip() \
        else None
    prints = {name: _fingerprint(name, code, given) for name, code in documents.items()}
    refs = {name: _fingerprint(name, code, given) for name, code in (references or {}).items()}
    names = sorted(prints)
    candidates = [(a, b, prints[b]) for i, a in enumerate(names) for b in names[i + 1:]]
    candidates += [(a, b, ref) for a in names for b, ref in sorted(refs.items())]
    pairs = []
    for a, b, other in candidates:
        overlap, (share_a, share_b), (slices_a, _) = compare_files(prints[a], other)
        if overlap and max(share_a, share_b) >= threshold:
            code = prints[a].raw_code
            snippets = [code[start:end].strip() for start, end in zip(*slices_a)]
            pairs.append(Pair(a, b, float(share_a), float(share_b), snippets))
    return sorted(pairs, key=lambda pair: (-pair.share, pair.a, pair.b))


def library_sources(root: Path) -> dict[str, str]:
    """The library's modules (``reslab/**/*.py``) by their path: copying from them is copying too."""
    return {f"library:{path.relative_to(root.parent).as_posix()}": path.read_text()
            for path in sorted(root.rglob("*.py"))}


def similar_submissions(course: Course, assignment: str, threshold: float = THRESHOLD) -> list[Pair]:
    """Ranked pairs among the graded submissions of ``assignment`` (the grader's copies in ``autograded/``),
    and of each submission against the solution and the library's source."""
    import reslab

    source = nbformat.read(course.source_notebook(assignment), as_version=4)
    ids = solution_ids(source)
    release = course.step("release") / assignment / course.source_notebook(assignment).name
    stub = solution_code(nbformat.read(release, as_version=4), ids) if release.is_file() else ""
    documents = {}
    for path in sorted(course.step("autograded").glob(f"*/{assignment}/{release.name}")):
        documents[path.parent.parent.name] = solution_code(nbformat.read(path, as_version=4), ids)
    references = {"solution": solution_code(source, ids), **library_sources(Path(reslab.__file__).parent)}
    return compare(documents, references, stub, threshold)


def report_section(course: Course, assignment: str, threshold: float = THRESHOLD, shown: int = 50) -> str:
    """The class report's section: the ranked pairs with their shared code, every text escaped."""
    pairs = similar_submissions(course, assignment, threshold)
    intro = (f"<p>Pairs whose solution cells share at least {threshold:.0%} of one side's code (copydetect "
             "fingerprints: names and strings normalised, the released stub left out), most similar first. "
             "Evidence for a person to read, never a score: short tasks have few ways to be right.</p>")
    if not pairs:
        return f"<h2>Similar submissions</h2>{intro}<p>None.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(p.a)}</td><td>{html.escape(p.b)}</td><td>{p.share_a:.0%}</td><td>{p.share_b:.0%}</td>"
        "<td><details><summary>shared code</summary>"
        + "".join(f"<pre>{html.escape(snippet)}</pre>" for snippet in p.snippets) + "</details></td></tr>"
        for p in pairs[:shown])
    more = f"<p>{len(pairs) - shown} more pairs not shown.</p>" if len(pairs) > shown else ""
    return (f"<h2>Similar submissions</h2>{intro}<table border='1' cellpadding='4' style='border-collapse:collapse'>"
            "<tr><th>submission</th><th>compared with</th><th>its code found there</th><th>and back</th>"
            f"<th>evidence</th></tr>{rows}</table>{more}")
