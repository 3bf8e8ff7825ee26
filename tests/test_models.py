"""Every model option: output shapes, parameter counts, the identity property, clear errors."""
import itertools

import pytest
import torch

from reslab import models
from reslab.models import NetConfig, build, count_parameters, preset


def test_resnet20_option_a_matches_the_paper_parameter_count():
    # He et al. 2015, Table 6: ResNet-20 on CIFAR-10 has 0.27M parameters (option A: no projection weights)
    assert count_parameters(build(preset("resnet20", in_channels=3))) == 269_722


# the paper rounds to two significant digits: 0.27M ... 1.7M
@pytest.mark.parametrize("depth, millions, rounding", [(20, 0.27, 0.005), (32, 0.46, 0.005), (44, 0.66, 0.005),
                                                       (56, 0.85, 0.005), (110, 1.7, 0.05)])
def test_cifar_presets_match_the_paper(depth, millions, rounding):
    net = build(preset(f"resnet{depth}", in_channels=3))
    assert net.config.depth == depth
    assert count_parameters(net) / 1e6 == pytest.approx(millions, abs=rounding)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_plain_twin_has_the_same_weights_as_option_a():
    for depth in (20, 56):
        assert count_parameters(build(preset(f"plain{depth}", in_channels=3))) == \
            count_parameters(build(preset(f"resnet{depth}", in_channels=3)))


def test_shortcut_options_add_parameters_only_where_they_project():
    counts = {o: count_parameters(build(preset("resnet20", in_channels=3, shortcut=o))) for o in "ABC"}
    # B projects twice (16->32, 32->64): 1x1 conv + BN each
    assert counts["B"] - counts["A"] == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    # C also projects in the 7 blocks whose shapes do not change: 3 of 16 ch, 2 of 32, 2 of 64 (and the
    # first block of stage 1 where 16->16)
    extra = 3 * (16 * 16 + 32) + 2 * (32 * 32 + 64) + 2 * (64 * 64 + 128)
    assert counts["C"] - counts["B"] == extra


OPTIONS = dict(
    block=list(models.BLOCKS),
    residual=[True, False],
    norm=[True, False],
    activation=["relu", "tanh", "sigmoid"],
)


@pytest.mark.parametrize("block, residual, norm, activation", list(itertools.product(*OPTIONS.values())))
def test_every_combination_builds_and_keeps_shapes(block, residual, norm, activation):
    net = build(stages=(1, 2), widths=(4, 8), block=block, residual=residual, norm=norm, activation=activation,
                in_channels=3, num_classes=7)
    out = net(torch.randn(5, 3, 12, 12))
    assert out.shape == (5, 7) and torch.isfinite(out).all()
    feats = net.features(torch.randn(2, 3, 12, 12))
    expansion = 4 if block == "bottleneck" else 1
    assert feats.shape == (2, 8 * expansion, 6, 6)


@pytest.mark.parametrize("shortcut", ["A", "B", "C"])
@pytest.mark.parametrize("scale", [dict(), dict(shortcut_scale=0.5), dict(branch_scale="fixed", branch_scale_init=0.2),
                                   dict(branch_scale="scalar"), dict(branch_scale="channel", branch_scale_init=1e-3),
                                   dict(zero_init_residual=True)])
def test_shortcut_and_scale_options_build(shortcut, scale):
    net = build(stages=(2, 2), widths=(4, 8), shortcut=shortcut, **scale)
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_scale_parameters_are_counted_as_documented():
    base = count_parameters(build(stages=(2, 2), widths=(4, 8)))
    assert count_parameters(build(stages=(2, 2), widths=(4, 8), branch_scale="scalar")) == base + 4
    assert count_parameters(build(stages=(2, 2), widths=(4, 8), branch_scale="channel", branch_scale_init=0.1)) \
        == base + 2 * 4 + 2 * 8
    # fixed constants and shortcut scales are buffers, not parameters
    assert count_parameters(build(stages=(2, 2), widths=(4, 8), branch_scale="fixed", branch_scale_init=0.1)) == base
    assert count_parameters(build(stages=(2, 2), widths=(4, 8), shortcut_scale=0.5)) == base


@pytest.mark.parametrize("block", [b for b in models.BLOCKS if b != "bn-after-add"])
def test_a_block_whose_branch_is_zero_is_exactly_the_identity(block):
    """Zeroing the branch scale leaves y = shortcut(x) = x: bit-for-bit, for identity shortcuts."""
    torch.manual_seed(0)
    cls = models.BLOCK_CLASSES[block]
    channels = 16 if block != "bottleneck" else 16
    width = channels // cls.expansion
    blk = cls(channels, width, shortcut=torch.nn.Identity(), scale=models.Scale(0.0, learnable=True),
              activation=torch.nn.Identity).eval()
    x = torch.randn(4, channels, 6, 6)
    assert torch.equal(blk(x), x)


@pytest.mark.parametrize("block, clean", [("basic", False), ("bn-after-add", False), ("relu-before-add", True),
                                          ("relu-preact", True), ("preact", True)])
def test_only_blocks_with_nothing_after_the_add_pass_the_shortcut_unchanged(block, clean):
    """He et al. 2016, Fig. 4: with a zero branch and a real ReLU, y == x only when nothing follows the add."""
    torch.manual_seed(0)
    blk = models.BLOCK_CLASSES[block](8, 8, shortcut=torch.nn.Identity(), scale=models.Scale(0.0)).train()
    x = torch.randn(4, 8, 6, 6) * 3 + 1
    assert torch.equal(blk(x), x) == clean


def test_zero_init_residual_cannot_zero_the_bn_after_the_add():
    with pytest.raises(ValueError, match="would zero the BatchNorm after the add"):
        build(block="bn-after-add", zero_init_residual=True)


@pytest.mark.parametrize("block", ["basic", "preact"])
def test_zero_init_residual_makes_each_block_start_as_its_shortcut(block):
    """With zero_init_residual the last BN gamma is 0: every block outputs act(shortcut(x)) at init."""
    net = build(stages=(2, 2), widths=(8, 16), block=block, zero_init_residual=True).eval()
    x = torch.relu(torch.randn(3, 8, 8, 8))  # post-activation blocks see non-negative inputs
    first = net.layer1[1]
    expected = torch.relu(x) if block == "basic" else x
    assert torch.equal(first(x), expected)


def test_zero_pad_shortcut_subsamples_and_pads_with_zeros():
    x = torch.arange(2 * 2 * 4 * 4, dtype=torch.float32).reshape(2, 2, 4, 4)
    y = models.ZeroPadShortcut(stride=2, extra_channels=3)(x)
    assert y.shape == (2, 5, 2, 2)
    assert torch.equal(y[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 2:]) == 0


def test_shortcut_scale_multiplies_the_shortcut_only():
    torch.manual_seed(0)
    plain_scale = build(stages=(1,), widths=(4,), shortcut_scale=0.5)
    block = plain_scale.layer1[0]
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(block.shortcut(x), 0.5 * x)


def test_parameter_names_follow_torchvision():
    keys = set(build(stages=(1, 1), widths=(4, 8)).state_dict())
    for key in ("conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.0.bn2.running_var",
                "layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.bias", "fc.weight", "fc.bias"):
        assert key in keys


@pytest.mark.parametrize("init", ["kaiming", "xavier", "naive"])
def test_initialisations_have_the_documented_scale(init):
    torch.manual_seed(0)
    net = build(stages=(1,), widths=(64,), init=init)
    w = net.layer1[0].conv2.weight
    expected = {"kaiming": (2 / (64 * 9)) ** 0.5, "xavier": (2 / (2 * 64 * 9)) ** 0.5, "naive": 0.01}[init]
    assert w.std().item() == pytest.approx(expected, rel=0.05)


BAD = [
    (dict(block="dense"), "block='dense'"),
    (dict(shortcut="D"), "shortcut='D'"),
    (dict(activation="gelu"), "activation='gelu'"),
    (dict(init="orthogonal"), "init='orthogonal'"),
    (dict(branch_scale="vector"), "branch_scale='vector'"),
    (dict(stages=(3, 3), widths=(16,)), "same length"),
    (dict(stages=(), widths=()), "non-empty"),
    (dict(stages=(0, 3), widths=(4, 8)), "positive integers"),
    (dict(widths=(16, 32.5, 64)), "positive integers"),
    (dict(in_channels=0), "in_channels"),
    (dict(branch_scale="fixed"), "needs branch_scale_init"),
    (dict(branch_scale_init=0.1), "branch_scale='none'"),
    (dict(residual=False, shortcut_scale=0.5), "plain net"),
    (dict(residual=False, zero_init_residual=True), "plain net"),
    (dict(norm=False, zero_init_residual=True), "needs norm=True"),
    (dict(shortcut_scale=float("nan")), "finite"),
]


@pytest.mark.parametrize("overrides, message", BAD)
def test_bad_configurations_raise_clear_value_errors(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        NetConfig(**overrides)


def test_unknown_fields_and_presets_are_named():
    with pytest.raises(ValueError, match="unknown NetConfig field"):
        NetConfig.from_dict({"depth": 20})
    with pytest.raises(ValueError, match="unknown preset 'resnet21'"):
        preset("resnet21")
    with pytest.raises(ValueError, match="not 6n\\+2"):
        models.cifar_config(21)


def test_config_round_trips_through_json():
    import json

    config = NetConfig(stages=(2, 3), widths=(8, 16), block="preact", branch_scale="channel", branch_scale_init=1e-3)
    assert NetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_stochastic_depth_drops_whole_branches_in_training_and_scales_them_at_evaluation():
    net = build(NetConfig(stages=(2, 2), widths=(4, 8), stochastic_depth=0.5))
    survival = [block.scale.survival for block in net.blocks()]
    assert survival == pytest.approx([0.875, 0.75, 0.625, 0.5])  # linear from the first block to 1 - 0.5
    block = net.blocks()[-1].train()
    x = torch.randn(3, 8, 4, 4)
    kept = [bool(block.scale(x).abs().sum()) for _ in range(400)]  # one draw per batch: all kept or all zero
    assert 0.4 < sum(kept) / len(kept) < 0.6
    assert torch.equal(block.scale.eval()(x), x * 0.5)
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="stochastic_depth"):
            NetConfig(stochastic_depth=bad)
    with pytest.raises(ValueError, match="plain net"):
        NetConfig(residual=False, stochastic_depth=0.2)
    scaled = build(NetConfig(stages=(1,), widths=(4,), branch_scale="fixed", branch_scale_init=0.2, stochastic_depth=0.3))
    assert [type(m).__name__ for m in scaled.blocks()[0].scale] == ["Scale", "DropBranch"]
