"""Submitted notebooks: read them defensively and rebuild them around the instructor's locked cells.

The notebook that runs is the release notebook's structure (test and locked cells exactly as released, as
nbgrader's checksums define them) with the student's solution cells and the student's own extra cells put
back in place. Deleted or edited test and locked cells are thus restored, and every restoration is noted.
"""
from __future__ import annotations

import copy
import json
import os
import re
import stat

import nbformat
from nbformat import NotebookNode
from nbgrader import utils

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class BadSubmission(ValueError):
    """A submission that cannot be graded at all; the message is the reason recorded for the student."""


def read_submission(path: str, max_bytes: int) -> NotebookNode:
    """The notebook at ``path``, or BadSubmission saying why not (never follows a symbolic link)."""
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise BadSubmission(f"{name} cannot be opened ({err.strerror}); it must be a regular file") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadSubmission(f"{name} is not a regular file")
        if info.st_size > max_bytes:
            raise BadSubmission(f"{name} is {info.st_size / 2**20:.1f} MB, more than the limit of "
                                f"{max_bytes / 2**20:.0f} MB (clear the outputs before submitting)")
        data = f.read(max_bytes + 1)
    if not data.strip():
        raise BadSubmission(f"{name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadSubmission(f"{name} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadSubmission(f"{name} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                            "was it edited outside Jupyter?") from None
    except RecursionError:
        raise BadSubmission(f"{name} is not valid JSON (nested too deeply)") from None
    if not isinstance(content, dict) or not isinstance(content.get("cells"), list):
        raise BadSubmission(f"{name} is JSON but not a Jupyter notebook (no list of cells)")
    try:
        nb = nbformat.reads(text, as_version=4)
        for cell in nb.cells:
            cell.source  # every cell must have its source
    except Exception as err:  # nbformat raises many kinds on malformed notebooks
        raise BadSubmission(f"{name} is not a valid Jupyter notebook ({type(err).__name__}: "
                            f"{str(err).splitlines()[0][:200] if str(err) else ''})") from None
    return nb


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _checksum(cell) -> str | None:
    try:
        return utils.compute_checksum(cell)
    except Exception:  # malformed nbgrader metadata: it was edited, which is all we need to know
        return None


_NEW_CELL = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
             "raw": nbformat.v4.new_raw_cell}


def _plain(cell: NotebookNode) -> NotebookNode:
    """A student's own cell without nbgrader metadata (no forged grade cells)."""
    return _NEW_CELL[cell.cell_type](cell.source)


def merge(release: NotebookNode, submitted: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The notebook to run: release cells in release order, the student's solution cells in their place,
    the student's extra cells after the release cell they followed. Returns it and the notes on what was
    restored."""
    released = {gid: cell for cell in release.cells if (gid := _grade_id(cell))}
    theirs, extra, anchor = {}, {None: []}, None
    for cell in submitted.cells:
        gid = _grade_id(cell)
        if gid in released and gid not in theirs:
            theirs[gid], anchor = cell, gid
        else:
            extra.setdefault(anchor, []).append(_plain(cell))
    notes, cells = [], list(extra[None])
    for cell in release.cells:
        gid = _grade_id(cell)
        if gid is None:  # not nbgrader's: the student's copy, if any, is kept among their own cells
            continue
        mine = theirs.get(gid)
        if utils.is_solution(cell):
            if mine is None:
                notes.append(f"solution cell '{gid}' was missing: its original stub was used")
            else:
                cell = nbformat.from_dict({**cell, "source": mine.source})
        elif mine is None:
            notes.append(f"{'test' if utils.is_grade(cell) else 'locked'} cell '{gid}' was deleted: restored")
        elif _checksum(mine) != cell.metadata.nbgrader.get("checksum") or mine.cell_type != cell.cell_type:
            notes.append(f"{'test' if utils.is_grade(cell) else 'locked'} cell '{gid}' was edited: restored")
        cells.append(cell)
        cells.extend(extra.get(gid, []))
    merged = copy.deepcopy(nbformat.v4.new_notebook(cells=cells, metadata=release.metadata))
    for cell in merged.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return merged, notes


def clean_traceback(output: NotebookNode, hidden_file: str) -> NotebookNode:
    """Drop traceback frames that show the checks' own code (the file ``hidden_file``)."""
    if output.get("output_type") == "error":
        output.traceback = [line for line in output.traceback if hidden_file not in ANSI.sub("", line)]
    return output
