"""Chapter 4's Transformer section: the row-reading encoder and its shipped post-LN / pre-LN runs."""
import pytest
import torch

from reslab import sequence
from reslab.claims import spread
from reslab.train import TrainConfig


def test_the_placement_is_where_pytorch_puts_the_layernorm():
    x = torch.randn(5, 1, 8, 8)
    for placement, norm_first in sequence.PLACEMENTS.items():
        net = sequence.RowTransformer(3, placement)
        assert [layer.norm_first for layer in net.encoder.layers] == [norm_first] * 3
        assert (net.encoder.norm is not None) == norm_first  # pre-LN normalises the sum once, at the top
        assert net(x).shape == (5, 10)
    with pytest.raises(ValueError, match="placement"):
        sequence.RowTransformer(3, "sandwich-LN")
    with pytest.raises(ValueError, match="layers"):
        sequence.RowTransformer(0)


def test_the_shipped_runs_are_the_experiment_the_library_defines():
    results = sequence.shipped()
    assert results["layers"] == sequence.LAYERS
    assert TrainConfig(**{**results["training"], "device": None}) == sequence.TRAINING
    for placement in sequence.PLACEMENTS:
        runs = results["runs"][placement]
        assert [r["seed"] for r in runs] == list(sequence.SEEDS)
        assert all(len(r["history"]) == sequence.TRAINING.epochs for r in runs)
    post, pre = ([r["history"][-1]["train_eval_loss"] for r in results["runs"][p]] for p in ("post-LN", "pre-LN"))
    assert all(b < a for a, b in zip(post, pre)), (post, pre)  # chapter 4's ordering, seed by seed
    assert spread(pre).mean < 0.8 * spread(post).mean


def test_retraining_one_seed_reproduces_its_shipped_history(tmp_path):
    shipped = sequence.shipped()["runs"]["pre-LN"][0]
    again = sequence.train_placements(seeds=(0,))["runs"]["pre-LN"][0]
    for old, new in zip(shipped["history"], again["history"]):
        assert new["train_eval_loss"] == pytest.approx(old["train_eval_loss"], rel=1e-3)
