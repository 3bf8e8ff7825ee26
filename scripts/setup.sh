#!/usr/bin/env bash
# Set up a fresh machine: system packages the grader and the browser tests need, then .venv with the exact
# versions of requirements.lock and this project installed in editable mode. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(bubblewrap chromium graphviz npm)
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v chromium >/dev/null || missing+=(chromium)
command -v dot >/dev/null || missing+=(graphviz)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install them (Debian/Ubuntu: sudo apt-get install ${APT_PACKAGES[*]}) and run this again." >&2
    echo "setup: bubblewrap sandboxes the grader; chromium runs the widget browser test; graphviz draws the course's diagrams; npm installs the course site's MathJax." >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY' || { echo "setup: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 11))  # requirements.lock's numpy and scipy need 3.11
PY
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip's notes about the machine's unused local index folders are noise; real errors still show and stop us
pip_install() { .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2); }
pip_install -r requirements.lock
pip_install --no-deps -e .
# the course site's MathJax at the version website/package-lock.json pins (python -m website build copies it)
(cd website && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
.venv/bin/python -c "import reslab, torch, nbgrader, ipywidgets, playwright, myst_nb" \
  || { echo "setup: the environment did not install completely; see the pip messages above" >&2; exit 1; }
echo "setup: done. Activate with 'source .venv/bin/activate'; run the tests with 'bash scripts/test.sh'."
