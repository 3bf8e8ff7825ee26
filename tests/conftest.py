"""How the suite shares two workers (`TEST_WORKERS=2 bash scripts/test.sh`: pytest-xdist, ``-n 2 --dist loadfile``).

Each test file runs whole on one worker, so its module fixtures (a grading run several tests assert on, a
built site) are built once. Files that share something are one unit, run on one worker in collection order:
test_course.py executes every chapter into the site's execution cache, which test_site.py's build then reads;
the files that run the grader (or time its parts) are one unit, so two grading runs never compete for the two cores
(their submissions run against time limits, and several grade as the ordinary user ``instructor`` and count
that account's processes). xdist's own ``xdist_group`` marks do nothing under pytest 9, whose node ids xdist
can no longer rename, hence the scheduler below.
"""
from __future__ import annotations

GRADER = ("test_autograder.py", "test_autograder_browser.py", "test_autograder_cli.py", "test_autograder_nonroot.py",
          "test_autograder_units.py", "test_cluster.py", "test_exercises.py", "test_grader_bounds.py", "test_hub.py",
          "test_integrity_magics.py", "test_output_safety.py", "test_probe_hardening.py",
          "test_sandbox_first_process.py", "test_selfcheck_fairness.py")  # they grade, or time the grader's parts
SHARED = {"test_course.py": "course and site", "test_site.py": "course and site",
          **dict.fromkeys(GRADER, "the grader, one file at a time")}


def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with the files of SHARED that share something as one unit (the largest units first)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFiles(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
            return SHARED.get(name, name)

    return SharedFiles(config, log)
