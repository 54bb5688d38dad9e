# Shared by demo.sh and test.sh: create or reuse .venv/ in the repository root and install taco into it.
# torch is pinned in the same pip command: an unpinned torch pulls several GB of CUDA packages.
# Usage: source scripts/_venv.sh [EXTRA]   (EXTRA: optional pip extra, e.g. "test")
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
if [[ ! -x "$REPO_ROOT/.venv/bin/python" ]]; then
    echo "[taco] creating $REPO_ROOT/.venv"
    "$PYTHON" -m venv "$REPO_ROOT/.venv"
fi
# shellcheck disable=SC1091
source "$REPO_ROOT/.venv/bin/activate"
EXTRA="${1:-}"
TARGET="$REPO_ROOT"
[[ -n "$EXTRA" ]] && TARGET="$REPO_ROOT[$EXTRA]"
echo "[taco] installing taco${EXTRA:+[$EXTRA]} with torch==$TORCH_VERSION"
python -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" -e "$TARGET"
