"""The checks, in-process: the student's side (reslab.checks) and the answer key (autograder.key) agree with
the notebooks; every case class is drawn in every run; solutions pass; every classic mistake fails its part
and is named; the stored public expected outputs are what the key computes; failures read well."""
import ast
import functools
import io
import json
import math
import re
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import key as answer_key
from autograder.key import public
from exercise_variants import grade_id, read, run_in_process, solution_sources, submissions
from reslab import checks, models
from reslab.checks import harness, stored
from reslab.reference import load

ASSIGNMENTS = checks.ASSIGNMENTS
PARTS = [(p.assignment, p.name) for a in ASSIGNMENTS for p in checks.parts_for(a)]


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


# --- the registry, the key and the notebooks agree -----------------------------------------------------------

def test_registry_lists_seven_assignments_of_at_least_three_parts():
    assert ASSIGNMENTS[:7] == ["a01_cnn_basics", "a02_gradients", "a03_nested", "a04_identity_add",
                               "a05_projected_add", "a06_scaling", "a07_resnet"]
    for assignment in ASSIGNMENTS:
        names = [p.name for p in checks.parts_for(assignment)]
        assert len(names) >= 3 and len(set(names)) == len(names)
        assert [k.name for k in answer_key.keys_for(assignment)] == names
    with pytest.raises(ValueError, match="unknown assignment 'a99'.*a01_cnn_basics"):
        checks.parts_for("a99")
    with pytest.raises(ValueError, match="no check 'nope' in 'a04_identity_add'.*basic_block"):
        checks.part("a04_identity_add", "nope")


def test_the_students_side_holds_no_answer_key():
    """Nothing the sandbox can import computes an expected output: no reference, no mistakes, no inputs
    generator in reslab.checks, and it never imports the grader's package."""
    for assignment in ASSIGNMENTS:
        for part in checks.parts_for(assignment):
            assert not hasattr(part, "reference") and not hasattr(part, "make_inputs")
    for path in Path(checks.__file__).parent.glob("*.py"):
        imported = [n.module if isinstance(n, ast.ImportFrom) else a.name for n in ast.walk(ast.parse(path.read_text()))
                    if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names]
        assert not any(str(m).startswith("autograder") for m in imported), path


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_test_cells_are_the_checks(assignment):
    """One autograded test cell per part (grade_id = name, same points), calling the check with seed 0
    visibly and with a fixed other seed between the hidden-test markers; its solution cell is name_solution."""
    cells = read("solutions", assignment).cells
    graded = {grade_id(c): c for c in cells if c.metadata.get("nbgrader", {}).get("grade")
              and not c.metadata.nbgrader.get("solution")}  # a graded solution cell is a written answer
    solutions = {grade_id(c) for c in cells if c.metadata.get("nbgrader", {}).get("solution")}
    parts = checks.parts_for(assignment)
    assert sorted(graded) == sorted(p.name for p in parts)
    hidden_seeds = []
    for part in parts:
        cell = graded[part.name]
        assert cell.metadata.nbgrader["points"] == part.points
        assert f"{part.name}_solution" in solutions
        visible, hidden = cell.source.split("### BEGIN HIDDEN TESTS")
        call = f'run_in_kernel("{assignment}", "{part.name}", globals(), seed='
        assert f"{call}0)" in visible
        seeds = re.findall(re.escape(call) + r"(\d+)\)", hidden.split("### END HIDDEN TESTS")[0])
        assert len(seeds) == 1 and int(seeds[0]) != 0
        hidden_seeds.append(int(seeds[0]))
    assert public.public_seeds(assignment) == {p.name: [0, s] for p, s in zip(parts, hidden_seeds)}
    assert len(set(hidden_seeds)) == len(hidden_seeds)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_stored_expected_outputs_are_the_keys(assignment):
    """The files the visible checks read are exactly what `python -m autograder.key write` makes now."""
    data, index = public.build(assignment)
    with np.load(io.BytesIO(data), allow_pickle=False) as fresh, np.load(stored.path(assignment)) as shipped:
        assert sorted(fresh.files) == sorted(shipped.files), "run `python -m autograder.key write`"
        for name in fresh.files:
            a, b = fresh[name], shipped[name]
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert np.array_equal(a, b) if a.dtype.kind not in "fc" else np.allclose(a, b, rtol=1e-9, atol=1e-12), name
    assert json.loads(index) == json.loads(stored.path(assignment).with_suffix(".json").read_text())


@pytest.mark.parametrize("assignment,name", PARTS)
def test_inputs_come_from_the_seed_and_cover_every_case_class(assignment, name):
    key = answer_key.key(assignment, name)
    first, again, other = (key.make_inputs(np.random.default_rng(s)) for s in (7, 7, 8))
    assert first.keys() == again.keys() and all(np.array_equal(first[k], again[k]) for k in first)
    assert any(k not in other or first[k].shape != other[k].shape or not np.array_equal(first[k], other[k])
               for k in first), "a secret seed must change the inputs"
    buffer = io.BytesIO()
    np.savez(buffer, **first)  # what the grader hands the sandbox; loading it needs no pickle
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as arrays:
        assert all(np.array_equal(arrays[k], first[k]) for k in first)
    if key.cases:
        assert set(key.cases) <= set(key.part.cases), "every case class has a name in feedback"
        for seed in range(25):
            drawn = {label: (args, x.shape) for label, args, _, x, _, _ in harness.cases(
                key.make_inputs(np.random.default_rng(seed)))}
            assert set(key.cases) <= set(drawn), (seed, sorted(drawn))
            for label, case in key.cases.items():
                assert case.holds(*drawn[label]), (seed, label, drawn[label])


# --- every part: the solution passes, the probe writes what the key accepts ----------------------------------

@pytest.mark.parametrize("assignment,name", PARTS)
def test_solution_passes_and_probe_round_trips(assignment, name, solved, tmp_path):
    """On several secret seeds: a valid solution must never lose a part to what a seed happens to draw."""
    key = answer_key.key(assignment, name)
    for seed in (12345, 1, 2, 3, 4):
        inputs = key.make_inputs(np.random.default_rng(seed))
        np.savez(tmp_path / "inputs.npz", **inputs)
        checks.probe(assignment, name, solved[assignment], tmp_path / "inputs.npz", tmp_path / "outputs")
        assert not (tmp_path / "outputs.error.json").exists()
        with np.load(tmp_path / "outputs", allow_pickle=False) as arrays:  # the exact path, no .npz appended
            outputs = {k: arrays[k] for k in arrays.files}
        result = key.grade(outputs, inputs)
        assert result == checks.Result(name, key.part.points, key.part.points, True,
                                       f"{key.part.description}: passed"), seed


@pytest.mark.parametrize("assignment,name", PARTS)
def test_every_known_mistake_fails_and_is_named(assignment, name):
    """On secret-like inputs, each mutant of the key loses the part and the diagnosis names exactly it."""
    key = answer_key.key(assignment, name)
    assert len(key.mistakes) >= 2
    inputs = key.make_inputs(np.random.default_rng(2024))
    found = key.mistake_outputs(inputs)
    for sentence, outputs in found.items():
        if isinstance(outputs, str):
            assert checks.diagnose_failure(outputs, found) == sentence, sentence
            continue
        result = checks.score(key.part, outputs, key.expected(inputs), found)
        assert not result.passed, f"the check cannot tell {sentence!r} from the solution"
        assert result.diagnosis == sentence and result.message.startswith(f"Diagnosis: your code {sentence}.\n")


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


def test_a_seed_without_stored_outputs_is_refused(solved):
    with pytest.raises(AssertionError, match=r"no expected outputs are stored for 'basic_block' with seed 5 "
                                             r"\(stored: \[0, 4402\]\)"):
        checks.run_in_kernel("a04_identity_add", "basic_block", solved["a04_identity_add"], seed=5)


# --- failures: clear, short, never our traceback, never the expected values; mistakes named -----------------

def test_release_stub_fails_with_a_short_message(tmp_path):
    ns, _ = run_in_process("a04_identity_add", {}, tests=False)
    with pytest.raises(AssertionError, match=r"^BasicBlock against .*: not implemented yet \(a stub still raises"):
        checks.run_in_kernel("a04_identity_add", "basic_block", ns, seed=0)
    inputs = answer_key.key("a04_identity_add", "basic_block").make_inputs(np.random.default_rng(1))
    np.savez(tmp_path / "in.npz", **inputs)
    checks.probe("a04_identity_add", "basic_block", ns, tmp_path / "in.npz", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()
    error = json.loads((tmp_path / "out.npz.error.json").read_text())["error"]
    assert "not implemented yet" in error and "Traceback" not in error and "checks/" not in error


def test_a_crash_points_at_the_students_line_and_names_the_mistake(solved):
    source = '''class BasicBlock(nn.Module):
    def __init__(self, channels):
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
'''
    ns = dict(solved["a04_identity_add"])
    exec(compile(source, "/tmp/ipykernel_1/123.py", "exec"), ns)  # where ipykernel keeps a cell's code
    with pytest.raises(AssertionError) as failed:
        checks.run_in_kernel("a04_identity_add", "basic_block", ns, seed=0)
    assert re.fullmatch(
        r"Diagnosis: your code does not call super\(\).__init__\(\) before creating its layers.\n"
        r"BasicBlock against the library's identity-add block: constructing BasicBlock\(channels=\d+\) failed at "
        r"line 3 of your cell( \(`self.conv1 = nn.Conv2d\(channels, channels, 3, padding=1, bias=False\)`\))? in "
        r"BasicBlock.__init__: "
        r"AttributeError: cannot assign module before Module.__init__\(\) call \(hint: call super\(\).__init__\(\) "
        r"first in __init__\)",
        str(failed.value)), str(failed.value)


def test_a_forward_that_fails_says_on_which_input(solved):
    ns = dict(solved["a04_identity_add"])
    exec("class PlainBlock(PlainBlock):\n    def forward(self, x):\n        return x.view(-1, 3) @ x\n", ns)
    with pytest.raises(AssertionError, match=r"PlainBlock\(channels=\d+\): your forward, on an input of shape "
                                             r"\(\d, \d+, \d+, \d+\), failed at line 3 of your cell"):
        checks.run_in_kernel("a04_identity_add", "plain_block", ns, seed=0)


def test_a_visible_check_names_a_known_mistake(solved):
    ns = dict(solved["a04_identity_add"])
    exec("class BasicBlock(BasicBlock):\n    def forward(self, x):\n"
         "        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))\n        return F.relu(out) + x\n", ns)
    with pytest.raises(AssertionError, match="^Diagnosis: your code applies the ReLU before adding the shortcut\\.\n"):
        checks.run_in_kernel("a04_identity_add", "basic_block", ns, seed=0)


SCALED_FORWARD = "class ScaledBlock(ScaledBlock):\n    def forward(self, x):\n        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))\n"


@pytest.mark.parametrize("scaled,named", [
    ("torch.full((out.shape[1], 1, 1), self.scale) * out", "without the input's dtype and device"),
    ("torch.full((out.shape[1], 1, 1), self.scale, dtype=x.dtype) * out", "without the input's device"),
    ("torch.full((out.shape[1], 1, 1), self.scale, device=x.device) * out", "without the input's dtype"),
    ("(self.scale * out).double()", "without the input's dtype"),
    ("self.scale * out.cpu()", "without the input's device"),
    ("torch.full_like(out, self.scale) * out", ""),
    ("out.new_full((out.shape[1], 1, 1), self.scale) * out", ""),
    ("torch.tensor(self.scale) * out", ""),  # a 0-d tensor follows the other operand, on a GPU too
    ("torch.tensor(self.scale, device=x.device).item() * out", ""),  # meta has no data for .item(): no verdict
])
def test_tensors_made_without_the_inputs_dtype_or_device_are_caught_and_named(solved, scaled, named):
    """A float64 check alone passes a block that makes its tensors in the default dtype on the CPU: the check
    also runs it in float32 (torch's default dtype switched to float64, so such a tensor shows) and on the
    meta device; a forward that needs data on meta (``.item()``) gets no verdict rather than a wrong one."""
    ns = dict(solved["a06_scaling"])
    exec(SCALED_FORWARD + f"        return F.relu(x + {scaled})\n", ns)
    key = answer_key.key("a06_scaling", "scaled_block")
    inputs = key.make_inputs(np.random.default_rng(7))
    outputs = checks.run(key.part.description, key.part.run_student, ns, inputs)
    result = key.grade(outputs, inputs)
    assert result.passed == (not named), result.message
    if named:
        assert result.message.startswith(f"Diagnosis: your code creates a tensor in forward {named} (or keeps one "
                                          "that is not a registered parameter or buffer): make it with x.new_zeros"), \
            result.message
        assert torch.get_default_dtype() == torch.float32


LAYERSCALE = ("def rescale(g, out):\n    return g[:, None] * out\n\n\n"
              "class LayerScaleBlock(LayerScaleBlock):\n    def forward(self, x):\n"
              "        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))\n{}")


@pytest.mark.parametrize("forward,named", [
    ("        g = self.gamma[:, None]\n        return F.relu(x + g * out)\n", True),  # the mistake, on other lines
    ("        return F.relu(x + rescale(self.gamma, out))\n", False),  # the same error, raised in another function
    ("        return F.relu(x + (self.gamma[:, None] + out))\n", False),  # the same error, raised by an addition
])
def test_a_crash_is_matched_by_where_it_happened_not_only_by_its_message(solved, forward, named):
    """A crash names a known mistake only if it fails in the same function, in the same torch call on the
    same shapes, with the same error as the mistake's code; the line may differ."""
    sentence = "broadcasts gamma along the height axis (gamma[:, None]) instead of the channels"
    key = answer_key.key("a06_scaling", "layerscale_block")
    inputs = key.make_inputs(np.random.default_rng(2024))
    found = key.mistake_outputs(inputs)
    error = r": RuntimeError: The size of tensor a \(\d+\) must match the size of tensor b \(\d+\) at non-singleton"
    assert re.search(r"failed in LayerScaleBlock.forward, calling torch's mul on shapes \(\d+, 1\), "
                     r"\(\d, \d+, \d+, \d+\)" + error, found[sentence]), found[sentence]
    ns = dict(solved["a06_scaling"])
    exec(LAYERSCALE.format(forward), ns)
    with pytest.raises(checks.CheckFailed) as failed:
        checks.run(key.part.description, key.part.run_student, ns, inputs)
    message = str(failed.value)
    assert re.search(r"failed at line \d+ of your cell.*" + error, message), message
    assert message.split(": RuntimeError")[1] == found[sentence].split(": RuntimeError")[1]  # the same error
    assert checks.diagnose_failure(message, found) == (sentence if named else ""), message


def test_wrong_gradients_get_a_hint_and_no_expected_values():
    key = answer_key.key("a01_cnn_basics", "conv2d_unfold")
    inputs = key.make_inputs(np.random.default_rng(0))
    outputs = key.expected(inputs)
    outputs["stride2.grad.weight"] = outputs["stride2.grad.weight"] * 1.01
    result = key.grade(outputs, inputs)
    assert not result.passed and result.score == 0 and result.max_score == 4
    hint, _, check = result.message.partition("\n")  # the diagnosis first, then what the check measured
    assert hint.startswith("Diagnosis: your code gets the forward pass right but not the gradients") and \
        hint.endswith("look for .detach(), .data, numpy round trips or in-place operations."), hint
    assert check.startswith("conv2d_unfold against F.conv2d (values and gradients): stride 2, unpadded, fewer "
                            "output channels: the gradient of weight: relative error 5.0e-03 against the "
                            "reference implementation (tolerance 1e-07)"), check
    assert not re.search(r"\d\.\d{3,}", result.message), "no values of the reference in feedback"


@pytest.mark.parametrize("disguise", [
    lambda lib: type("BasicBlock", (lib,), {}),
    lambda lib: functools.partial(lib, shortcut=torch.nn.Identity()),
    lambda lib: type("BasicBlock", (torch.nn.Module,), {"__new__": lambda cls, channels: lib(channels, channels,
                                                                             shortcut=torch.nn.Identity())}),
    lambda lib: types.FunctionType(models.build.__code__, globals()),
])
def test_the_library_does_not_count_as_the_students_however_wrapped(solved, disguise):
    ns = dict(solved["a04_identity_add"], BasicBlock=disguise(models.BasicBlock))
    with pytest.raises(AssertionError, match="comes from the reslab library|returned an object of the reslab library"):
        checks.run_in_kernel("a04_identity_add", "basic_block", ns, seed=0)


def test_conv2d_unfold_may_not_call_torchs_convolution_even_by_an_alias(solved):
    from torch.nn.functional import conv2d as hidden
    ns = dict(solved["a01_cnn_basics"], conv2d_unfold=lambda x, w, b=None, stride=1, padding=0:
              hidden(x, w, b, stride=stride, padding=padding))
    with pytest.raises(AssertionError, match="must not call torch's convolution: build it from F.unfold"):
        checks.run_in_kernel("a01_cnn_basics", "conv2d_unfold", ns, seed=0)


def test_kaiming_may_not_use_torch_nn_init_even_by_an_alias(solved):
    from torch.nn.init import kaiming_normal_ as fill
    ns = dict(solved["a02_gradients"], kaiming_normal_=lambda w: fill(w, nonlinearity="relu"))
    with pytest.raises(AssertionError, match="must not call torch.nn.init"):
        checks.run_in_kernel("a02_gradients", "kaiming_normal", ns, seed=0)


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

def test_the_resnet_check_demands_the_reference_accuracy():
    key = answer_key.key("a07_resnet", "resnet")
    expected = key.expected(key.make_inputs(np.random.default_rng(0)))
    _, entry = load("resnet20")
    assert math.isclose(float(expected["ref.accuracy"]), entry["test_acc"]), \
        "resnet20 evaluated in float64 disagrees with the manifest's (float32) test accuracy"
    assert expected["ref.logits"].shape == (300, 10)


# --- every mistake loses its part, every valid alternative gets full marks (stock-nbgrader semantics) -------

# the wrong variants whose visible check (seed 0, the stored mistakes) names the mistake, not only a generic hint;
# benchmarks/bench_diagnosis.py counts the hidden checks' diagnoses per part
NAMED = {"a01_cnn_basics": 15, "a02_gradients": 21, "a03_nested": 18, "a04_identity_add": 8,
         "a05_projected_add": 13, "a06_scaling": 10, "a07_resnet": 20, "a08_beyond": 17}
GENERIC = ("Diagnosis: your code gets the forward pass right but not the gradients",
           "Diagnosis: your code is right in training mode but not in eval mode")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_submissions_score_as_expected_in_process(assignment):
    """Every valid variant passes and every wrong one fails (the visible checks, with the public seed's stored
    mistakes, as in the student's kernel), and at least NAMED of the wrong ones are named."""
    named = 0
    for submission in submissions(assignment):
        _, failed = run_in_process(assignment, submission.sources)
        expected = {name: score > 0 for name, score in submission.expected.items()}
        assert {name: not message for name, message in failed.items()} == expected, (submission.student, submission.about)
        if submission.student.startswith("mistakes"):
            named += sum("Diagnosis: your code " in failed[name] and not failed[name].startswith(GENERIC)
                         for name in submission.about)
    assert named >= NAMED[assignment], named
