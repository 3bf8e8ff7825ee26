"""How the suite shares two workers (scripts/test.sh runs pytest-xdist with ``-n 2 --dist loadfile``).

Each test file runs whole on one worker, so its module fixtures (a grading run several tests assert on, a
built site) are built once. Files that share something are one unit, run on one worker in collection order:
test_course.py executes every chapter into the site's execution cache, which test_site.py's build then
reads; the files grading as the ordinary user ``instructor`` count that account's processes. (xdist's own
``xdist_group`` marks do nothing under pytest 9, whose node ids xdist can no longer rename.)
"""
from __future__ import annotations

SHARED = {"test_course.py": "course and site", "test_site.py": "course and site",
          "test_autograder_nonroot.py": "instructor", "test_grader_bounds.py": "instructor",
          "test_probe_hardening.py": "instructor"}


def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with the files of SHARED that share something as one unit."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFiles(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
            return SHARED.get(name, name)

    return SharedFiles(config, log)
