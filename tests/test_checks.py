"""The registry of checks, in-process: the contract the trusted grader relies on, the notebooks it is wired
to, and every solution, release stub, classic mistake and valid alternative of tests/exercise_variants run
with stock-nbgrader semantics (test cells with their visible and hidden checks, no kernel)."""
import io
import json
import math
import re
import warnings

import numpy as np
import pytest
import torch

from reslab import checks, models
from reslab.reference import load
from exercise_variants import grade_id, read, run_in_process, solution_sources, submissions

ASSIGNMENTS = checks.ASSIGNMENTS
CHECKS = [(c.assignment, c.name) for a in ASSIGNMENTS for c in checks.checks_for(a)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are tiny: one thread is faster than several, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def solved():
    """The globals of every solved notebook, its setup and solution cells run."""
    return {a: run_in_process(a, solution_sources(a), tests=False)[0] for a in ASSIGNMENTS}


# --- the registry and the notebooks agree --------------------------------------------------------------------

def test_registry_lists_seven_assignments_of_at_least_three_parts():
    assert ASSIGNMENTS == ["a01_cnn_basics", "a02_gradients", "a03_nested", "a04_identity_add",
                           "a05_projected_add", "a06_scaling", "a07_resnet"]
    for assignment in ASSIGNMENTS:
        names = [c.name for c in checks.checks_for(assignment)]
        assert len(names) >= 3 and len(set(names)) == len(names)
        assert all(checks.get(assignment, n).assignment == assignment for n in names)
    with pytest.raises(ValueError, match="unknown assignment 'a99'.*a01_cnn_basics"):
        checks.checks_for("a99")
    with pytest.raises(ValueError, match="no check 'nope' in 'a04_identity_add'.*basic_block"):
        checks.get("a04_identity_add", "nope")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_test_cells_are_the_checks(assignment):
    """One autograded test cell per check (grade_id = name, same points), calling the check with seed 0
    visibly and with a fixed other seed between the hidden-test markers; its solution cell is name_solution."""
    cells = read("solutions", assignment).cells
    graded = {grade_id(c): c for c in cells if c.metadata.get("nbgrader", {}).get("grade")}
    solutions = {grade_id(c) for c in cells if c.metadata.get("nbgrader", {}).get("solution")}
    registry = checks.checks_for(assignment)
    assert sorted(graded) == sorted(c.name for c in registry)
    hidden_seeds = []
    for check in registry:
        cell = graded[check.name]
        assert cell.metadata.nbgrader["points"] == check.points
        assert f"{check.name}_solution" in solutions
        visible, hidden = cell.source.split("### BEGIN HIDDEN TESTS")
        call = f'run_in_kernel("{assignment}", "{check.name}", globals(), seed='
        assert f"{call}0)" in visible
        seeds = re.findall(re.escape(call) + r"(\d+)\)", hidden.split("### END HIDDEN TESTS")[0])
        assert len(seeds) == 1 and int(seeds[0]) != 0
        hidden_seeds.append(int(seeds[0]))
    assert len(set(hidden_seeds)) == len(hidden_seeds)


@pytest.mark.parametrize("assignment,name", CHECKS)
def test_inputs_come_from_the_seed_as_plain_arrays(assignment, name):
    check = checks.get(assignment, name)
    first, again, other = (check.make_inputs(np.random.default_rng(s)) for s in (7, 7, 8))
    assert first.keys() == again.keys() and all(np.array_equal(first[k], again[k]) for k in first)
    assert any(k not in other or first[k].shape != other[k].shape or not np.array_equal(first[k], other[k])
               for k in first), "a secret seed must change the inputs"
    buffer = io.BytesIO()
    np.savez(buffer, **first)  # what the grader hands the sandbox; loading it needs no pickle
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as stored:
        assert all(np.array_equal(stored[k], first[k]) for k in first)


# --- every part: the solution passes, the probe writes what grade accepts ------------------------------------

@pytest.mark.parametrize("assignment,name", CHECKS)
def test_solution_passes_and_probe_round_trips(assignment, name, solved, tmp_path):
    check = checks.get(assignment, name)
    inputs = check.make_inputs(np.random.default_rng(12345))
    np.savez(tmp_path / "inputs.npz", **inputs)
    checks.probe(assignment, name, solved[assignment], tmp_path / "inputs.npz", tmp_path / "outputs")
    assert not (tmp_path / "outputs.error.json").exists()
    with np.load(tmp_path / "outputs", allow_pickle=False) as stored:  # the exact path, no .npz appended
        outputs = {k: stored[k] for k in stored.files}
    result = checks.grade(check, outputs, inputs)
    assert result == checks.Result(name, check.points, check.points, True, f"{check.description}: passed")


def test_run_in_kernel_reports_and_leaves_the_kernel_as_it_was(solved, capsys):
    torch.manual_seed(3)
    state = torch.get_rng_state()
    torch.set_grad_enabled(False)  # a student may have switched autograd off in an earlier cell
    try:
        result = checks.run_in_kernel("a04_identity_add", "basic_block", solved["a04_identity_add"], seed=0)
        assert not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)
    assert torch.equal(torch.get_rng_state(), state)
    assert result.passed and result.score == 3
    assert capsys.readouterr().out == "basic_block: passed (3/3 points, seed 0)\n"


# --- failures: clear, short, never our traceback, never the expected values ---------------------------------

def test_release_stub_fails_with_a_short_message(tmp_path):
    ns, _ = run_in_process("a04_identity_add", {}, tests=False)
    with pytest.raises(AssertionError, match=r"^BasicBlock against .*: not implemented yet \(a stub still raises"):
        checks.run_in_kernel("a04_identity_add", "basic_block", ns, seed=0)
    np.savez(tmp_path / "in.npz", **checks.get("a04_identity_add", "basic_block").make_inputs(np.random.default_rng(1)))
    checks.probe("a04_identity_add", "basic_block", ns, tmp_path / "in.npz", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()
    error = json.loads((tmp_path / "out.npz.error.json").read_text())["error"]
    assert "not implemented yet" in error and "Traceback" not in error and "checks.py" not in error


def test_a_crash_points_at_the_students_line(solved):
    source = '''class BasicBlock(nn.Module):
    def __init__(self, channels):
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
'''
    ns = dict(solved["a04_identity_add"])
    exec(compile(source, "/tmp/ipykernel_1/123.py", "exec"), ns)  # where ipykernel keeps a cell's code
    with pytest.raises(AssertionError) as failed:
        checks.run_in_kernel("a04_identity_add", "basic_block", ns, seed=0)
    assert str(failed.value) == ("BasicBlock against the library's identity-add block: AttributeError: cannot assign "
                                 "module before Module.__init__() call (your code, line 3)")


def test_wrong_gradients_get_a_hint_and_no_expected_values(solved):
    check = checks.get("a01_cnn_basics", "conv2d_unfold")
    inputs = check.make_inputs(np.random.default_rng(0))
    outputs = check.reference(inputs)
    outputs["stride2.grad.weight"] = outputs["stride2.grad.weight"] * 1.01
    result = checks.grade(check, outputs, inputs)
    assert not result.passed and result.score == 0 and result.max_score == 4
    assert result.message.startswith("conv2d_unfold against F.conv2d (values and gradients): stride 2: the gradient "
                                     "of weight: relative error 5.0e-03 against the reference implementation "
                                     "(tolerance 1e-07)")
    assert "look for .detach(), .data, numpy round trips or in-place operations" in result.message
    assert not re.search(r"\d\.\d{3,}", result.message), "no values of the reference in feedback"


def test_the_library_blocks_do_not_count_as_the_students(solved):
    ns = dict(solved["a04_identity_add"], BasicBlock=type("BasicBlock", (models.BasicBlock,), {}))
    with pytest.raises(AssertionError, match="`BasicBlock` comes from the reslab library: the exercise is to write"):
        checks.run_in_kernel("a04_identity_add", "basic_block", ns, seed=0)


def test_conv2d_unfold_may_not_call_torchs_convolution(solved):
    conv2d = torch.nn.functional.conv2d
    ns = dict(solved["a01_cnn_basics"], conv2d_unfold=lambda x, w, b=None, stride=1, padding=0:
              torch.nn.functional.conv2d(x, w, b, stride=stride, padding=padding))
    with pytest.raises(AssertionError, match="must not call torch's convolution: build it from F.unfold"):
        checks.run_in_kernel("a01_cnn_basics", "conv2d_unfold", ns, seed=0)
    assert torch.nn.functional.conv2d is conv2d


def test_a_students_warning_does_not_reach_stderr(solved, capfd):
    class Noisy(solved["a04_identity_add"]["BasicBlock"]):
        def forward(self, x):
            warnings.warn("a student's warning")
            return super().forward(x)

    ns = dict(solved["a04_identity_add"], BasicBlock=Noisy)
    checks.run_in_kernel("a04_identity_add", "basic_block", ns, seed=0)
    assert capfd.readouterr().err == ""  # stock nbgrader zeroes a test cell that writes to stderr


# --- validate: only plain, finite arrays of the expected shape get compared ---------------------------------

@pytest.mark.parametrize("outputs,message", [
    ([1.0], "outputs must be a dict of arrays, got list"),
    ({}, r"outputs do not have the expected entries \(missing \['out'\], unexpected \[\]\)"),
    ({"out": np.zeros(3), "x": np.zeros(1)}, r"\(missing \[\], unexpected \['x'\]\)"),
    ({"out": np.zeros(3).view(np.recarray)}, "the output must be a numpy array, got recarray"),
    ({"out": torch.zeros(3)}, "the output must be a numpy array, got Tensor"),
    ({"out": np.zeros(3, np.float32)}, "the output: dtype float32, expected float64"),
    ({"out": np.zeros(4)}, r"the output: shape \(4,\), expected \(3,\)"),
    ({"out": np.array([0.0, np.nan, 1.0])}, "the output contains NaN or infinity"),
])
def test_validate_rejects(outputs, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.validate(outputs, {"out": np.zeros(3)})


def test_rel_error_is_cs231ns():
    assert checks.rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0
    assert checks.rel_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == 0.5
    assert checks.rel_error(np.array([0.0]), np.array([1e-12])) == pytest.approx(1e-4)  # floored denominator


# --- the reference weights part ----------------------------------------------------------------------------

def test_the_resnet_check_demands_the_reference_accuracy(solved):
    check = checks.get("a07_resnet", "resnet")
    expected = check.reference(check.make_inputs(np.random.default_rng(0)))
    _, entry = load("resnet20")
    assert math.isclose(float(expected["ref.accuracy"]), entry["test_acc"]), \
        "resnet20 evaluated in float64 disagrees with the manifest's (float32) test accuracy"
    assert expected["ref.logits"].shape == (300, 10)


# --- every mistake loses its part, every valid alternative gets full marks (stock-nbgrader semantics) -------

@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_submissions_score_as_expected_in_process(assignment, capsys):
    for submission in submissions(assignment):
        _, passed = run_in_process(assignment, submission.sources)
        expected = {name: score > 0 for name, score in submission.expected.items()}
        assert passed == expected, (submission.student, submission.about)
