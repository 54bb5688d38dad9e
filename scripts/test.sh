#!/usr/bin/env bash
# Install taco with its test extra into .venv/ (created if missing) and run the test suite, in parallel:
# one pytest-xdist worker per CPU core (at most 4), each worker and each bundle run it starts on one thread.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k losses -x`, or `-n 0` for one process.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" test
cd "$REPO_ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
python -m pytest -n auto --maxprocesses 4 --dist loadgroup "$@"
