"""What students receive, built by one command: ``python -m autograder.bundle OUT``.

The bundle holds the library (``reslab``, with its reference models and data sets), the chapters, the released
exercises and the files to install them, and nothing of the instructor's: no sources with solutions or hidden
tests, no grader, no answer key. Its ``jupyter/`` folder switches off nbgrader's instructor tools (formgrader,
Create Assignment, Course List) for the Jupyter started with it (``JUPYTER_CONFIG_PATH=jupyter jupyter lab``).
Every notebook and module copied is checked for solution and hidden-test markers before the command succeeds.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .course import Course

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
INSTRUCTOR_SERVER = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
INSTRUCTOR_LAB = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                  "@jupyter/nbgrader:course-list")
README = """# Residual connections in CNNs: the student bundle

```bash
python -m venv .venv && source .venv/bin/activate
pip install -r requirements.lock && pip install .
JUPYTER_CONFIG_PATH=jupyter jupyter lab
```

- `course/`: the chapters, in order (`course/README.md` says what each teaches and how long it takes).
- `exercises/<assignment>/`: one assignment per chapter. Fill in the cells marked `YOUR CODE HERE`, run the
  visible checks under each part, use the nbgrader *Validate* button, and hand in the notebook as your course
  says (the hub's Assignment List, or the upload your instructor names).
- `reslab/`: the library the chapters and exercises import, with the reference models and the data sets.
"""


def student_jupyter_config(folder: Path) -> None:
    """Jupyter settings for students: nbgrader's instructor tools off (server extensions and lab plugins)."""
    server = folder / "jupyter_server_config.d"
    server.mkdir(parents=True, exist_ok=True)
    (server / "reslab-student.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {name: False for name in INSTRUCTOR_SERVER}}}, indent=1))
    (folder / "labconfig").mkdir(exist_ok=True)
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {name: True for name in INSTRUCTOR_LAB}}, indent=1))


def leaks(folder: Path) -> list[str]:
    """Files in ``folder`` that hold a solution or hidden-test marker, or belong to the grader."""
    found = [str(p) for p in folder.rglob("autograder") if p.is_dir()]
    for path in folder.rglob("*"):
        if path.suffix in (".ipynb", ".py") and any(m in path.read_text(errors="replace") for m in MARKERS):
            found.append(str(path))
    return found


def build(course: Course, out: Path) -> Path:
    """Copy what students receive into ``out`` (a new folder) and check that no solution went with it."""
    import reslab

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: give a new folder for the bundle")
    release = course.step("release")
    if not any(release.glob("*/*.ipynb")):
        raise ValueError(f"no released exercises in {release}: run nbgrader generate_assignment first")
    shutil.copytree(Path(reslab.__file__).parent, out / "reslab", ignore=IGNORE, dirs_exist_ok=True)
    shutil.copytree(course.root / "course", out / "course", ignore=IGNORE)
    shutil.copytree(release, out / "exercises", ignore=IGNORE)
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy(course.root / name, out / name)
    (out / "README.md").write_text(README)
    student_jupyter_config(out / "jupyter")
    found = leaks(out)
    if found:
        shutil.rmtree(out)
        raise ValueError(f"solution or grader files would reach students, bundle removed: {', '.join(found)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.bundle", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="a new folder for the bundle")
    parser.add_argument("--course-dir", help="nbgrader course directory (default: this repository)")
    args = parser.parse_args(argv)
    try:
        print(build(Course(args.course_dir), Path(args.out)))
    except (ValueError, OSError) as err:
        print(f"autograder.bundle: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
