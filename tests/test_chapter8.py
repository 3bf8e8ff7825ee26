"""Chapter 8 and what it stands on: the blocks of ``reslab.beyond``, the loss-landscape slices, the 28x28
reference suite (degradation across seeds, asserted on the shipped files) and the chapter executed."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from nbclient import NotebookClient

from reslab import beyond, landscape, reference
from reslab.models import build, count_parameters

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "course" / "08_beyond_the_block.ipynb"


def test_dense_layer_appends_growth_channels_and_keeps_its_input():
    layer = beyond.DenseLayer(5, 3)
    x = torch.randn(2, 5, 6, 6)
    out = layer(x)
    assert out.shape == (2, 8, 6, 6) and torch.equal(out[:, :5], x)
    block = beyond.dense_block(4, 3, 2)
    assert block(torch.randn(1, 4, 5, 5)).shape[1] == 4 + 3 * 2


def test_transition_halves_resolution_and_sets_channels():
    assert beyond.Transition(12, 6)(torch.randn(1, 12, 8, 8)).shape == (1, 6, 4, 4)


def test_resnext_grouped_conv_divides_the_3x3_weights_by_cardinality():
    for cardinality in (1, 2, 4, 8):
        block = beyond.ResNeXtBottleneck(32, 32, cardinality, 32 // cardinality)
        assert block.conv2.weight.numel() == 9 * 32 * 32 // cardinality
        assert block(torch.randn(1, 32, 6, 6)).shape == (1, 32, 6, 6)
    strided = beyond.ResNeXtBottleneck(16, 32, 4, 4, 2, beyond.projection(16, 32, 2))
    assert strided(torch.randn(1, 16, 8, 8)).shape == (1, 32, 4, 4)


def test_stochastic_depth_drops_the_branch_in_training_and_scales_it_in_eval():
    torch.manual_seed(0)
    block = beyond.StochasticDepthBlock(4, 4, survival=0.5)
    x = torch.randn(2, 4, 5, 5)
    block.eval()
    assert torch.allclose(block(x), F.relu(0.5 * block.branch(x) + x))
    block.train()
    outs = [block(x) for _ in range(40)]
    dropped = sum(torch.equal(o, F.relu(x)) for o in outs)
    assert 5 < dropped < 35  # about half the steps skip the branch
    with pytest.raises(ValueError, match="survival must be in"):
        beyond.StochasticDepthBlock(4, 4, survival=0.0)
    survival = beyond.linear_survival(4, last=0.5)
    assert survival[-1] == 0.5 and survival == sorted(survival, reverse=True) and survival[0] < 1


def test_cross_layer_spans_keep_the_parameters_and_reject_bad_spans():
    counts = {span: count_parameters(beyond.cross_layer_net(span=span)) for span in (1, 2, 3, 6)}
    assert len(set(counts.values())) == 1
    net = beyond.cross_layer_net(span=3)
    assert len(net.layer1) == 2 and len(net.layer1[0].blocks) == 3
    with pytest.raises(ValueError, match="must divide"):
        beyond.cross_layer_net(span=4)


def test_imagenet_stem_shrinks_28x28_by_four_before_the_first_block():
    x = torch.randn(2, 1, 28, 28)  # two images: BatchNorm needs more than one value at 1x1
    assert [o.shape[-1] for o in beyond.d2l_resnet18().stage_outputs(x)] == [7, 7, 4, 2, 1]
    assert [o.shape[-1] for o in beyond.d2l_resnet18(stem="cifar").stage_outputs(x)] == [28, 28, 14, 7, 4]
    with pytest.raises(ValueError, match="stem="):
        beyond.resnet(stem="vgg")


def test_densenet_runs_on_28x28():
    assert beyond.DenseNet()(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_branch_ratio_is_zero_for_blocks_that_start_as_the_identity():
    net = build(stages=(2, 2), widths=(4, 8), zero_init_residual=True)
    ratios = beyond.branch_to_shortcut(net, torch.randn(3, 1, 8, 8))
    assert len(ratios) == 4 and all(r == 0 for r in ratios)
    assert all(r > 0 for r in beyond.branch_to_shortcut(build(stages=(2, 2), widths=(4, 8)), torch.randn(3, 1, 8, 8)))


def test_landscape_slices_centre_on_the_loss_and_leave_the_model_unchanged():
    torch.manual_seed(0)
    net = build(stages=(1, 1), widths=(4, 8))
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    before = [p.clone() for p in net.parameters()]
    line = landscape.surface(net, x, y, [-0.5, 0.0, 0.5])
    grid = landscape.surface(net, x, y, [-0.5, 0.0, 0.5], [0.0, 0.5])
    with torch.no_grad():
        centre = F.cross_entropy(net.eval()(x), y).item()
    assert line[1] == pytest.approx(centre, rel=1e-5) and grid[1, 0] == pytest.approx(centre, rel=1e-5)
    assert line[0] != pytest.approx(centre) and grid.shape == (3, 2)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    d = landscape.filter_normalised_direction(net, torch.Generator().manual_seed(1))
    w = net.conv1.weight
    assert torch.allclose(d[0].flatten(1).norm(dim=1), w.detach().flatten(1).norm(dim=1), rtol=1e-4)


@pytest.fixture(scope="module")
def suite():
    return reference.manifest(reference.MNIST28.folder)


def test_mnist28_references_are_shipped_with_their_device_and_seeds(suite):
    assert suite["dataset"] == "mnist28" and suite["split"] == [1000, 500, 500] and suite["seeds"] == [0, 1, 2]
    for name in reference.MNIST28.models:
        entries = reference.seeds(name, reference.MNIST28.folder)
        assert [e["seed"] for e in entries] == ([0, 1, 2] if name in reference.MNIST28_SEEDED else [0]), name
        for e in entries:
            assert e["device"].startswith("cpu") and e["seconds"] > 0
            assert reference.sha256(reference.MNIST28.folder / e["file"]) == e["sha256"]


def test_degradation_shows_on_28x28_in_every_seed(suite):
    loss = {n: [e["train_loss"] for e in reference.seeds(n, reference.MNIST28.folder)]
            for n in ("plain20", "plain110", "resnet110")}
    assert len(loss["plain20"]) == len(loss["plain110"]) == 3
    for seed in range(3):
        assert loss["plain110"][seed] > 2 * loss["plain20"][seed]
        assert loss["resnet110"][0] < loss["plain110"][seed] / 2  # the residual net: seed 0 only
    assert loss["resnet110"][0] < 1.5 * max(loss["plain20"])


def test_chapter8_runs_and_is_stored_without_outputs():
    nb = nbformat.read(CHAPTER, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    assert "RECOMPUTE = False" in nb.cells[1].source
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(CHAPTER.parent)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Error" not in printed and "splits (train/val/test): 4000 500 500" in printed


def test_the_28x28_suite_degrades_plain_and_not_residual_on_every_seed():
    """What the README says under its 28x28 table (the table itself: tests/test_reference.py)."""
    plain20, plain110, res20, res110 = ([e["train_loss"] for e in reference.seeds(n, reference.MNIST28.folder)]
                                        for n in ("plain20", "plain110", "resnet20", "resnet110"))
    assert all(p110 > 2 * p20 for p20, p110 in zip(plain20, plain110))
    assert all(r110 < r20 for r20, r110 in zip(res20, res110))
