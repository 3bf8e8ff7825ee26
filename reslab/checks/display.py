"""How a failed check and an unwritten stub look in the student's notebook.

A failed check shows its message alone, wrapped to the page (the diagnosis, where there is one, comes first:
``core.with_diagnosis``), without the frames of this library or of torch; a stub's bare
``raise NotImplementedError()`` shows which part is not written yet. Installed into the IPython kernel that
imports ``reslab.checks`` (the notebooks' setup cell); every other exception keeps IPython's traceback.
"""
from __future__ import annotations

import sys
import textwrap

from .core import CheckFailed

WIDTH = 100  # characters: formgrader's and the Validate dialog's width, and a notebook's


def wrap(text: str, width: int = WIDTH) -> list[str]:
    """Each line of ``text`` folded at ``width``, continuation lines indented."""
    return [folded for line in text.splitlines() or [""]
            for folded in textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False) or [""]]


def _in_a_cell(filename: str) -> bool:
    return filename.startswith("<ipython-input-") or "/ipykernel_" in filename


def stub_name(tb) -> str:
    """The qualified name of the innermost notebook function on the traceback (the stub that raised)."""
    name = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if _in_a_cell(code.co_filename) and code.co_name != "<module>":
            name = getattr(code, "co_qualname", code.co_name)
        tb = tb.tb_next
    return name


def message(etype, value, tb) -> list[str] | None:
    """The lines shown in place of the traceback; None where IPython's own traceback is the right one (a
    NotImplementedError with a message of the student's)."""
    if issubclass(etype, CheckFailed):
        return wrap(str(value))
    if not str(value):
        return wrap(f"not implemented yet: {stub_name(tb) or 'a part of this exercise'} (its code still says "
                    "raise NotImplementedError(): write yours there and run that cell again)")
    return None


def _show(shell, etype, value, tb, tb_offset=None):
    lines = message(etype, value, tb)
    if lines is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    else:
        shell._showtraceback(etype, value, lines)


def install(shell=None) -> None:
    """Show CheckFailed and bare NotImplementedError this way in ``shell`` (default: the running IPython, if
    any; IPython is never imported here)."""
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        shell.set_custom_exc((CheckFailed, NotImplementedError), _show)
