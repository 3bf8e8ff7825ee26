"""The training loop: it learns, it is reproducible, checkpoints round-trip and resume exactly."""
import dataclasses
import math

import pytest
import torch

from reslab import checkpoints, data, models
from reslab.train import TrainConfig, choose_device, evaluate, fit, random_shift


@pytest.fixture(scope="module")
def digits():
    return data.digits()


def small_net(**overrides):
    return models.build(stages=(1, 1), widths=(8, 16), **overrides)


FAST = TrainConfig(epochs=3, batch_size=64, lr=3e-3, device="cpu", seed=1)


def test_a_short_run_lowers_the_loss_and_beats_chance(digits):
    net = small_net()
    before, _ = evaluate(net, digits.test)
    history = fit(net, digits, FAST)
    assert [m.epoch for m in history] == [1, 2, 3]
    assert history[-1].train_loss < history[0].train_loss < before
    assert history[-1].test_acc > 0.6
    assert history[-1].device.startswith("cpu") and all(m.seconds > 0 for m in history)


def test_same_seed_same_run(digits):
    cfg = dataclasses.replace(FAST, epochs=1, augment=1, schedule="cosine", deterministic=True)
    torch.manual_seed(0)
    a = fit(small_net(), digits, cfg)
    assert torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(0)
    b = fit(small_net(), digits, cfg)
    assert a[-1].train_loss == b[-1].train_loss and a[-1].test_acc == b[-1].test_acc


def test_checkpoint_round_trip_and_metadata(digits, tmp_path):
    net = small_net()
    history = fit(net, digits, dataclasses.replace(FAST, epochs=1), checkpoint=tmp_path / "run.pt")
    rebuilt, meta = checkpoints.from_checkpoint(tmp_path / "run.pt")
    for key, value in net.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value)
    assert meta["config"] == net.config.to_dict()
    assert meta["seed"] == 1 and meta["torch"] == str(torch.__version__) and meta["epochs"] == 1
    assert meta["final"]["test_acc"] == history[-1].test_acc and meta["seconds"] > 0
    assert meta["device"].startswith("cpu")


def test_resume_continues_exactly_where_it_stopped(digits, tmp_path):
    cfg = dataclasses.replace(FAST, epochs=2, augment=1, schedule="cosine")
    torch.manual_seed(0)
    straight = fit(small_net(), digits, cfg)
    torch.manual_seed(0)

    class Interrupted(Exception):
        pass

    def stop_after_first_epoch(metrics):
        raise Interrupted

    with pytest.raises(Interrupted):  # a run killed after epoch 1 of 2
        fit(small_net(), digits, cfg, checkpoint=tmp_path / "half.pt", on_epoch=stop_after_first_epoch)
    resumed = fit(small_net(), digits, cfg, resume=tmp_path / "half.pt")
    assert len(resumed) == 2
    assert resumed[-1].train_loss == pytest.approx(straight[-1].train_loss, rel=1e-6)
    assert resumed[-1].test_acc == straight[-1].test_acc


def test_broken_checkpoints_give_clear_errors(tmp_path, digits):
    with pytest.raises(checkpoints.CheckpointError, match="does not exist"):
        checkpoints.load(tmp_path / "nope.pt")
    net = small_net()
    fit(net, digits, dataclasses.replace(FAST, epochs=1), checkpoint=tmp_path / "run.pt")
    raw = (tmp_path / "run.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(checkpoints.CheckpointError, match="truncated"):
        checkpoints.load(tmp_path / "cut.pt")
    with pytest.raises(checkpoints.CheckpointError, match=r"missing: \['layer3"):
        checkpoints.load(tmp_path / "run.pt", model=models.build(stages=(1, 1, 1), widths=(8, 16, 32)))
    with pytest.raises(checkpoints.CheckpointError, match="wrong shape"):
        checkpoints.load(tmp_path / "run.pt", model=models.build(stages=(1, 1), widths=(8, 32)))


def test_random_shift_moves_images_by_at_most_the_padding():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    shifted = random_shift(x, 1, torch.Generator().manual_seed(0))
    rows, cols = (shifted[:, 0] == 1).nonzero()[:, 1], (shifted[:, 0] == 1).nonzero()[:, 2]
    assert shifted.shape == x.shape and len(rows) == 64
    assert set(rows.tolist()) == {3, 4, 5} and set(cols.tolist()) == {3, 4, 5}


def test_device_choice_and_errors():
    assert choose_device("cpu").type == "cpu"
    assert choose_device().type == ("cuda" if torch.cuda.is_available() else
                                    "mps" if torch.backends.mps.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            choose_device("cuda")


def test_the_mixed_precision_path_trains(digits):
    """The CUDA fast path (bf16 autocast + channels_last) forced on here, so CPU runs the same code; on a GPU
    machine the default device makes it the CUDA path for real."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net, twin = small_net(), small_net()
    twin.load_state_dict(net.state_dict())
    history = fit(net, digits, dataclasses.replace(FAST, epochs=2, amp=True, device=device))
    full = fit(twin, digits, dataclasses.replace(FAST, epochs=2, amp=False, device=device))
    assert history[-1].device.startswith(device)
    assert history[-1].test_loss < 0.8 * math.log(10)  # it learns: well below chance after two epochs
    assert abs(history[-1].test_loss - full[-1].test_loss) < 0.25 * full[-1].test_loss  # as float32 does
    assert next(net.parameters()).dtype == torch.float32  # autocast never changes the stored weights
    assert net.conv1.weight.is_contiguous()  # channels_last is undone after training


@pytest.mark.parametrize("overrides, message", [
    (dict(optimizer="rmsprop"), "optimizer='rmsprop'"), (dict(epochs=0), "epochs"),
    (dict(batch_size=1.5), "batch_size"), (dict(lr=0), "lr"), (dict(schedule="step"), "schedule"),
    (dict(augment=-1), "augment")])
def test_bad_training_configs(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)
