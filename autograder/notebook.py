"""Submitted notebooks: read them defensively and rebuild them around the instructor's locked cells.

The notebook that runs is the release notebook's structure (test and locked cells exactly as released, as
nbgrader's checksums define them) with the student's solution cells and the student's own extra cells put
back in place. Deleted or edited test and locked cells are thus restored, and every restoration is noted.
Everything here is linear in the notebook's size: no schema validation of the student's JSON (only the few
fields the grader uses are read, each checked for its type), no per-cell copies of the release.
"""
from __future__ import annotations

import json
import os
import re
import stat

import nbformat
from nbformat import NotebookNode
from nbgrader import utils

from .sandbox import open_dir

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SURROGATE = re.compile("[\ud800-\udfff]")  # valid in JSON ("\\ud800"), not encodable as UTF-8
CELL_TYPES = ("code", "markdown", "raw")
LONGEST_INT = 1000  # digits
NOTEBOOK_OUTPUT_LIMIT = 2 << 20  # bytes of outputs one graded notebook keeps (per cell: sandbox.Limits)


class BadSubmission(ValueError):
    """A submission that cannot be graded at all; the message is the reason recorded for the student."""


def read_file(name: str, max_bytes: int, dir_fd: int | None = None) -> bytes:
    """A regular file's bytes, never through a link, never blocking on a FIFO or a device; BadSubmission if
    it is something else or larger than ``max_bytes``."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dir_fd)
    except OSError as err:
        raise BadSubmission(f"{os.path.basename(name)} cannot be opened ({err.strerror}); it must be a "
                            "regular file") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadSubmission(f"{os.path.basename(name)} is not a regular file")
        if info.st_size > max_bytes:
            raise BadSubmission(f"{os.path.basename(name)} is {info.st_size / 2**20:.1f} MB, more than the limit "
                                f"of {max_bytes / 2**20:.0f} MB (clear the outputs before submitting)")
        return f.read(max_bytes + 1)[:max_bytes]


def open_folder(base, *parts: str) -> int:
    """A file descriptor of the folder ``base/part/...`` reached without following a link in any ``part``
    (``base`` is the instructor's); BadSubmission if a part is a link or not a folder."""
    try:
        return open_dir(base, *parts)
    except OSError as err:
        raise BadSubmission(f"the submission folder cannot be opened ({err.strerror}): "
                            f"{'/'.join(parts)} must be folders, not links") from None


def read_timestamp(dir_fd: int):
    """The submission time in ``timestamp.txt`` (nbgrader's format), None if there is none; BadSubmission if it
    is unreadable (nbgrader's own reader would follow links and block on a FIFO)."""
    try:
        os.stat("timestamp.txt", dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    text = read_file("timestamp.txt", 1024, dir_fd).decode("utf-8", errors="replace").strip()
    try:
        return utils.parse_utc(text) if text else None
    except (ValueError, OverflowError):
        raise BadSubmission(f"timestamp.txt holds no time: {text[:100]!r}") from None


def _int(text: str):
    """Python refuses to parse integers of more than 4300 digits; no notebook field the grader reads needs them."""
    return int(text) if len(text) <= LONGEST_INT else float(text)


def read_submission(name: str, max_bytes: int, dir_fd: int | None = None) -> tuple[NotebookNode, list[str]]:
    """The notebook ``name`` (relative to ``dir_fd``), with notes on the cells that had to be repaired, or
    BadSubmission saying why it cannot be graded."""
    base = os.path.basename(name)
    data = read_file(name, max_bytes, dir_fd)
    if not data.strip():
        raise BadSubmission(f"{base} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadSubmission(f"{base} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None
    try:
        content = json.loads(text, parse_int=_int)
    except json.JSONDecodeError as err:
        raise BadSubmission(f"{base} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                            "was it edited outside Jupyter?") from None
    except (RecursionError, ValueError):
        raise BadSubmission(f"{base} is not valid JSON (nested too deeply or an unreadable number)") from None
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        if isinstance(content, dict) and content.get("nbformat") == 3 and isinstance(content.get("worksheets"), list):
            return _upgrade(base, content)
        raise BadSubmission(f"{base} is JSON but not a Jupyter notebook (no list of cells)")
    return _cells(content["cells"])


def _upgrade(name: str, content: dict) -> tuple[NotebookNode, list[str]]:
    """An nbformat 3 notebook, upgraded by nbformat's own converter."""
    try:
        upgraded = nbformat.convert(nbformat.from_dict(content), 4)
    except Exception as err:  # nbformat raises many kinds on malformed notebooks
        raise BadSubmission(f"{name} is an nbformat 3 notebook that cannot be upgraded "
                            f"({type(err).__name__}: {str(err)[:200]})") from None
    nb, notes = _cells(upgraded.get("cells", []))
    return nb, [f"{name} is in the old nbformat 3: upgraded to nbformat 4"] + notes


def _cells(cells: list) -> tuple[NotebookNode, list[str]]:
    """The cells the grader can use (type, source, metadata); the others are left out, with a note."""
    kept, dropped, replaced = [], [], []
    for number, cell in enumerate(cells, 1):
        source = cell.get("source") if isinstance(cell, dict) else None
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(cell, dict) or cell.get("cell_type") not in CELL_TYPES or not isinstance(source, str):
            dropped.append(number)
            continue
        if SURROGATE.search(source):
            source = unicode_text(source)
            replaced.append(number)
        metadata = cell.get("metadata")
        metadata = nbformat.from_dict(metadata) if isinstance(metadata, dict) else NotebookNode()
        kept.append(NotebookNode(cell_type=cell["cell_type"], source=source, metadata=metadata))
    notes = [f"left out {len(dropped)} malformed cell(s) (unknown type or a source that is not text): "
             f"number {_numbers(dropped)}"] if dropped else []
    if replaced:
        notes.append(f"cell(s) {_numbers(replaced)} held lone surrogates (characters that are not Unicode text): "
                     "each was replaced by U+FFFD")
    return NotebookNode(cells=kept), notes


def _numbers(numbers: list[int]) -> str:
    return f"{', '.join(map(str, numbers[:10]))}{' ...' if len(numbers) > 10 else ''}"


def _grade_id(cell) -> str | None:
    meta = cell.metadata.get("nbgrader")
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _checksum(cell) -> str | None:
    try:
        return utils.compute_checksum(cell)
    except Exception:  # malformed nbgrader metadata: it was edited, which is all we need to know
        return None


def _new_cell(cell_type: str, source: str, metadata: dict | None = None) -> NotebookNode:
    """A notebook cell without schema validation (nbformat's constructors validate each cell: quadratic
    cost on big notebooks); ids are unique within the merged notebook."""
    cell = NotebookNode(cell_type=cell_type, metadata=nbformat.from_dict(metadata or {}), source=source)
    if cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def merge(release: NotebookNode, submitted: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The notebook to run: release cells in release order, the student's solution cells in their place,
    the student's extra cells (without nbgrader metadata, so no forged grade cells) after the release cell
    they followed. Returns it and the notes on what was restored."""
    released = {gid: cell for cell in release.cells if (gid := _grade_id(cell))}
    theirs, extra, anchor = {}, {None: []}, None
    for cell in submitted.cells:
        gid = _grade_id(cell)
        if gid in released and gid not in theirs:
            theirs[gid], anchor = cell, gid
        else:
            extra.setdefault(anchor, []).append(_new_cell(cell.cell_type, cell.source))
    notes, cells = [], list(extra[None])
    for cell in release.cells:
        gid = _grade_id(cell)
        if gid is None:  # not nbgrader's: the student's copy, if any, is kept among their own cells
            continue
        mine = theirs.get(gid)
        source = cell.source
        if utils.is_solution(cell):
            if mine is None:
                notes.append(f"solution cell '{gid}' was missing: its original stub was used")
            else:
                source = mine.source
        elif mine is None:
            notes.append(f"{'test' if utils.is_grade(cell) else 'locked'} cell '{gid}' was deleted: restored")
        elif _checksum(mine) != cell.metadata.nbgrader.get("checksum") or mine.cell_type != cell.cell_type:
            notes.append(f"{'test' if utils.is_grade(cell) else 'locked'} cell '{gid}' was edited: restored")
        cells.append(_new_cell(cell.cell_type, source, cell.metadata))
        cells.extend(extra.get(gid, []))
    for number, cell in enumerate(cells):
        cell.id = f"cell-{number}"
    return NotebookNode(cells=cells, metadata=nbformat.from_dict(release.metadata), nbformat=4,
                        nbformat_minor=max(5, release.get("nbformat_minor", 5))), notes


def solve(release: NotebookNode, source) -> NotebookNode:
    """The release notebook with the source notebook's (at path ``source``) solutions in its solution cells:
    an honest, complete submission."""
    answers = {gid: c.source for c in nbformat.read(source, as_version=4).cells
               if (gid := _grade_id(c)) and utils.is_solution(c)}
    solved = nbformat.from_dict(release)
    for cell in solved.cells:
        cell.source = answers.get(_grade_id(cell), cell.source)
    return solved


def notebook_text(nb: NotebookNode) -> str:
    """A merged notebook as JSON text (valid by construction: nbformat.writes would validate it again, and
    indenting would leave json's fast C encoder) that UTF-8 can encode: a kernel's messages can carry lone
    surrogates too."""
    return unicode_text(json.dumps(nb, ensure_ascii=False)) + "\n"


def unicode_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, so that UTF-8 (files, SQLite) can encode it."""
    return SURROGATE.sub("\ufffd", text)


class OutputBudget:
    """The outputs a graded notebook keeps, bounded over the whole notebook as each cell's are (sandbox.Limits
    .output_bytes): without it a few kB of cells that each print up to the cell's limit make a graded
    notebook, and a feedback page, of many MB."""

    def __init__(self, limit: int = NOTEBOOK_OUTPUT_LIMIT):
        self.limit, self.left, self.exhausted = limit, limit, False

    def keep(self, outputs: list) -> list:
        """The outputs of one cell that fit, and a note in place of the first one that does not."""
        kept = []
        for out in outputs:
            size = len(json.dumps(out))
            if not self.exhausted and size <= self.left:
                self.left -= size
                kept.append(out)
            elif not self.exhausted:
                self.exhausted = True
                kept.append(nbformat.v4.new_output("stream", name="stderr", text=(
                    f"\n[autograder: outputs left out from here on: the notebook's outputs exceed "
                    f"{self.limit / 2**20:g} MB]\n")))
        return kept


def clean_traceback(output: NotebookNode, hidden_file: str) -> NotebookNode:
    """Drop traceback frames that show the checks' own code (the file ``hidden_file``)."""
    if output.get("output_type") == "error":
        output.traceback = [line for line in output.traceback if hidden_file not in ANSI.sub("", line)]
    return output
