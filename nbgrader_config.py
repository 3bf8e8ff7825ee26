"""nbgrader reads ``nbgrader_config.py`` from the folder it runs in; the course's settings live in
``autograder/nbgrader_config.py``, next to the grader that reads them too."""
from pathlib import Path

c = get_config()  # noqa: F821 (traitlets provides it when it loads this file)
settings = Path(__file__).resolve().parent / "autograder" / "nbgrader_config.py"
if not settings.is_file():  # load_subconfig would skip a missing file without a word
    raise FileNotFoundError(f"{settings} is missing: it holds the course's nbgrader settings")
load_subconfig(str(settings))  # noqa: F821
