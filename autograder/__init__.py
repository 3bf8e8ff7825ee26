"""The trusted grader: sandboxed, parallel, tamper-proof grading into nbgrader's gradebook.

Command line: ``python -m autograder``; instructor guide: README.md here."""
from .grading import grade_assignment

__all__ = ["grade_assignment"]
