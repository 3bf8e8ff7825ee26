"""Stock ``nbgrader autograde`` (and formgrader's Autograde button, which runs it) refuses to run unless the
instructor opts in: it would run student code unsandboxed, with the hidden tests in the student's kernel.

nbgrader builds the converter's exporter before it touches any submission or graded folder, so an exporter
that refuses stops it there: nothing in ``autograded/`` (``results.json`` included) is deleted.
"""
from nbconvert.exporters import NotebookExporter
from nbgrader.converters.base import NbGraderException

OPT_IN = "AUTOGRADER_ALLOW_STOCK_AUTOGRADE"
MESSAGE = ("stock nbgrader autograde is switched off for this course: it runs student code unsandboxed and "
           "can be fooled. Grade with the trusted grader instead: python -m autograder grade ASSIGNMENT "
           f"[--student ID]. To run stock nbgrader anyway (trusted code only), set {OPT_IN}=1.")


class RefuseStockAutograde(NotebookExporter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log.error(MESSAGE)
        raise NbGraderException(MESSAGE)
