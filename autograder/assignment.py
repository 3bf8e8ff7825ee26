"""Grading one assignment for a class: on this machine (``grading``) or on a Dask cluster (``cluster``).

The one entry point above both, so that the cluster's code can build on the local grader's pieces without
the local grader knowing the cluster."""
from __future__ import annotations

import os

from .course import Course
from .grading import Batch, Plan, grading_run


def grade_assignment(course_dir, assignment: str, students: list[str] | None = None, jobs: int | None = None,
                     sandboxed: bool = True, progress: bool = False, scheduler: str | None = None,
                     **settings) -> dict[str, dict]:
    """Grade ``assignment`` for ``students`` (default: everyone who submitted); returns student -> results.json
    content. ``settings`` override ``c.Autograder`` options (cell_timeout=, memory=, ...). With ``scheduler``
    (a Dask scheduler's address) the cluster's workers grade (cluster.py) and ``jobs`` does not apply."""
    course = Course(course_dir, **settings)
    every = course.students(assignment)
    students = every if students is None else list(students)
    unknown = sorted(set(students) - set(every))
    if unknown:
        raise ValueError(f"no submission of {assignment} from {unknown} in {course.step('submitted')}")
    if scheduler:
        from .cluster import grade_on_cluster  # Dask is imported only here
        return grade_on_cluster(Plan.make(course, assignment, course.limits(assignment)), students, scheduler,
                                sandboxed, progress)
    jobs = jobs or os.cpu_count() or 1
    with grading_run(course, assignment, jobs, sandboxed, course.limits(assignment)) as (plan, zygote, box):
        return Batch(plan, zygote, box, jobs, progress).run(students)
