#!/usr/bin/env bash
# Install taco with its test extra into .venv/ (created if missing) and run the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k losses -x`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" test
cd "$REPO_ROOT"
python -m pytest "$@"
