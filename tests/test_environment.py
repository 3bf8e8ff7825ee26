"""One source of truth for versions: requirements.lock feeds scripts/setup.sh and environment.yml, and the
README's Quick start is exactly what CI runs."""
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def lock():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock line {line!r} is not pinned with =="
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_environment_yml_installs_the_lock_and_the_project():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip_section == ["-r requirements.lock", "-e ."]
    assert "-r requirements.lock" in (ROOT / "scripts" / "setup.sh").read_text()


def test_the_venv_holds_exactly_the_locked_versions():
    pins = lock()
    assert pins["torch"] == "2.13.0"
    for name, version in pins.items():
        installed = metadata.version(name)
        assert installed.split("+")[0] == version, f"{name}: installed {installed}, locked {version}"


def test_project_requirements_are_satisfied_by_the_lock():
    pins = lock()
    requirements = [Requirement(r) for r in metadata.requires("reslab")]
    for req in requirements:
        assert req.name.lower() in pins, f"{req.name} is a dependency but not locked"
        assert req.specifier.contains(pins[req.name.lower()]), f"{req.name}{req.specifier} vs {pins[req.name.lower()]}"


def test_the_pip_section_resolves_to_the_installed_set():
    """pip, asked to install environment.yml's pip section here, finds nothing to change."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "-r",
                             str(ROOT / "requirements.lock")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Would install" not in result.stdout, result.stdout


def test_quick_start_is_two_commands_and_ci_runs_exactly_them():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", quick, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands == ["bash scripts/setup.sh", "bash scripts/test.sh"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == commands
