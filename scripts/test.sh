#!/usr/bin/env bash
# Run the whole test suite in the project's environment (nbgrader needs the venv's bin/ on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "test: no .venv here; run 'bash scripts/setup.sh' first" >&2; exit 1; }
export PATH="$PWD/.venv/bin:$PATH" VIRTUAL_ENV="$PWD/.venv"
exec python -m pytest "$@"
