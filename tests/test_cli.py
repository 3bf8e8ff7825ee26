"""The training command line: it trains, checkpoints, resumes, and explains every mistake."""
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

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


def imported_modules(argv: list[str], cwd=None, env: dict | None = None) -> tuple[subprocess.CompletedProcess,
                                                                                   set[str]]:
    """Run ``argv`` with Python's import profiler on; the result and the names of every module it imported."""
    env = {**os.environ, **(env or {}), "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)
    names = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, names


@pytest.mark.parametrize("argv", [[sys.executable, "-m", "reslab", "--help"],
                                  [str(Path(sys.executable).parent / "reslab-train"), "--help"]])
def test_help_answers_without_importing_torch(argv):
    done, modules = imported_modules(argv)
    assert done.returncode == 0 and "usage: reslab-train" in done.stdout
    assert "torch" not in modules and "numpy" not in modules, sorted(m for m in modules if "torch" in m)[:5]
    text = done.stdout
    assert "TrainConfig." not in text and "``" not in text  # meanings, not names, and no raw reST
    assert "(default: 10)" in text and "(default: adam)" in text and "(default: 0.001)" in text


def test_stated_defaults_are_the_training_defaults():
    from reslab.train import TrainConfig
    defaults = TrainConfig()
    assert {name: getattr(defaults, name) for name in cli.TRAIN_FLAGS} == \
        {name: default for name, (_, default, _) in cli.TRAIN_FLAGS.items()}


def test_progress_bar_and_epoch_lines_never_share_a_line(tmp_path):
    """In a terminal (a pty of 100 columns) the bar is drawn on stderr with carriage returns; every epoch
    line must start a line of its own, never continue a bar's."""
    (tmp_path / "net.json").write_text(json.dumps({"model": {"stages": [1], "widths": [8]}}))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", "CI")}  # a bar, as for a person
    child = subprocess.Popen([sys.executable, "-m", "reslab", "--config", "net.json", "--epochs", "2", "--device",
                              "cpu", "--batch-size", "256"], stdin=slave, stdout=slave, stderr=slave, env=env,
                             cwd=tmp_path)
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert child.wait(timeout=300) == 0, screen.decode()[-2000:]
    text = screen.decode()
    assert "train on cpu" in text and "%|" in text  # the bar was drawn
    starts = [text[:match.start()].rstrip(" ")[-1:] for match in re.finditer("epoch +[12] ", text)]
    assert len(starts) == 2 and set(starts) <= {"\r", "\n"}, text[-1500:]
