"""The trusted grader: sandboxed, parallel, tamper-proof grading into nbgrader's gradebook.

Command line: ``python -m autograder``; instructor guide: README.md here."""

__all__ = ["grade_assignment"]


def __getattr__(name: str):
    """``grade_assignment`` is imported on first use: the command line's --help must not wait for torch."""
    if name == "grade_assignment":
        from .assignment import grade_assignment
        return grade_assignment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
