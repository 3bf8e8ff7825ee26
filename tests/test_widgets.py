"""The widgets' logic, headless: controls in, numbers out; the views wired to it; Stop; the static fallback."""
import base64
import dataclasses
import io
import math
import re
import threading
import time
from pathlib import Path

import nbformat
import pytest
import torch
from nbconvert import HTMLExporter
from PIL import Image

from reslab import data, experiments, models, train
from reslab import widgets as W
from reslab.widgets import FlowSettings, activation_growth, gradient_flow, gradient_ratio
from reslab.widgets.controls import read_settings
from reslab.widgets.flow import CONTROL_ORDER, PLAIN_REASONS

COURSE = Path(__file__).resolve().parents[1] / "course"


def ratio(**settings) -> float:
    return gradient_ratio(gradient_flow(FlowSettings(**settings)))


def png_size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


# --- gradient flow -----------------------------------------------------------------------------------------

def test_residual_keeps_the_gradient_where_plain_loses_it():
    deep_sigmoid = dict(depth=30, activation="sigmoid")
    residual, plain = ratio(residual=True, **deep_sigmoid), ratio(residual=False, **deep_sigmoid)
    assert 0.1 <= residual <= 10, residual  # identity shortcuts: within 10x over 62 layers
    assert plain < 0.01, plain  # each sigmoid multiplies by at most 1/4 on the way down
    # the sigmoid after the add of a post-activation block sits on the shortcut path and squashes it again
    assert ratio(residual=True, block="basic", **deep_sigmoid) < 0.01
    # a shallow plain net is fine: the loss comes from depth
    assert 0.1 <= ratio(residual=False, depth=2, activation="sigmoid") <= 10


def test_shortcut_scale_compounds_over_depth_and_branch_scale_does_not():
    base = dict(depth=30, residual=True, activation="sigmoid")
    assert ratio(**base, shortcut_scale=0.5) < min(0.05, ratio(**base) / 100)  # lambda once per block
    assert 0.1 <= ratio(**base, branch_scale=0.2) <= 10
    assert ratio(**base, branch_scale=0.0) == float("inf")  # alpha = 0: the branches get no gradient
    assert W.describe_ratio(float("inf")) == "the last conv layer gets no gradient"


def test_every_control_changes_the_numbers():
    base = FlowSettings(depth=6, residual=True, block="preact", activation="relu", init="kaiming", norm=True,
                        shortcut_scale=1.0, branch_scale=1.0)
    other = dict(depth=7, residual=False, block="basic", activation="tanh", init="naive", norm=False,
                 shortcut_scale=0.8, branch_scale=0.5)
    reference = gradient_flow(base)
    for name, value in other.items():
        changed = gradient_flow(dataclasses.replace(base, **{name: value}))
        assert changed.grad_norm != reference.grad_norm, name
    assert len(gradient_flow(FlowSettings(depth=7)).names) == 2 * 7 + 2


def test_same_setting_same_numbers_and_the_callers_rng_is_left_alone():
    settings = FlowSettings(depth=3, residual=True)
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = gradient_flow.__wrapped__(settings)
    assert W.train_steps(settings, 2).losses == W.train_steps(settings, 2).losses
    assert torch.equal(torch.rand(3), expected_draw)
    assert gradient_flow.__wrapped__(settings) == first
    assert gradient_flow(settings) is gradient_flow(settings)  # cached


def test_a_plain_net_ignores_the_scales_and_bad_settings_say_what_is_wrong():
    assert FlowSettings(residual=False, shortcut_scale=0.5).net_config() == FlowSettings(residual=False).net_config()
    assert FlowSettings(residual=True, branch_scale=0.3).net_config().branch_scale == "fixed"
    assert FlowSettings(shortcut_scale=0.1 + 0.2) == FlowSettings(shortcut_scale=0.3)
    assert set(FlowSettings(residual=False).not_applicable()) == set(PLAIN_REASONS)
    assert FlowSettings(residual=True).not_applicable() == {}
    with pytest.raises(ValueError, match="depth must be a whole number of blocks from 1 to 40"):
        FlowSettings(depth=0)
    with pytest.raises(ValueError, match="activation='swish' is not one of"):
        FlowSettings(activation="swish")
    with pytest.raises(ValueError, match="shortcut_scale must be a number from 0 to 1.5"):
        FlowSettings(shortcut_scale=3)
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['widht'\]"):
        W.gradient_flow_explorer(widht=8)


def test_log_limits_snap_to_coarse_decades_and_survive_zeros():
    assert W.log_limits([0.03, 0.6]) == (1e-3, 1.0)
    assert W.log_limits([2e-5, 0.5, 0.0]) == (1e-6, 1.0)
    assert W.log_limits([0.0, float("nan")]) == (1e-3, 1.0)


# --- the explorer view -------------------------------------------------------------------------------------

def test_exact_zeros_are_marked_not_drawn_at_a_made_up_value():
    settings = FlowSettings(depth=30, activation="sigmoid", init="naive", norm=False)
    stats = gradient_flow(settings)
    dead = [i for i, g in enumerate(stats.grad_norm) if g == 0]
    assert dead, "this deep naive sigmoid net should underflow to exact zeros"
    explorer = W.gradient_flow_explorer(**dataclasses.asdict(settings))
    line, zeros = explorer.plot.grad_line.get_ydata(), explorer.plot.grad_zeros
    assert [i for i, v in enumerate(line) if math.isnan(v)] == dead  # left out of the line, the others drawn
    assert list(zeros.get_xdata()) == [i + 1 for i in dead]  # layers are numbered from 1
    assert all(y < min(v for v in line if v == v) for y in zeros.get_ydata())  # below every drawn value


def test_explorer_controls_drive_the_plot_and_the_ratio():
    explorer = W.gradient_flow_explorer(depth=10, activation="sigmoid")
    assert explorer.controls["shortcut_scale"].disabled  # plain: no shortcut to scale
    before_png, before_text = explorer.figure.value, explorer.summary.value
    assert png_size(before_png) == (864, 307) and "22 weight layers" in before_text

    explorer.controls["depth"].value = 30
    assert explorer.settings.depth == 30 and "62 weight layers" in explorer.summary.value
    assert explorer.figure.value != before_png
    assert f"{gradient_ratio(explorer.stats):.2g}" in explorer.summary.value

    plain_png = explorer.figure.value
    explorer.controls["residual"].value = True
    assert not explorer.controls["shortcut_scale"].disabled
    assert explorer.figure.value != plain_png and "within 10x" in explorer.summary.value
    explorer.controls["residual"].value = False
    assert explorer.figure.value == plain_png and "vanishing" in explorer.summary.value

    explorer.warmer.join()  # the next depth was computed while "the student looked at the plot"
    assert W.likely_next(explorer.settings)[0] == dataclasses.replace(explorer.settings, depth=31)
    hits = gradient_flow.cache_info().hits
    explorer.controls["depth"].value = 31
    assert gradient_flow.cache_info().hits > hits


def test_without_widgets_the_output_shows_the_default_figure():
    explorer = W.gradient_flow_explorer()
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    png = base64.b64decode(bundle["image/png"])
    assert png == explorer.figure.value and png_size(png) == (864, 307)
    # static HTML (nbconvert, nbviewer) without saved widget state falls back to the picture
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("gradient_flow_explorer()", outputs=[
        nbformat.v4.new_output("execute_result", data=bundle, execution_count=1)])])
    html, _ = HTMLExporter().from_notebook_node(notebook)
    assert f'src="data:image/png;base64,{bundle["image/png"]}"' in html


# --- every control shows its effect from where a chapter starts the widget ---------------------------------

VISIBLE = math.log(1.1)  # a displayed number or a plotted point moves by 10% or more
VISIBLE_SHARE = 0.25  # ... for at least a quarter of a curve's points


def log_change(a: float, b: float) -> float:
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)) or a <= 0 or b <= 0:
        return math.inf  # e.g. "the last conv layer gets no gradient": the summary says something else
    return abs(math.log(b / a))


def visible(before, after) -> bool:
    """What a student sees change: the summary's gradient ratio or activation growth by 10%, or, for nets of
    the same depth, a quarter of the points of either plotted curve by 10%."""
    if any(log_change(f(before), f(after)) >= VISIBLE for f in (gradient_ratio, activation_growth)):
        return True
    if len(before.names) != len(after.names):
        return False
    return any(sum(log_change(a, b) >= VISIBLE for a, b in zip(x, y)) >= VISIBLE_SHARE * len(x)
               for x, y in ((before.grad_norm, after.grad_norm), (before.act_std, after.act_std)))


def chapter_widget_calls() -> list[tuple[str, str]]:
    """(chapter, call) for every explorer and trainer a chapter constructs, as the chapter writes it."""
    call = re.compile(r"^(gradient_flow_explorer|train_few_steps)\(.*\)$", re.M)
    found = []
    for path in sorted(COURSE.glob("0*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                found += [(path.name[:2], match.group(0)) for match in call.finditer(cell.source)]
    return found


def test_the_chapters_construct_explorers_and_a_trainer():
    calls = chapter_widget_calls()
    assert {c for c, _ in calls} >= {"02", "04", "06"}, calls
    assert any(call.startswith("train_few_steps(") for _, call in calls), calls


def displayed_stats(widget):
    """The numbers the widget shows for its current settings: the explorer plots them, the trainer's status
    line prints its two ratios (checked here too)."""
    if isinstance(widget, W.GradientFlowExplorer):
        return widget.stats
    stats = gradient_flow(read_settings(widget.controls))
    assert f"{gradient_ratio(stats):.2g}" in widget.status.value
    return stats


@pytest.mark.parametrize("chapter, call", chapter_widget_calls(), ids=lambda v: v)
def test_every_control_shows_its_effect_one_step_from_the_chapters_start(chapter, call):
    widget = eval(call, {"gradient_flow_explorer": W.gradient_flow_explorer, "train_few_steps": W.train_few_steps})
    start = read_settings(widget.controls)
    before = displayed_stats(widget)
    for name in CONTROL_ORDER:
        control = widget.controls[name]
        if name in start.not_applicable():
            reason = start.not_applicable()[name]
            assert control.disabled and control.tooltip == reason and reason in widget.note.value, name
            continue
        assert not control.disabled, name
        steps = W.one_step(start, name)
        assert steps, name
        for moved in steps:
            control.value = getattr(moved, name)
            assert read_settings(widget.controls) == moved
            assert visible(before, displayed_stats(widget)), f"chapter {chapter}, {call}: {name} → {control.value}"
        control.value = getattr(start, name)
    if isinstance(widget, W.TrainFewSteps):  # one step of the steps slider: a run 10% longer or shorter
        first = widget.steps.value
        widget.steps.value = first + widget.steps.step
        assert f"Train: {widget.steps.value} steps" in widget.status.value
        assert 10 * (widget.steps.value - first) >= first


def test_greyed_out_controls_would_change_nothing():
    for settings in (FlowSettings(), FlowSettings(norm=False, activation="tanh", init="xavier", depth=12)):
        stats = gradient_flow(settings)
        other_block = dataclasses.replace(settings, block="basic")
        assert not visible(stats, gradient_flow(other_block))  # the same chain, shifted by half a block
        assert dataclasses.replace(settings, shortcut_scale=0.5, branch_scale=0.2).net_config() == settings.net_config()


def test_the_warm_up_computes_the_next_step_of_the_control_moved_last():
    explorer = W.gradient_flow_explorer(residual=True, depth=8)
    explorer.controls["branch_scale"].value = 0.7
    assert W.likely_next(explorer.settings, "branch_scale")[0] == dataclasses.replace(explorer.settings,
                                                                                       branch_scale=0.8)
    explorer.warmer.join()
    for name in ("branch_scale", "shortcut_scale", "depth"):
        hits = gradient_flow.cache_info().hits
        explorer.controls[name].value = getattr(W.likely_next(explorer.settings, name)[0], name)
        assert gradient_flow.cache_info().hits > hits, name
        explorer.warmer.join()


# --- train a few steps -------------------------------------------------------------------------------------

SMALL = FlowSettings(depth=2, residual=True, activation="relu")


def test_a_few_steps_lower_the_loss_and_stop_ends_the_run():
    result = W.train_steps(SMALL, 60, lr=3e-3)
    assert len(result.losses) == 60 and not result.stopped
    assert sum(result.losses[-10:]) / 10 < 0.6 * result.losses[0] and result.val_acc > 0.5

    stop = threading.Event()
    stopped = W.train_steps(SMALL, 1000, stop=stop, on_step=lambda step, losses: step == 3 and stop.set())
    assert len(stopped.losses) == 3 and stopped.stopped
    with pytest.raises(ValueError, match="steps must be a whole number from 1 to 1000, got 0"):
        W.train_steps(SMALL, 0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        W.train_few_steps(lr=-1)


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_stop_button_stops_the_training_thread():
    widget = W.train_few_steps(steps=1000, depth=2, residual=True)
    assert widget.stop_button.disabled and not widget.train_button.disabled
    widget.train_button.click()
    assert widget.thread.is_alive() and widget.train_button.disabled and not widget.stop_button.disabled
    wait_for(lambda: widget.progress.value > 0)
    widget.stop_button.click()
    widget.thread.join(timeout=20)
    assert not widget.thread.is_alive()
    assert widget.result.stopped and 0 < len(widget.result.losses) < 1000
    assert widget.progress.value == len(widget.result.losses)
    assert widget.status.value.startswith(f"stopped after {len(widget.result.losses)} steps")
    assert not widget.train_button.disabled and widget.stop_button.disabled


def test_before_the_first_run_the_trainer_says_what_its_plot_will_show():
    widget = W.train_few_steps()
    assert widget.plot.waiting.get_visible() and "press Train" in widget.plot.waiting.get_text()
    static = base64.b64decode(widget._repr_mimebundle_()["image/png"])
    widget.plot.waiting.set_visible(False)
    widget.plot.figure.invalidate()
    assert static != widget.plot.png([])  # the static page shows the text, not empty axes
    assert widget.status.value.startswith("Train: 100 steps of plain 10 blocks")


def test_a_second_run_keeps_the_first_curve_for_comparison():
    widget = W.train_few_steps(steps=10, depth=1)
    widget.start()
    widget.thread.join(timeout=30)
    first = widget.figure.value
    widget.controls["residual"].value = True
    widget.start()
    widget.thread.join(timeout=30)
    assert widget.status.value.startswith("finished 10 steps")
    labels = [t.get_text() for t in widget.plot.ax.get_legend().get_texts()]
    assert labels == ["residual 1 blocks, relu, kaiming, BN, λ=1, α=1", "plain 1 blocks, relu, kaiming, BN"]
    assert widget.figure.value != first


# --- block deletion ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deletions():
    return W.reference_deletions("resnet20"), W.reference_deletions("plain20")


def test_a_resnet_survives_deleting_a_block_and_its_plain_twin_does_not(deletions):
    residual, plain = deletions
    assert residual.baseline > 0.95 and plain.baseline > 0.9
    assert all(a is not None for a in residual.accuracy)  # the shortcut always stays
    downsampling = [b.shape_changes for b in plain.blocks]
    assert downsampling == [False] * 3 + [True, False, False] * 2
    assert [a is None for a in plain.accuracy] == downsampling  # no shortcut, no way around
    deletable = [a for a in plain.accuracy if a is not None]
    assert max(deletable) < 0.3  # about chance (10 classes)
    assert min(residual.accuracy[-2:]) > 0.9  # late blocks barely matter (Veit et al. 2016)
    assert sum(residual.accuracy) / 9 > sum(deletable) / len(deletable) + 0.4


def test_the_widget_explains_what_experiments_measure():
    torch.manual_seed(0)
    residual = models.build(stages=(2, 2), widths=(4, 8), shortcut="A").eval()
    plain = models.build(stages=(2, 2), widths=(4, 8), residual=False).eval()
    split = data.digits().test
    result = W.deletion_result(residual, split)
    measured = experiments.block_deletion(residual, split)
    assert result.baseline == measured.pop("none") and result.accuracy == list(measured.values())
    assert [b.name for b in result.blocks] == ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]
    assert result.blocks[2].shapes() == "4×8×8 → 8×4×4" and result.blocks[2].shape_changes
    assert result.stays == ["its identity shortcut", "its identity shortcut", "its zero-padding shortcut",
                            "its identity shortcut"]
    assert W.deletion_result(plain, split).accuracy[2] is None  # no shortcut, and the shape changes


def test_block_deletion_widget_explains_shape_changes(deletions):
    widget = W.block_deletion(block="layer2.1")
    residual, plain = deletions
    assert f"plain20 {plain.baseline:.1%} → {plain.accuracy[4]:.1%}" in widget.summary.value
    shown = widget.figure.value
    widget.block.value = 3  # layer2.0: 16x8x8 -> 32x4x4
    assert widget.figure.value != shown
    text = widget.summary.value
    assert "changes the shape 16×8×8 → 32×4×4" in text
    assert "resnet20 keeps its projection shortcut (1×1 conv): resnet20" in text
    assert "plain20 has no shortcut there, so the block cannot be removed" in text
    with pytest.raises(ValueError, match="no block 'layer9.9'"):
        W.block_deletion(block="layer9.9")


def test_block_deletion_takes_trained_nets_too():
    torch.manual_seed(0)
    nets = [models.build(stages=(1, 1), widths=(4, 8), residual=r).eval() for r in (True, False)]
    widget = W.block_deletion(*nets)
    residual, plain = widget.results["residual"], widget.results["plain"]
    assert residual.baseline == train.evaluate(nets[0], data.digits().test)[1] and None not in residual.accuracy
    assert plain.accuracy[0] is not None and plain.accuracy[1] is None  # layer2.0 changes the shape
    assert "residual keeps its projection shortcut (1×1 conv)" in widget.describe(1)
    with pytest.raises(TypeError, match="plain must be a reference model name or a plain reslab Net"):
        W.block_deletion(nets[0], nets[0])


def test_verdict_names_gradients_tiny_or_huge_everywhere():
    """The ratio of 1e-21 to 1e-21 is 1; the explorer's verdict must still say the gradient is gone."""
    from reslab.probes import LayerStats
    from reslab.widgets.flow import verdict

    def stats(*norms):
        return LayerStats([f"layer{i}" for i in range(len(norms))], list(norms), [0.0] * len(norms), [1.0] * len(norms))

    assert verdict(stats(1.5e-21, 1e-21, 1e-21, 0.3)).startswith("vanishing everywhere")  # classifier left out
    assert verdict(stats(0.96e8, 1e8, 1e8, 0.3)).startswith("exploding everywhere")
    assert verdict(stats(0.5, 0.4, 0.5, 0.3)) == "within 10x"
    assert verdict(stats(1e-3, 0.5, 0.5, 0.3)) == "vanishing toward the input"
    assert verdict(stats(1.0, 0.0, 0.0, 0.3)) == "the last conv layer gets no gradient"
