"""The course runs, and its text says only what its experiments measure.

Every chapter is executed top to bottom in a fresh kernel, as a student would run it. The orderings the
chapters state are then asserted by calling the same ``reslab.experiments`` functions on the embedded digits
(quick, narrow runs), and on the shipped reference runs the chapters load by default.
"""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before reslab.plots imports pyplot: tests draw off-screen

import matplotlib.pyplot as plt
import nbformat
import pytest
import torch
from jupyter_cache import get_cache
from nbclient import NotebookClient

from benchmarks import bench_course
from reslab import NetConfig, build, claims, count_parameters, experiments as ex, plots, reference
from reslab.data import digits
from reslab.experiments import Profile
from reslab.train import evaluate
from website.build import keep_execution

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
SITE_CACHE = ROOT / "_build" / "site"  # python -m website build's default cache, which tests/test_site.py uses
CHAPTERS = sorted(COURSE.glob("0*.ipynb"))
TIMINGS = json.loads(bench_course.TIMINGS.read_text()) if bench_course.TIMINGS.is_file() else {}
EXERCISES = {"01": "a01_cnn_basics", "02": "a02_gradients", "03": "a03_nested", "04": "a04_identity_add",
             "05": "a05_projected_add", "06": "a06_scaling", "07": "a07_resnet", "08": "a08_beyond"}
WIDGETS = {"02": ["gradient_flow_explorer()"],
           "04": ["gradient_flow_explorer(residual=True", "block_deletion()"],
           "06": ["gradient_flow_explorer(", "train_few_steps("]}
DEEP = NetConfig(stages=(5, 5, 5))  # the chapters' 32-layer nets
CHECKED_CHAPTERS = ("01", "02", "03", "04", "05", "06", "07", "08")  # chapters whose measured sentences are all reslab.claims calls


def chapter(number: str) -> nbformat.NotebookNode:
    (path,) = [p for p in CHAPTERS if p.name.startswith(number)]
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def batch(data):
    return data.train.x[:256], data.train.y[:256]


# --- the notebooks -----------------------------------------------------------------------------------------

def test_every_chapter_has_its_assignment():
    assert [p.name[:2] for p in CHAPTERS] == list(EXERCISES)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_complete_and_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    number = path.name[:2]
    opening, closing = nb.cells[0].source, nb.cells[-1].source
    for part in ("What you will learn", "Prerequisites", "Time"):
        assert part in opening, f"{path.name}: the opening cell lacks {part!r}"
    assert "## Summary" in closing and "## References" in closing, f"{path.name}: no summary and references"
    assert re.search(r"\b(19|20)\d\d\b", closing.split("## References")[1]), f"{path.name}: references lack years"
    exercise = f"exercises/{EXERCISES[number]}/{EXERCISES[number]}.ipynb"
    assert exercise in markdown(nb) and (ROOT / exercise).is_file(), f"{path.name}: no link to {exercise}"
    code = "\n".join(c.source for c in code_cells(nb))
    assert "plots." in code, f"{path.name}: no plotted experiment"
    if "reference_runs(" in code:
        assert "RECOMPUTE = False" in code and "recompute=RECOMPUTE" in code, f"{path.name}: no RECOMPUTE flag"
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: stored with outputs"
    last_lines = [c.source.strip().splitlines()[-1] for c in code_cells(nb) if c.source.strip()]
    for call in WIDGETS.get(number, []):
        assert any(line.startswith(call) for line in last_lines), f"{path.name}: {call} is not a cell's last line"


def run(path: Path) -> nbformat.NotebookNode:
    """The notebook executed in a fresh kernel in its folder (no timing metadata: the site's cache key reads
    cell metadata)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def test_a_kept_execution_is_what_the_site_build_finds_for_the_unexecuted_notebook(tmp_path):
    source = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter"),
                                                   nbformat.v4.new_code_cell("print(6 * 7)")],
                                            metadata=chapter("01").metadata), source)
    keep_execution(run(source), source, tmp_path)
    cache = get_cache(str(tmp_path / "jupyter_cache"))
    _, merged = cache.merge_match_into_notebook(nbformat.read(source, as_version=4))  # what myst-nb does
    assert merged.cells[1].outputs[0]["text"] == "42\n"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes(path):
    """Top to bottom in a fresh kernel, like a student; every figure renders inline, widgets display."""
    nb = run(path)
    keep_execution(nb, path, SITE_CACHE)  # the site build in this session shows these outputs, not a second run
    outputs = [o for c in code_cells(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name}: no inline figure"
    widget_views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widget_views) >= len(WIDGETS.get(path.name[:2], []))
    recorded = TIMINGS[path.stem]["output_words"]  # the printed results the Time sentence counts
    checked = "".join(o.get("text", "") for o in outputs).count(claims.MARK)
    sites = sum(c.source.count(call) for c in code_cells(nb) for call in ("claim(", "claim_less(", "claim_law(", "compare("))
    assert checked >= sites, f"{path.name}: {sites} claims in the code, only {checked} checked in the output"
    if path.name[:2] in CHECKED_CHAPTERS:
        assert checked >= 3, f"{path.name}: its quantitative sentences are not checked claims"
    assert abs(bench_course.output_words(nb) - recorded) <= 0.2 * recorded, (bench_course.output_words(nb), recorded)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_states_the_time_its_measured_words_and_run_give(path):
    """The Time sentence is computed (``benchmarks/bench_course.py --write``): the words of the stored text and
    code, the printed results and run time of the recorded run; a chapter edited since must be re-measured."""
    nb = nbformat.read(path, as_version=4)
    timing = TIMINGS[path.stem]
    counts = bench_course.word_counts(nb)
    assert counts == {k: timing.get(k) for k in counts}, \
        f"{path.name} changed since its time was measured: run python benchmarks/bench_course.py --recount"
    assert bench_course.time_sentence(timing) in nb.cells[0].source


def test_prose_maths_and_code_are_counted_apart_and_read_at_their_rates():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Two words $a + b$ and $$\\frac{x}{y}$$"),
                                         nbformat.v4.new_code_cell("print(x)")])
    assert bench_course.word_counts(nb) == {"prose_words": 3, "maths_words": 5, "code_words": 2}
    rates = bench_course.RATES
    one_minute_each = {"prose_words": rates["prose"] // 2, "output_words": rates["prose"] // 2,
                       "maths_words": rates["maths"], "code_words": rates["code"]}
    assert bench_course.reading_minutes(one_minute_each) == 3


def test_the_readme_states_the_recorded_course_time():
    readme = " ".join((ROOT / "README.md").read_text().split())
    seconds = {stem: t["run_seconds"] for stem, t in TIMINGS.items()}
    longest = max(seconds, key=seconds.get)
    assert set(seconds) == {p.stem for p in CHAPTERS}
    assert (f"the whole course: {sum(seconds.values()):.1f} s for the eight chapters, the longest chapter "
            f"{int(longest[:2])} at {seconds[longest]:.1f} s") in readme


# --- chapter 2: gradients and degradation ------------------------------------------------------------------

@pytest.fixture(scope="module")
def grids(batch):
    return {norm: ex.profiles(ex.variants(replace(DEEP, residual=False, norm=norm),
                                          activation=("sigmoid", "tanh", "relu"),
                                          init=("naive", "xavier", "kaiming")), *batch)
            for norm in (False, True)}


def conv_ratio(profile: Profile) -> float:
    """First conv over last conv, as the chapter's table prints it (the classifier left out)."""
    return Profile.ratio(profile.weight_grad[:-1])


def test_without_batchnorm_sigmoid_gradients_vanish_and_naive_init_starves(grids):
    no_bn = grids[False]
    for init in ("naive", "xavier", "kaiming"):
        assert conv_ratio(no_bn[f"sigmoid/{init}"]) < 1e-2
    for activation in ("sigmoid", "tanh", "relu"):
        assert no_bn[f"{activation}/naive"].weight_grad[0] < 1e-20  # underflows: no gradient to speak of
    for name in ("tanh/xavier", "tanh/kaiming", "relu/xavier", "relu/kaiming"):
        assert 0.1 < conv_ratio(no_bn[name]) < 10, name


def test_batchnorm_feeds_every_first_layer_but_does_not_flatten_the_backward_pass(grids):
    with_bn = grids[True]
    assert all(p.weight_grad[0] > 0 for p in with_bn.values())
    for init in ("naive", "xavier", "kaiming"):
        assert conv_ratio(with_bn[f"sigmoid/{init}"]) < 1
        assert conv_ratio(with_bn[f"tanh/{init}"]) > 1 and conv_ratio(with_bn[f"relu/{init}"]) > 1


def test_sigmoid_plain_gradients_fall_100x_residual_gradients_do_not(batch):
    flow = ex.profiles({"plain sigmoid": replace(DEEP, residual=False, activation="sigmoid", norm=False),
                        "plain relu": replace(DEEP, residual=False, norm=False),
                        "residual sigmoid": replace(DEEP, block="preact", activation="sigmoid", norm=False)}, *batch)
    plain, relu, residual = flow.values()
    assert conv_ratio(plain) < 1e-2 and Profile.ratio(plain.stream_grad) < 1e-2
    assert conv_ratio(residual) > 1e-2 and Profile.ratio(residual.stream_grad) > 1e-2
    assert Profile.ratio(plain.stream_grad) < Profile.ratio(relu.stream_grad) < 1


@pytest.fixture(scope="module")
def depth_runs(data):
    return ex.train_runs(ex.depth_configs([8, 32], NetConfig(widths=ex.NARROW)), ex.QUICK, data)


def test_deeper_plain_nets_train_worse_while_residual_nets_do_not(depth_runs):
    loss = {name: run.final["train_loss"] for name, run in depth_runs.items()}
    assert loss["plain32"] > 2 * loss["plain8"], loss
    assert loss["resnet32"] < 2 * loss["resnet8"], loss
    assert loss["resnet32"] < loss["plain32"] / 3, loss


def test_reference_runs_show_degradation():
    models = reference.manifest()["models"]
    loss = {name: entry["train_loss"] for name, entry in models.items()}
    plain = [loss[f"plain{d}"] for d in (8, 20, 32, 56)]
    plain_error = [1 - models[f"plain{d}"]["test_acc"] for d in (8, 20, 32, 56)]
    assert plain_error == sorted(plain_error), plain_error
    residual = [loss[f"resnet{d}"] for d in (8, 20, 32, 56)]
    assert plain == sorted(plain) and plain[-1] > 10 * plain[0], plain
    assert all(r < p for r, p in zip(residual[1:], plain[1:])), (residual, plain)
    assert max(residual) < 3 * min(residual), residual


# --- chapter 3: function-preserving deepening --------------------------------------------------------------

def test_deepening_leaves_every_residual_reference_exactly_as_it_was_and_breaks_every_plain_one(data):
    torch.manual_seed(0)
    for name, runs in ex.seed_runs(["resnet8", "plain8"]).items():
        assert len(runs) == len(reference.SEEDS), name  # the chapter's claims rest on every seed
        for run in runs:
            change = ex.max_output_change(run.model, ex.deepen(run.model), data.test.x)
            assert change == 0.0 if name == "resnet8" else change > 1, (name, change)


def test_deepening_continues_from_the_shallow_net_and_measures_epoch_0_like_the_others(data):
    shallow = {name: run.model for name, run in ex.reference_runs(["resnet8", "plain8"]).items()}
    result = ex.deepening(shallow, data=data)
    assert result.output_change["resnet8"] == 0.0
    assert result.accuracy_after["resnet8"] == result.accuracy_before["resnet8"]
    assert result.output_change["plain8"] > 1 and result.accuracy_after["plain8"] < 0.2
    assert result.start_loss["resnet8 deepened"] == result.start_loss["resnet8 continued"]
    assert result.start_loss["plain8 deepened"] > 10 * result.start_loss["plain8 continued"]
    for name, run in result.runs.items():  # one measurement from epoch 0 on: eval mode, whole training split
        assert len(run.eval_train_loss) == ex.CONTINUE.epochs + 1 and run.eval_train_loss[0] == result.start_loss[name]
        assert run.eval_train_loss[-1] == pytest.approx(evaluate(run.model, data.train)[0], rel=1e-6), name
    loss = {name: run.eval_train_loss[-1] for name, run in result.runs.items()}
    assert loss["plain8 deepened"] > 5 * loss["plain8 continued"], loss
    deepened = result.runs["resnet8 deepened"].model
    new_gammas = torch.cat([layer[1].last_norm().weight.detach() for layer in deepened.layers()])
    assert 0 < new_gammas.abs().mean() < 0.1  # moved off 0, by little (the chapter's claim)


def test_deepen_keeps_every_old_weight_and_rejects_what_it_cannot_do():
    shallow = reference.load("resnet8")[0]
    deeper = ex.deepen(shallow, extra=2)
    assert deeper.config.stages == (3, 3, 3)
    for key, value in shallow.state_dict().items():
        assert torch.equal(deeper.state_dict()[key], value), key
    with pytest.raises(ValueError, match="norm=True"):
        ex.deepen(build(NetConfig(stages=(1, 1, 1), norm=False)))
    with pytest.raises(ValueError, match="positive"):
        ex.deepen(shallow, extra=0)
    with pytest.raises(ValueError, match="plain_identity"):
        ex.deepen(shallow, plain_identity=True)


def test_identity_plain_blocks_keep_the_function_in_eval_mode_and_lose_it_in_training_mode(data):
    plain = reference.load("plain8")[0]
    deeper = ex.deepen(plain, extra=2, plain_identity=True)
    assert ex.max_output_change(plain, deeper, data.test.x) == 0.0
    with torch.no_grad():  # in training mode BatchNorm standardises with the batch's statistics
        change = (plain.train()(data.test.x) - deeper.train()(data.test.x)).abs().max().item()
    assert change > 0.1, change
    result = ex.deepening({"plain8": plain.eval()}, replace(ex.CONTINUE, epochs=1), data, plain_identity=True)
    assert list(result.runs) == ["plain8 continued", "plain8 deepened", "plain8 identity deepened"]
    assert result.output_change["plain8 identity"] == 0.0 and result.output_change["plain8"] > 1
    assert result.start_loss["plain8 identity deepened"] == result.start_loss["plain8 continued"]


# --- chapter 4: identity-add -------------------------------------------------------------------------------

def test_an_activation_after_the_add_blocks_the_shortcut_a_preactivation_block_does_not(batch):
    flow = ex.profiles({"post": replace(DEEP, activation="sigmoid", norm=False),
                        "pre": replace(DEEP, activation="sigmoid", norm=False, block="preact"),
                        "zeroed": replace(DEEP, block="preact", zero_init_residual=True)}, *batch)
    assert Profile.ratio(flow["post"].stream_grad) < 1e-2 < Profile.ratio(flow["pre"].stream_grad)
    zeroed = flow["zeroed"].stream_grad  # input, then 15 blocks: the gradient is constant within each stage
    for stage in (zeroed[1:6], zeroed[6:11], zeroed[11:16]):
        assert max(stage) - min(stage) <= 1e-6 * max(stage), stage


def test_deleting_one_block_ruins_a_plain_net_but_not_a_residual_one(data):
    runs = ex.reference_runs(["resnet20", "plain20", "resnet56"])
    deletion = {name: ex.block_deletion(run.model, data.test) for name, run in runs.items()}
    after = {name: [acc for block, acc in result.items() if block != "none"] for name, result in deletion.items()}
    assert deletion["plain20"]["none"] > 0.9 and max(after["plain20"]) < 0.25
    mean = {name: sum(values) / len(values) for name, values in after.items()}
    assert mean["resnet20"] > mean["plain20"] + 0.3
    resnet56 = deletion["resnet56"]
    cheap = [acc for acc in after["resnet56"] if resnet56["none"] - acc < 0.1]
    assert len(cheap) > len(after["resnet56"]) / 2
    worst = sorted((acc, block) for block, acc in resnet56.items() if block != "none")[:3]
    assert sum(block.endswith(".0") for _, block in worst) >= 2, worst


def test_block_deletion_keeps_the_shortcut_and_refuses_shape_changing_plain_blocks(data):
    torch.manual_seed(0)
    plain, residual = build(NetConfig(residual=False)), build(NetConfig())
    assert "layer2.0" not in ex.deletable_blocks(plain) and "layer2.1" in ex.deletable_blocks(plain)
    assert ex.deletable_blocks(residual) == ex.block_names(residual)
    with pytest.raises(ValueError, match="cannot be deleted"):
        ex.delete_block(plain, "layer2.0")
    pruned = ex.delete_block(residual, "layer2.0")
    assert pruned.layer2[0].shortcut is not None and float(pruned.layer2[0].scale.weight) == 0.0
    assert isinstance(ex.delete_block(plain, "layer2.1").layer2[1], torch.nn.Identity)
    assert isinstance(residual.layer2[0].scale, torch.nn.Identity)  # a copy was pruned, not the original


# --- chapter 5: shortcut options ---------------------------------------------------------------------------

def test_parameter_counts_in_chapter_5_are_the_computed_ones():
    counts20, counts56 = ex.shortcut_parameters(20), ex.shortcut_parameters(56)
    computed = {*counts20.values(), *counts56.values(), counts20["B"] - counts20["A"], counts20["C"] - counts20["A"]}
    stated = {int(n.replace(",", "")) for n in re.findall(r"\b\d{1,3}(?:,\d{3})+\b",
                                                            bench_course.TIME_SENTENCE.sub("", markdown(chapter("05"))))}
    assert stated <= computed, f"numbers in the text that no count gives: {stated - computed}"  # the cells claim them
    assert counts20["A"] < counts20["B"] < counts20["C"]
    assert counts56["B"] - counts56["A"] == counts20["B"] - counts20["A"]  # B's cost is fixed, C's grows
    assert counts56["C"] - counts56["A"] > counts20["C"] - counts20["A"]
    assert counts20["A"] == count_parameters(build(NetConfig(residual=False)))  # option A adds nothing


def test_reference_shortcut_options_end_within_a_few_points_on_every_seed():
    accuracy = ex.finals(ex.seed_runs(["resnet20-A", "resnet20", "resnet20-C"]), "test_acc")
    assert {len(seeds) for seeds in accuracy.values()} == {len(reference.SEEDS)}
    for per_seed in zip(*accuracy.values()):
        assert max(per_seed) - min(per_seed) < 0.05, accuracy


# --- chapter 6: scale operations ---------------------------------------------------------------------------

def test_a_scaled_shortcut_multiplies_the_signal_by_lambda_per_block(batch):
    for lam in (0.5, 0.8, 1.25):
        net = NetConfig(stages=(5, 5, 5), widths=ex.NARROW, shortcut="A", zero_init_residual=True,
                        shortcut_scale=lam)
        profile = ex.profiles({"net": net}, *batch)["net"]
        std, grad = profile.block_std, profile.stream_grad[1:]  # block outputs, input side first
        for a, b in zip(std[:4], std[1:5]):  # within the first stage
            assert b / a == pytest.approx(lam, rel=1e-4)
        for a, b in zip(grad[:4], grad[1:5]):  # the gradient on the way back
            assert a / b == pytest.approx(lam, rel=1e-3)


@pytest.fixture(scope="module")
def scale_runs(data, batch):
    return ex.train_runs(ex.scale_configs(NetConfig(stages=(5, 5, 5), widths=ex.NARROW)), ex.QUICK, data,
                         probe_batch=batch)


BRANCH_SCALINGS = ("branch x0.2", "ReZero (a=0)", "LayerScale (1e-2)", "zero-init gamma")


def test_scaling_the_shortcut_hurts_scaling_the_branch_keeps_a_deep_net_trainable(scale_runs, depth_runs):
    loss = {name: run.final["train_loss"] for name, run in scale_runs.items()}
    assert loss["shortcut x0.5"] > 3 * loss["identity"], loss
    for name in BRANCH_SCALINGS:  # the chapter's claim: the highest loss, at least 1.25 times the next highest
        assert loss[name] < loss["shortcut x0.5"] / 1.25, (name, loss)
    for name in ("ReZero (a=0)", "LayerScale (1e-2)", "zero-init gamma"):  # branches start at (nearly) zero:
        assert loss[name] > loss["identity"], (name, loss)  # slower in the first epochs, as the text says
    for name in ("ReZero (a=0)", "zero-init gamma"):  # zero-initialised branch scales keep it trainable
        assert scale_runs[name].final["train_acc"] > 0.9
        assert loss[name] < depth_runs["plain32"].final["train_loss"] / 2  # "they all train": far below plain32


def test_branch_scalings_keep_the_most_uniform_gradient(scale_runs):
    for epoch in (0, -1):
        ratio = {name: Profile.ratio(run.profiles[epoch].stream_grad) for name, run in scale_runs.items()}
        assert max(ratio[n] for n in BRANCH_SCALINGS) < min(ratio["identity"], ratio["shortcut x0.5"]), ratio
    at_init = {name: run.profiles[0] for name, run in scale_runs.items()}
    assert Profile.ratio(at_init["shortcut x0.5"].stream_grad) > Profile.ratio(at_init["identity"].stream_grad)
    variance = [s ** 2 for s in at_init["identity"].block_std]
    assert all(variance[i] < variance[i + 4] for i in (0, 5, 10))  # climbs within each stage
    for name in BRANCH_SCALINGS:
        stds = at_init[name].block_std
        assert max(stds) < 1.5 * min(stds), (name, stds)  # flat across depth
    assert len(scale_runs["identity"].profiles) == ex.QUICK.epochs + 1


def test_reference_runs_rank_the_scaled_shortcut_last():
    loss = {name: entry["train_loss"] for name, entry in reference.manifest()["models"].items()}
    for name in ("resnet32", "resnet32-branch0.2", "resnet32-rezero", "resnet32-layerscale", "resnet32-zeroinit"):
        assert loss[name] < loss["resnet32-shortcut0.5"], name


# --- the library pieces the chapters share -----------------------------------------------------------------

def test_profile_leaves_the_model_as_it_was(batch):
    torch.manual_seed(0)
    model = build(NetConfig(stages=(1, 1, 1))).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ex.profile(model, *batch)
    assert not model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_train_runs_restores_threads_and_explains_bad_input(data):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # not the 1 train_runs sets (nor scripts/test.sh's OMP_NUM_THREADS): a miss shows
    try:
        with pytest.raises(TypeError, match="NetConfig or a model"):
            ex.train_runs({"oops": "resnet20"}, ex.QUICK, data)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_variants_and_depth_configs_name_what_they_build():
    grid = ex.variants(NetConfig(), activation=("sigmoid", "relu"), init=("naive", "kaiming"))
    assert list(grid) == ["sigmoid/naive", "sigmoid/kaiming", "relu/naive", "relu/kaiming"]
    assert grid["relu/naive"].init == "naive" and grid["relu/naive"].activation == "relu"
    configs = ex.depth_configs([8, 20], NetConfig(widths=ex.NARROW))
    assert {n: (c.depth, c.residual, c.widths) for n, c in configs.items()} == {
        "plain8": (8, False, ex.NARROW), "plain20": (20, False, ex.NARROW),
        "resnet8": (8, True, ex.NARROW), "resnet20": (20, True, ex.NARROW)}


def test_plots_draw_one_line_or_bar_per_entry(depth_runs):
    curves = plots.curves(depth_runs)
    assert [line.get_linestyle() for line in curves.get_lines()] == ["--", "--", "-", "-"]  # plain nets dashed
    assert list(curves.get_lines()[0].get_xdata()) == list(range(1, ex.QUICK.epochs + 1))
    assert len(plots.lines({"a": [1, 2], "b": ([0, 5], [3, 4])}, log=True).get_lines()) == 2
    assert len(plots.bars({"a": 1.0, "b": 2.0}).patches) == 2
    assert len(plots.nested_classes()) == 2
    plt.close("all")


# --- the claims mechanism and the measurements it rests on ------------------------------------------------

def test_the_identity_path_is_open_everywhere_only_without_an_activation_after_the_add(batch):
    x = batch[0][:32]
    torch.manual_seed(0)
    post = ex.identity_open_fraction(build(NetConfig(stages=(2, 2, 2))), x)
    assert len(post) == 6 and all(0.2 < f < 0.9 for f in post)  # a ReLU after the add closes some units
    for block in ex.NOTHING_AFTER_THE_ADD:
        assert ex.identity_open_fraction(build(NetConfig(stages=(2, 2, 2), block=block)), x) == [1.0] * 6


def test_layer_responses_and_deletion_summary_measure_what_they_say(data):
    model, _ = reference.load("resnet8")
    stds = ex.layer_responses(model, data.test.x)
    assert len(stds) == 2 * len(model.blocks()) and all(s > 0 for s in stds)
    summary = ex.deletion_summary({"none": 0.9, "a": 0.85, "b": 0.5})
    assert summary == {"intact": 0.9, "mean": pytest.approx(0.675), "cheap": 1, "deletions": 2}


# --- the experiments added for chapters 2, 4, 7 and 8 -------------------------------------------------------

def test_path_gradients_split_the_gradient_by_path_length(data):
    torch.manual_seed(0)
    zeroed = build(NetConfig(stages=(2, 2, 2), zero_init_residual=True))  # every branch outputs 0: no gradient
    paths = ex.path_gradients(zeroed, data.test.x[:32], data.test.y[:32], per_length=4)
    assert paths.blocks == 6 and paths.paths == [1, 6, 15, 20, 15, 6, 1] and sum(paths.paths) == 2 ** 6
    assert paths.per_path[0] > 0 and paths.per_path[1:] == [0.0] * 6  # only the all-shortcut path carries any
    assert paths.share[0] == 1.0 and paths.gradient_mean_length == 0.0 and paths.mean_length == 3
    x = data.test.x[:32].clone().requires_grad_(True)  # that path is the whole net: its gradient, row by row
    loss = torch.nn.functional.cross_entropy(zeroed.eval()(x), data.test.y[:32], reduction="sum")
    whole = torch.autograd.grad(loss, x)[0].flatten(1).norm(dim=1)
    assert whole.min() * 0.999 <= paths.per_path[0] <= whole.max() * 1.001
    with pytest.raises(ValueError, match="residual net"):
        ex.path_gradients(build(NetConfig(residual=False)), data.test.x[:4], data.test.y[:4])


def test_the_gradient_of_a_trained_resnet56_flows_through_short_paths(data):
    model, _ = reference.load("resnet56")
    paths = ex.path_gradients(model, data.test.x, data.test.y, per_length=32, seed=1)
    assert paths.blocks == 27 and sum(paths.paths[:14]) == 2 ** 26  # at most 13 branches: half of all paths
    assert paths.share_up_to(13) > 0.9 and paths.gradient_mean_length < paths.mean_length - 3
    assert paths.per_path[0] > 100 * paths.per_path[-1]  # one long path carries far less than the shortcut path
    assert sum(paths.share) == pytest.approx(1.0)


def test_gradients_shatter_in_deep_plain_nets_not_in_residual_ones(batch):
    x, y = batch
    torch.manual_seed(0)
    net = build(NetConfig(stages=(1, 1, 1)))
    calibrated = ex.with_batch_statistics(net, x)
    assert net.training and float(net.bn1.running_mean.abs().sum()) == 0  # the original is untouched
    with torch.no_grad():
        features = calibrated.conv1(x)
    assert torch.allclose(calibrated.bn1.running_mean, features.mean(dim=(0, 2, 3)), atol=1e-5)
    assert not calibrated.training
    assert ex.gradient_correlation(net, x, y, step=1e-5) > 0.999  # a tiny step: the same gradient
    with pytest.raises(ValueError, match="step"):
        ex.gradient_correlation(net, x, y, step=0)
    result = ex.shattering([8, 56], x, y, seeds=(0, 1))
    assert max(result["plain56"]) < 0.1 < 0.5 < min(result["resnet56"])
    assert min(result["plain8"]) > 0.9 and min(result["resnet8"]) > 0.9


def test_log_lines_marks_exact_zeros_instead_of_drawing_them_at_a_made_up_value():
    ax = plots.log_lines({"dead": [0.0, 0.0, 0.0], "mixed": [0.0, 1e-6, 1e-3], "alive": [1e-2, 1e-2, 1e-2]})
    low, high = ax.get_ylim()
    drawn = [line for line in ax.get_lines() if line.get_label() in ("dead", "mixed", "alive")]
    assert all(min([v for v in line.get_ydata() if v == v], default=1e-6) >= 1e-6 for line in drawn)
    marks = [line for line in ax.get_lines() if line.get_marker() == "v" and len(line.get_xdata())]
    assert sorted(len(m.get_xdata()) for m in marks) == [1, 3]  # one ▼ per exact zero, one row per line
    assert all(low < m.get_ydata()[0] < 1e-6 for m in marks)  # in the band below the smallest real value
    assert all(t >= 1e-6 * 0.999 for t in ax.get_yticks())  # no log tick inside the band
    plt.close("all")


def test_padding_share_and_training_step_seconds_measure_what_they_say():
    assert ex.padding_share(1) == pytest.approx(8 / 9) and ex.padding_share(2) == pytest.approx(5 / 9)
    assert ex.padding_share(32) < ex.padding_share(8) < ex.padding_share(2)
    with pytest.raises(ValueError, match="odd kernel"):
        ex.padding_share(4, kernel=2)
    torch.manual_seed(0)
    model = build(NetConfig(stages=(1, 1, 1)))
    deeper = build(NetConfig(stages=(4, 4, 4)))
    seconds = ex.training_step_seconds({"small": model, "deeper": deeper}, torch.randn(8, 1, 8, 8), torch.arange(8),
                                       repeats=3)
    assert 0 < seconds["small"] < seconds["deeper"] < 10  # four times the blocks: slower, on any machine
    assert all(p.grad is None for p in [*model.parameters(), *deeper.parameters()])
    with pytest.raises(ValueError, match="repeats"):
        ex.training_step_seconds({"small": model}, torch.randn(2, 1, 8, 8), torch.arange(2), repeats=0)
    # stem 1->16 at 8x8; two 16->16 convs; 16->32 (stride 2), 32->32 and a 1x1 projection at 4x4; the same at 2x2
    by_hand = 64 * 16 * 9 + 2 * 64 * 16 * 16 * 9 + 16 * 32 * (16 * 9 + 32 * 9 + 16) + 4 * 64 * (32 * 9 + 64 * 9 + 32)
    assert ex.convolution_work(model, torch.randn(3, 1, 8, 8)) == (9, by_hand)


def test_bn_after_the_add_closes_the_identity_path_most_and_trains_worst(data):
    names = ["resnet56", "resnet56-bn-after-add", "resnet56-relu-before-add", "resnet56-relu-preact", "preact-resnet56"]
    runs = ex.seed_runs(names)
    loss = ex.finals(runs, "train_loss")
    for seed in range(len(runs["resnet56"])):
        assert loss["resnet56-bn-after-add"][seed] > max(loss[n][seed] for n in names[:1] + names[2:])
    original, bn_after = (ex.identity_open_fraction(runs[n][0].model, data.test.x) for n in names[:2])
    assert sum(bn_after) / len(bn_after) < 0.5 < sum(original) / len(original) < 0.9
