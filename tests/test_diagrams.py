"""Diagrams are traced from the module: what is drawn is exactly what its forward pass calls."""
import html

import pytest
from torch import nn

from reslab import beyond, diagrams, models
from reslab.models import NetConfig


def block(stage=1, **config):
    """Block 0 of stage ``stage`` (0-based) of a small net: stage 1's first block changes the shape."""
    net = models.Net(NetConfig(stages=(1, 1), widths=(4, 8), **config))
    return net.layers()[stage][0]


def drawn_leaves(module):
    """The leaf modules a diagram must show: every one without children, except nn.Identity (an edge)."""
    return {name for name, m in module.named_modules()
            if name and not any(True for _ in m.children()) and not isinstance(m, nn.Identity)}


@pytest.mark.parametrize("config", [dict(), dict(shortcut="A"), dict(shortcut="C"), dict(block="preact"),
                                    dict(block="bottleneck"), dict(residual=False), dict(shortcut_scale=0.5),
                                    dict(branch_scale="channel", branch_scale_init=0.1),
                                    dict(block="bn-after-add"), dict(block="relu-before-add")])
def test_the_drawn_modules_are_the_blocks_leaf_modules_and_one_add_per_shortcut(config):
    for stage in (0, 1):
        b = block(stage, **config)
        g = diagrams.graph(b)
        assert g.modules() == drawn_leaves(b)
        assert g.labels().count("+") == (1 if config.get("residual", True) else 0)


def test_a_plain_block_has_no_add_and_a_single_path():
    g = diagrams.graph(block(0, residual=False))
    assert "+" not in g.labels()
    assert g.path("input", "conv", "BN", "ReLU", "conv", "BN", "ReLU", "output")


def test_option_a_zero_pads_and_option_b_projects_only_when_the_shape_changes():
    a = diagrams.graph(block(1, shortcut="A"))
    assert a.path("input", "subsample /2, zero-pad +4 ch", "+")
    assert not any(n.kind == "conv" and n.target.startswith("shortcut") for n in a.nodes)
    b_change, b_same = diagrams.graph(block(1, shortcut="B")), diagrams.graph(block(0, shortcut="B"))
    assert b_change.path("input", "conv 1x1, 4→8, /2", "BN", "+")
    assert b_same.modules() == {"conv1", "bn1", "act", "conv2", "bn2"}  # the identity shortcut is an edge
    assert ("x", "add", "identity, 4×32×32") in b_same.edges
    c_same = diagrams.graph(block(0, shortcut="C"))
    assert c_same.path("input", "conv 1x1, 4→4", "BN", "+")  # option C projects even when shapes agree


def test_post_and_pre_activation_orders():
    post = diagrams.graph(block(0))
    assert post.path("input", "conv", "BN", "ReLU", "conv", "BN", "+", "ReLU", "output")
    pre = diagrams.graph(block(0, block="preact"))
    assert pre.path("input", "BN", "ReLU", "conv", "BN", "ReLU", "conv", "+", "output")
    assert not pre.path("+", "ReLU")  # nothing after the add: a clean shortcut


def test_scales_sit_on_the_path_they_scale():
    g = diagrams.graph(block(0, shortcut_scale=0.5, branch_scale="scalar"))
    assert g.path("input", "× 0.5", "+")
    assert g.path("BN", "× learnable α, init 0", "+")


def test_a_mutated_module_gives_a_different_diagram():
    b = block(0)
    before = diagrams.draw(b).svg
    b.act = nn.Tanh()
    after = diagrams.draw(b)
    assert after.svg != before and "Tanh" in after.graph.labels() and "ReLU" not in after.graph.labels()
    b.conv2 = nn.Conv2d(4, 4, 5, padding=2, bias=False)
    assert "conv 5x5, 4→4" in diagrams.graph(b).labels()


def test_a_net_is_drawn_as_its_stages_with_their_shapes():
    g = diagrams.graph(NetConfig(stages=(3, 2), widths=(4, 8), in_channels=1))
    stages = [n.label for n in g.nodes if n.kind == "stage"]
    assert stages == ["layer1: 3 × BasicBlock", "layer2: 2 × BasicBlock"]
    assert g.path("input", "conv 3x3, 1→4", "BN", "ReLU", "layer1: 3 × BasicBlock", "layer2: 2 × BasicBlock",
                  "global avg-pool", "flatten", "fc 8→10", "output")
    assert ("layer2_0", "adaptive_avg_pool2d", "8×16×16") in g.edges  # stage 2 halves 32x32


def test_dense_resnext_and_span_blocks():
    dense = diagrams.graph(beyond.DenseLayer(8, 4))
    assert dense.path("input", "concat") and dense.path("BN", "ReLU", "conv 3x3, 8→4", "concat")
    assert ("cat", "output", "12×32×32") in dense.edges
    resnext = diagrams.graph(beyond.resnext().layer2[0])
    assert "conv 3x3, 16→16, /2, 4 groups" in resnext.labels()
    span = diagrams.graph(beyond.cross_layer_net(span=1).layer1[0])
    assert span.path("BN", "ReLU", "+", "ReLU")  # the span block's inner ReLU comes before the add
    densenet = diagrams.graph(beyond.DenseNet(blocks=(2, 2)))
    assert [n.label for n in densenet.nodes if n.kind == "stage"] == ["layer1: 2 × DenseLayer, Transition",
                                                                     "layer2: 2 × DenseLayer"]


def test_the_svg_is_standalone_and_saved(tmp_path):
    d = diagrams.draw(block(1, shortcut="A"), title="option A", path=tmp_path / "a.svg")
    text = (tmp_path / "a.svg").read_text()
    assert text == d.svg == d._repr_svg_() and text.lstrip().startswith("<?xml") and "<svg" in text
    assert "zero-pad" in html.unescape(text) and "option A" in text and "http://" not in text.replace("http://www.w3.org", "")


def test_bad_input_gets_a_one_line_error():
    with pytest.raises(TypeError, match="nn.Module or a NetConfig"):
        diagrams.graph("resnet20")

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ValueError, match="cannot trace Branchy"):
        diagrams.graph(Branchy())
    with pytest.raises(ValueError, match="pass another size"):
        diagrams.graph(nn.Sequential(nn.Conv2d(1, 2, 5)), size=3)  # a 5x5 kernel needs 5 pixels


def test_side_by_side_holds_each_svg_element_once():
    plain, residual = diagrams.draw(block(0, residual=False)), diagrams.draw(block(0))
    page = diagrams.side_by_side(plain, residual)._repr_html_()
    assert page.count("<svg") == 2 and "<?xml" not in page and "DOCTYPE" not in page
    assert residual.svg[residual.svg.index("<svg"):] in page
    # the text/plain a notebook stores beside the picture is one short line, not the SVG again
    assert repr(diagrams.side_by_side(plain)) == f"Row(Diagram({len(plain.graph.nodes)} nodes, {len(plain.graph.edges)} edges))"
