"""What a student sees in the notebook when a check fails or a stub is not written yet (IPython, in process)."""
import pytest
from IPython.core.interactiveshell import InteractiveShell

from reslab.checks import display


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance(colors="nocolor")
    display.install(shell)
    yield shell
    InteractiveShell.clear_instance()


def test_a_stub_says_which_part_is_not_written(shell, capsys):
    shell.run_cell("class PlainBlock:\n    def __init__(self, channels):\n        # YOUR CODE HERE\n"
                   "        raise NotImplementedError()\n\nblock = PlainBlock(8)\n")
    shown = capsys.readouterr().out
    assert "not implemented yet: PlainBlock.__init__" in shown and "Traceback" not in shown, shown


def test_a_failed_check_shows_its_message_wrapped_without_frames(shell, capsys):
    shell.run_cell("from reslab.checks import run_in_kernel\nclass PlainBlock:\n    pass\n"
                   "run_in_kernel('a04_identity_add', 'plain_block', globals(), seed=0)\n")
    shown = capsys.readouterr().out
    assert "PlainBlock" in shown and "File " not in shown and "reslab/checks" not in shown, shown
    assert "Traceback" not in shown and all(len(line) <= display.WIDTH for line in shown.splitlines()), shown


def test_other_errors_keep_their_traceback(shell, capsys):
    shell.run_cell("def f():\n    raise NotImplementedError('my own note')\nf()\n")
    shown = capsys.readouterr().out
    assert "my own note" in shown and "----> 3 f()" in shown, shown


def test_the_diagnosis_comes_first():
    from reslab.checks import with_diagnosis
    assert with_diagnosis("basic block: the output is off", "adds the shortcut twice") == \
        "Diagnosis: your code adds the shortcut twice.\nbasic block: the output is off"
