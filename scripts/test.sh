#!/usr/bin/env bash
# Run the whole test suite in the project's environment (nbgrader needs the venv's bin/ on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "test: no .venv here; run 'bash scripts/setup.sh' first" >&2; exit 1; }
export PATH="$PWD/.venv/bin:$PATH" VIRTUAL_ENV="$PWD/.venv"
# TEST_WORKERS=2: two pytest-xdist workers, each test file whole on one (tests/conftest.py: which files share
# one), each torch process on one thread (tiny tensors; two workers share two cores). Not yet the default:
# it needs a clean full run or two on the 2-core CI machine to show the grader's time limits hold beside it.
if [ "${TEST_WORKERS:-1}" -gt 1 ]; then
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  set -- -n "$TEST_WORKERS" --dist loadfile "$@"
fi
exec python -m pytest "$@"
