"""``python -m autograder.key write [ASSIGNMENT ...]``: store the public seeds' expected outputs."""
import sys

from reslab.checks import ASSIGNMENTS

from .public import write

if len(sys.argv) < 2 or sys.argv[1] != "write" or not set(sys.argv[2:]) <= set(ASSIGNMENTS):
    sys.exit(f"usage: python -m autograder.key write [ASSIGNMENT ...]  (assignments: {' '.join(ASSIGNMENTS)})")
write(sys.argv[2:] or ASSIGNMENTS)
