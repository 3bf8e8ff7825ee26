"""The shipped reference suite: files match the manifest, models load strictly and reproduce their
recorded accuracy, and the suite shows what the course claims (degradation, scaling)."""
import dataclasses
import json

import pytest
import torch

from reslab import checkpoints, data, reference
from reslab.models import NetConfig
from reslab.train import evaluate

MANIFEST = reference.manifest()["models"]


def test_manifest_covers_the_suite_for_every_seed_with_full_metadata():
    seeds = reference.manifest()["seeds"]
    assert set(MANIFEST) == {reference.key(n, s) for n in reference.SUITE for s in seeds}
    for name, entry in MANIFEST.items():
        for key in ("name", "config", "file", "sha256", "device", "torch", "seconds", "epochs", "train_loss",
                    "test_acc", "history"):
            assert key in entry, f"{name} lacks {key}"
        assert entry["epochs"] == len(entry["history"]) == reference.TRAINING.epochs
        assert reference.sha256(reference.FOLDER / entry["file"]) == entry["sha256"]
        assert NetConfig.from_dict(entry["config"]) == reference.SUITE[entry["name"]]
        assert reference.key(entry["name"], entry["seed"]) == name


@pytest.mark.parametrize("name", ["resnet20", "plain20", "preact-resnet20", "bottleneck-resnet29"])
def test_reference_models_reproduce_their_recorded_test_accuracy(name):
    model, entry = reference.load(name)
    _, acc = evaluate(model, data.digits().test)
    assert acc == pytest.approx(entry["test_acc"], abs=1 / 300)  # at most one digit of 300 differs


def test_the_residual_reference_reaches_98_percent():
    assert MANIFEST["resnet20"]["test_acc"] >= 0.98


def test_the_suite_shows_degradation():
    """He et al. 2015: the deepest plain net ends at a far higher *training* loss than the shallowest;
    residual nets of the same depths do not."""
    plain = [MANIFEST[f"plain{d}"]["train_loss"] for d in (8, 20, 32, 56)]
    resnet = [MANIFEST[f"resnet{d}"]["train_loss"] for d in (8, 20, 32, 56)]
    assert plain[-1] > 10 * plain[0] and plain[-1] > 0.5
    assert resnet[-1] < 3 * resnet[0] and resnet[-1] < 0.15
    assert all(r < p for r, p in zip(resnet[1:], plain[1:]))


def test_scaling_the_shortcut_hurts_and_scaling_the_branch_does_not():
    base = MANIFEST["resnet32"]["train_loss"]
    assert MANIFEST["resnet32-shortcut0.5"]["train_loss"] > 1.5 * base
    for name in ("resnet32-branch0.2", "resnet32-rezero", "resnet32-layerscale", "resnet32-zeroinit"):
        assert MANIFEST[name]["train_loss"] < MANIFEST["resnet32-shortcut0.5"]["train_loss"], name


def test_a_damaged_reference_file_is_refused(tmp_path):
    folder = tmp_path / "refs"
    folder.mkdir()
    entry = MANIFEST["resnet8"]
    raw = (reference.FOLDER / entry["file"]).read_bytes()
    (folder / entry["file"]).write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    (folder / "manifest.json").write_text(json.dumps({"models": {"resnet8": entry}}))
    with pytest.raises(checkpoints.CheckpointError, match="does not match the sha256"):
        reference.load("resnet8", folder)
    with pytest.raises(ValueError, match="no reference model 'resnet9'"):
        reference.load("resnet9", folder)
    with pytest.raises(ValueError, match="seed after '@' must be a non-negative integer"):
        reference.load("resnet8@x", folder)
    with pytest.raises(FileNotFoundError, match="python -m reslab.reference train"):
        reference.manifest(tmp_path)


def test_retraining_writes_a_loadable_entry_per_seed(tmp_path, monkeypatch):
    """The retrain command, on one small model for one epoch and two seeds, into a scratch folder."""
    one_epoch = dataclasses.replace(reference.DIGITS, training=dataclasses.replace(reference.TRAINING, epochs=1))
    monkeypatch.setitem(reference.SUITES, "digits", one_epoch)
    assert reference.main(["train", "--only", "resnet8", "--seeds", "0", "1", "--device", "cpu",
                           "--folder", str(tmp_path)]) == 0
    entries = reference.manifest(tmp_path)["models"]
    assert set(entries) == {"resnet8", "resnet8@1"}
    model, loaded = reference.load("resnet8", tmp_path)
    assert loaded["sha256"] == entries["resnet8"]["sha256"] and loaded["epochs"] == 1
    assert loaded["device"].startswith("cpu") and loaded["seed"] == 0
    other, second = reference.load("resnet8", tmp_path, seed=1)
    assert second == reference.load("resnet8@1", tmp_path)[1] and second["seed"] == 1
    assert not torch.equal(model.conv1.weight, other.conv1.weight)  # another seed is another net
    assert [e["seed"] for e in reference.seeds("resnet8", tmp_path)] == [0, 1]
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert isinstance(model(torch.zeros(1, 1, 8, 8)), torch.Tensor)
