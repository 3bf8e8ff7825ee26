"""The integrity scan translates IPython magics as the kernel does, in linear time: IPython re-tokenises the whole
cell after each magic (a cell of 501 ``%time 1`` took 15-20 s on the loaded 2-core machine and outran the scan's
deadline, flagging every part of a correct notebook)."""
import time

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from autograder import integrity
from reslab import checks

CELLS = [
    "%matplotlib inline\nx = 1\n!ls\nx?\n",
    "import torch\n" + "%time x = 1\n" * 30 + "if True:\n    %time 2\n    y = 3?\n" + "a = %time 1\nb = !ls\n",
    "def f():\n    return (1,\n            2)\n%time f()\ns = '''\n%not_a_magic\n'''\n",
    "%%capture\n" + "%time 1\n" * 20,
    "x = 1 \\\n  + 2\n%time \\\n  x\n/ f\n",  # a rewrite IPython cannot make (SyntaxError) stays as it is
]


def reference(source: str) -> str:
    try:
        return TransformerManager().transform_cell(source)
    except RuntimeError as err:
        return repr(err)[:12]


def ours(source: str) -> str:
    try:
        return integrity.translate(source)
    except RuntimeError as err:
        return repr(err)[:12]


@pytest.mark.parametrize("line_by_line", [False, True])
@pytest.mark.parametrize("source", CELLS)
def test_magics_are_translated_as_ipython_does(source, line_by_line, monkeypatch):
    if line_by_line:  # as if the whole cell were costly to translate (more than 3 lines), a logical line not
        monkeypatch.setattr(integrity, "_work", lambda lines: integrity.MAGIC_WORK + (len(lines) > 3))
    assert ours(source) == reference(source)


def test_a_cell_of_many_magics_is_scanned_in_linear_time():
    parts = checks.parts_for("a04_identity_add")
    cells = ["%time 1\n" * 501, "%time 1\n" * 499 + "x = 1\n" * 5000, "%time 1\n" * 499 + "import importlib\n"]
    started = time.monotonic()
    flags = [integrity.scan(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c)]), parts) for c in cells]
    assert time.monotonic() - started < 3  # IPython's own translation: minutes
    assert flags[:2] == [{}, {}] and set(flags[2]) == {p.name for p in parts}, flags
    with pytest.raises(RuntimeError):  # as IPython (and so the kernel) gives up on the cell at 500 magics
        integrity.translate(cells[0])


def test_magics_that_change_how_later_lines_read_are_flagged():
    """``%foo '''`` quotes the string's end: the lines after it read differently once it is translated. Beyond
    the work limit such a cell is not guessed at but flagged."""
    parts = checks.parts_for("a04_identity_add")
    for source in ["%foo '''\n'''\n" + "%time 1\n" * 300 + "'''\n", "%foo (\n" + "%time 1\n" * 300 + ")\n"]:
        flags = integrity.scan(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), parts)
        assert set(flags) == {p.name for p in parts}
        assert all("IPython magics could not be translated" in r[0] for r in flags.values()), flags
