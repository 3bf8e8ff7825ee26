"""Similarity review: renamed copies are found (with the shared code as evidence), the stub everyone was given
and unrelated code are not, and a course's graded submissions are compared with each other, the solution and
the library's source."""
import inspect
import json
from pathlib import Path

import nbformat
import reslab.models

from autograder.course import Course
from autograder.report import write_report
from autograder.similarity import compare, similar_submissions, solution_ids

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "a06_scaling"
BLOCK = '''
class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.conv2(out) + x)
'''
OTHER = '''
def forward(self, inp):
    total = 0
    for index, layer in enumerate(self.layers):
        total = total + layer(inp) * 0.5 ** index
    return total.sum(dim=1)
'''


def test_renamed_copy_is_found_with_its_code_and_unrelated_code_is_not():
    renamed = BLOCK.replace("out", "hidden").replace("channels", "width")
    pairs = compare({"ann": BLOCK, "bob": renamed, "cat": OTHER})
    assert [(p.a, p.b) for p in pairs] == [("ann", "bob")]
    assert pairs[0].share_a == pairs[0].share_b == 1.0
    assert "self.conv2 = nn.Conv2d(channels, channels" in "\n".join(pairs[0].snippets)


def test_code_everyone_was_given_does_not_count():
    given = BLOCK
    pairs = compare({"ann": given + OTHER, "bob": given + "x = 1\n"}, boilerplate=given)
    assert pairs == []
    assert compare({"ann": given + OTHER, "bob": given + "x = 1\n"})  # without the stub they match


def _course(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(REPO / 'autograder' / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(tmp_path)!r}\n")
    (tmp_path / "solutions").symlink_to(REPO / "solutions")
    (tmp_path / "exercises").symlink_to(REPO / "exercises")
    return Course(tmp_path)


def test_course_submissions_against_each_other_the_solution_and_the_library(tmp_path):
    course = _course(tmp_path)
    source = nbformat.read(REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    stub = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    ids = solution_ids(source)
    assert len(ids) == 3
    added = {"dan": OTHER * 3, "eve": inspect.getsource(reslab.models.BasicBlock)}  # their own; the library's
    for student, notebook in [("ann", source), ("cat", stub), ("dan", stub), ("eve", stub)]:
        nb = nbformat.from_dict(notebook)
        for cell in nb.cells:
            if student in added and cell.metadata.get("nbgrader", {}).get("grade_id") in ids:
                cell.source += added[student]
                break
        folder = tmp_path / "autograded" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    pairs = similar_submissions(course, ASSIGNMENT)
    found = {(p.a, p.b): p for p in pairs}
    assert found[("ann", "solution")].share_a == 1.0
    assert "self.scale = scale" in "\n".join(found[("ann", "solution")].snippets)
    assert found[("eve", "library:reslab/models.py")].share_a > 0.9
    assert "BasicBlock(nn.Module)" in found[("eve", "library:reslab/models.py")].snippets[0]
    assert not any("cat" in (p.a, p.b) or "dan" in (p.a, p.b) for p in pairs)
    assert {(p.a, p.b) for p in pairs} == {("ann", "solution"), ("eve", "library:reslab/models.py")}  # the stub is not evidence
    assert pairs == sorted(pairs, key=lambda p: -p.share)
    for student in ("ann", "cat", "dan", "eve"):  # what the grader writes beside each graded notebook
        (tmp_path / "autograded" / student / ASSIGNMENT / "results.json").write_text(json.dumps(
            {"score": 1.0, "max_score": 1.0, "tests": [{"name": "p", "score": 1.0, "max_score": 1.0,
                                                        "status": "passed", "output": ""}],
             "extra_data": {"student": student, "assignment": ASSIGNMENT, "notebook": ASSIGNMENT, "notes": [],
                            "graded": True}}))
    page = write_report(course, ASSIGNMENT).read_text()
    section = page[page.index("<h2>Similar submissions</h2>"):]
    assert "<td>ann</td><td>solution</td><td>100%</td>" in section and "self.scale = scale" in section
    assert "<td>cat</td>" not in section and "never a score" in section
