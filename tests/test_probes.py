"""Gradient-norm and activation probes: forward order, no side effects, the vanishing-gradient signal."""
import pytest
import torch

from reslab import data, models, probes


def batch(n=128):
    d = data.digits()
    return d.train.x[:n], d.train.y[:n]


def test_layers_are_reported_in_forward_order_and_leave_the_model_untouched():
    torch.manual_seed(0)
    net = models.build(stages=(1, 1), widths=(4, 8), block="preact")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = batch(16)
    stats = probes.layer_stats(net, x, y)
    assert stats.names[0] == "conv1" and stats.names[-1] == "fc"
    # a pre-activation block registers bn1 before conv1 and the shortcut last; forward order still holds
    assert stats.names.index("layer2.0.conv1") < stats.names.index("layer2.0.conv2")
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert len(stats.grad_norm) == len(stats.act_std) == len(stats.names)


def test_deep_plain_sigmoid_net_vanishes_and_the_residual_twin_does_not():
    torch.manual_seed(0)
    x, y = batch()
    common = dict(stages=(15,), widths=(16,), activation="sigmoid", norm=False, init="xavier")
    plain = probes.layer_stats(models.build(residual=False, **common), x, y)
    preact = probes.layer_stats(models.build(block="preact", **common), x, y)
    postact = probes.layer_stats(models.build(block="basic", **common), x, y)
    assert plain.first_to_last_ratio < 1e-2  # >= 100x decay from the last layer to the first
    assert 1e-1 < preact.first_to_last_ratio < 10  # a clean identity path: the gradient arrives intact
    # a sigmoid after every add sits on the shortcut path too: the post-activation net still vanishes
    assert postact.first_to_last_ratio < 1e-2


def test_block_output_std_has_one_value_per_block():
    net = models.build(stages=(2, 3), widths=(4, 8))
    stds = probes.block_output_std(net, batch(8)[0])
    assert len(stds) == 5 and all(s > 0 for s in stds)


def test_gradient_health_uses_both_the_ratio_and_the_absolute_scale():
    h = probes.gradient_health
    assert h([1.0, 2.0, 0.5]).word == "healthy"
    assert h([0.05, 1.0]).word == "vanishing" and h([20.0, 1.0]).word == "exploding"
    assert h([10.0, 1.0]).word == "healthy"  # the edge of tenfold is still healthy
    # equal norms are not healthy when every one is tiny or one is huge: the ratio alone would miss both
    assert h([1e-7, 1e-7]).word == "vanishing" and h([5e4, 4e4]).word == "exploding"
    assert h([5e4, 1.0, 4e4]).word == "healthy"  # one huge layer among ordinary ones is not every layer
    assert h([0.0, 0.0]).word == "vanishing" and h([1.0, 0.0]).word == "exploding"
    verdict = h([20.0, 1.0])
    assert str(verdict) == "exploding" and verdict.ratio == 20.0 and verdict.largest == 20.0
    assert "over 10x" in verdict.reason
    for bad in ([1.0], [1.0, float("nan")], [1.0, -1.0]):
        with pytest.raises(ValueError, match="two or more norms"):
            h(bad)


def test_gradient_health_of_real_nets():
    torch.manual_seed(0)
    x, y = batch(32)
    deep = dict(stages=(5, 5, 5))
    verdict = {name: probes.layer_stats(models.build(**deep, **cfg), x, y).health.word for name, cfg in {
        "resnet": {}, "plain naive": dict(residual=False, norm=False, init="naive")}.items()}
    assert verdict == {"resnet": "healthy", "plain naive": "vanishing"}
    torch.manual_seed(0)  # 30 unnormalised pre-activation blocks: first/last within 10x, every norm above 1e4
    unnormalised = probes.layer_stats(models.build(stages=(30,), widths=(16,), block="preact", norm=False), x, y)
    assert unnormalised.health.word == "exploding" and unnormalised.health.ratio > 0.1  # by scale, not by ratio
