"""The training command line: it trains, checkpoints, resumes, and explains every mistake."""
import json
import subprocess
import sys

import pytest

from reslab import checkpoints, cli


def run(*args):
    return subprocess.run([sys.executable, "-m", "reslab", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_train_a_named_model_with_checkpoint_and_metrics(tmp_path):
    result = run("resnet8", "--epochs", "1", "--device", "cpu", "--checkpoint", tmp_path / "r8.pt",
                 "--metrics", tmp_path / "m.json")
    assert result.returncode == 0, result.stderr
    assert "epoch   1" in result.stdout and "parameters" in result.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert len(metrics) == 1 and 0 < metrics[0]["test_acc"] <= 1
    model, meta = checkpoints.from_checkpoint(tmp_path / "r8.pt")
    assert meta["epochs"] == 1 and model.config.stages == (1, 1, 1)


def test_config_file_and_resume(tmp_path):
    (tmp_path / "net.json").write_text(json.dumps({"model": {"stages": [1], "widths": [8], "block": "preact"},
                                                   "train": {"lr": 0.003}}))
    assert cli.main(["--config", str(tmp_path / "net.json"), "--epochs", "1", "--device", "cpu",
                     "--checkpoint", str(tmp_path / "c.pt")]) == 0
    assert cli.main(["--config", str(tmp_path / "net.json"), "--epochs", "2", "--device", "cpu",
                     "--resume", str(tmp_path / "c.pt"), "--checkpoint", str(tmp_path / "c.pt")]) == 0
    _, meta = checkpoints.from_checkpoint(tmp_path / "c.pt")
    assert meta["epochs"] == 2 and meta["train_config"]["lr"] == 0.003


@pytest.mark.parametrize("args, message", [
    ([], "give a model NAME or --config FILE"),
    (["resnet21"], "unknown model 'resnet21'"),
    (["resnet8", "--epochs", "0"], "epochs must be a positive integer"),
    (["resnet8", "--optimizer", "lbfgs"], "optimizer='lbfgs'"),
    (["resnet8", "--dataset", "cifar10"], "pass root="),
    (["resnet8", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--config", "missing.json"], "does not exist"),
    (["resnet8", "--resume", "missing.pt"], "does not exist"),
])
def test_errors_are_one_clear_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:  # any other exception would be a traceback for the user
        cli.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [("{not json", "not valid JSON"),
                                              ('{"model": {"blocks": 3}}', "unknown NetConfig field"),
                                              ('{"optim": {}}', "keys 'model' and/or 'train'")])
def test_bad_config_files(tmp_path, content, message, capsys):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--config", str(tmp_path / "bad.json"), "--epochs", "1"])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
