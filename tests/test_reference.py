"""The shipped reference suite: files match the manifest, models load strictly and reproduce their
recorded accuracy, and the suite shows what the course claims (degradation, scaling)."""
import dataclasses
import json
import statistics

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


def test_the_residual_reference_reaches_95_percent():
    assert MANIFEST["resnet20"]["test_acc"] >= 0.95


def final_losses(name: str) -> list[float]:
    return [e["train_loss"] for e in reference.seeds(name)]


def test_the_suite_shows_degradation_on_every_seed():
    """He et al. 2015: the deepest plain net ends at a far higher *training* loss than the shallowest;
    residual nets of the same depths do not. Seed by seed, as the README states it."""
    for seed, (p8, p56, r8, r56) in enumerate(zip(*(final_losses(n) for n in ("plain8", "plain56", "resnet8", "resnet56")))):
        assert p56 > 10 * p8 and p56 > 0.5, seed
        assert r56 < 1.5 * r8 and r56 < 0.25, seed
    for depth in (20, 32, 56):
        assert all(r < p for r, p in zip(final_losses(f"resnet{depth}"), final_losses(f"plain{depth}")))


def test_scaling_the_shortcut_hurts_and_scaling_the_branch_does_not_on_every_seed():
    scaled = final_losses("resnet32-shortcut0.5")
    assert all(s > 1.5 * b for s, b in zip(scaled, final_losses("resnet32")))
    for name in ("resnet32-branch0.2", "resnet32-rezero", "resnet32-layerscale", "resnet32-zeroinit"):
        assert all(b < s for b, s in zip(final_losses(name), scaled)), name


def test_the_readme_tables_and_degradation_line_are_the_shipped_suites():
    readme = (reference.FOLDER.parents[1] / "README.md").read_text()
    for suite in reference.SUITES.values():
        try:
            table = reference.table(suite.folder)
        except FileNotFoundError:  # a suite whose training has not started: the README says so
            table = "(no runs yet)"
        assert f"<!-- table: {suite.name} -->\n{table}\n" in readme, \
            f"README's {suite.name} table is stale: python -m reslab.reference --suite {suite.name} table"
    mean = lambda n: statistics.fmean(final_losses(n))
    line = (f"the 56-layer plain net ends at a training loss {mean('plain56') / mean('plain8'):.1f}x that of the "
            f"8-layer plain net; the 56-layer residual net's is {mean('resnet56') / mean('resnet8'):.2f}x the "
            "8-layer one's (means over the seeds")
    assert line in " ".join(readme.split()), line


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


def run_with_losses(losses: list[float]) -> dict:
    return {"history": [{"train_eval_loss": loss} for loss in losses]}


def test_converged_suites_record_eval_mode_training_loss_and_their_budget():
    for suite in (reference.DIGITS_CONVERGED, reference.MNIST28_CONVERGED):
        if not (suite.folder / "manifest.json").is_file():
            continue
        steps = suite.training.epochs * -(-len(suite.dataset().train) // suite.training.batch_size)
        for name, entry in reference.manifest(suite.folder)["models"].items():
            assert entry["epochs"] == suite.training.epochs and entry["steps"] == steps, name
            assert NetConfig.from_dict(entry["config"]) == suite.models[entry["name"]], name
            assert entry["train_eval_loss"] == entry["history"][-1]["train_eval_loss"], name
            assert reference.sha256(suite.folder / entry["file"]) == entry["sha256"], name
            assert reference.plateaued(entry) is not None, name


def test_plateau_criterion_reads_the_last_quarter_of_the_eval_mode_training_loss():
    flat_at_chance = run_with_losses([2.31, 2.30, 2.305, 2.302, 2.303, 2.301, 2.30, 2.302])
    fitted = run_with_losses([1.0, 0.3, 0.1, 0.03, 0.01, 0.004, 0.003, 0.002])
    still_falling = run_with_losses([2.0, 1.6, 1.3, 1.0, 0.8, 0.6, 0.45, 0.3])
    assert reference.plateaued(flat_at_chance) and reference.plateaued(fitted)
    assert not reference.plateaued(still_falling)  # 0.6 -> 0.3 over the last quarter
    assert reference.plateaued({"history": [{"train_loss": 0.1}] * 8}) is None  # an older run: not known


def test_parallel_training_records_each_run_and_resumes_without_retraining(tmp_path, monkeypatch):
    one_epoch = dataclasses.replace(reference.DIGITS, training=dataclasses.replace(reference.TRAINING, epochs=1))
    logged = []
    first = reference.train_suite(["resnet8"], "cpu", tmp_path, logged.append, one_epoch, seeds=(0, 1), workers=2)
    assert set(first["models"]) == {"resnet8", "resnet8@1"} and len(logged) == 2
    for entry in first["models"].values():
        assert entry["steps"] == -(-len(data.digits().train) // 64) and entry["epochs"] == 1
        assert 0 < entry["train_eval_loss"] < 5 and 0 <= entry["train_eval_acc"] <= 1
    again = reference.train_suite(["resnet8"], "cpu", tmp_path, logged.append, one_epoch, seeds=(0, 1, 2),
                                  missing=True)
    assert len(logged) == 3 and set(again["models"]) == {"resnet8", "resnet8@1", "resnet8@2"}  # only seed 2 ran
    assert again["models"]["resnet8"]["sha256"] == first["models"]["resnet8"]["sha256"]
    with pytest.raises(ValueError, match="workers must be at least 1"):
        reference.train_suite(["resnet8"], suite=one_epoch, folder=tmp_path, workers=0)


def converged_line() -> str:
    """README's sentence on what the converged digits runs show so far, from their manifest."""
    suite = reference.DIGITS_CONVERGED
    runs = lambda name: reference.seeds(name, suite.folder)
    fitted = [f"plain{d}" for d in (8, 20, 32) if all(e["train_eval_loss"] < 0.02 and reference.plateaued(e)
                                                      for e in runs(f"plain{d}"))]
    p56 = [e["train_eval_loss"] for e in runs("plain56")]
    r56 = [e["train_eval_loss"] for e in runs("resnet56")]
    still = sum(not reference.plateaued(e) for e in runs("plain56"))
    return (f"{', '.join(fitted)} fit the training set (eval-mode loss below 0.02, plateaued, on each of "
            f"{len(runs('plain32'))} seeds); plain56 has not plateaued on {still} of {len(p56)} seeds and ends at "
            f"{statistics.fmean(p56):.2f} against resnet56's {statistics.fmean(r56):.4f}")


def test_the_readme_says_what_the_converged_runs_show():
    line = converged_line()
    assert line in " ".join((reference.FOLDER.parents[1] / "README.md").read_text().split()), line
