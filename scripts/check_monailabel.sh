#!/usr/bin/env bash
# Check that bundles/taco_seg_finetune serves segmentations from a real MONAI Label server
# (monailabel 0.8.5, its `monaibundle` sample app), on loopback only.
#
#   bash scripts/check_monailabel.sh [MODEL]
#
# This script makes the venv (monailabel 0.8.5 + taco, CPU torch pinned); the check itself is
# `python -m taco_tools.monailabel_check run` in that venv: it builds an app dir from the monaibundle
# sample app with the bundle (trained weights + the demo profile merged into inference.json), stacks
# test subjects' modality NIfTIs into one 4-D NIfTI per case (a MONAI Label datastore holds one image
# per case), starts the server, POSTs /infer/taco_seg_finetune for each case and checks the returned
# label volumes.
#
# Environment (all optional):
#   VENV_ML      venv to create or reuse (default: $REPO/.venv-monailabel; made self-ignoring for git)
#   PYTHON       interpreter for a new venv (default: python3; the local CPU torch wheel is cp311)
#   TORCH_VERSION  torch to pin in the install (default 2.13.0, a local CPU wheel)
#   FORCE_INSTALL=1  run the pip install even if the venv already imports monailabel 0.8.5 and taco
#   FUSION       early (default) or late: how a missing MODEL is trained (the bundle's `fusion` key); the
#                fusion served (and a late model's `fusion_mode`) is read from the weights
#   FUSION_MODE  mean (default), mean_var or modality_aware: a late MODEL trained here
#   MODEL        trained seg weights (default /tmp/demo/seg/models/model.pt; the first argument wins)
#   DATA         demo data with datalist.json (default /tmp/demo/data)
#   N_CASES      cases to put in the datastore and infer (default 2)
#   ML_PORT      server port (default: a free port on 127.0.0.1)
#   WAIT_TIMEOUT seconds to wait for the server to list the model (default 300)
#   INFER_TIMEOUT  seconds allowed per inference request (default 900)
#   KEEP_WORK=1  keep the temp work dir (app, studies, server log, results) also after a PASS
# If MODEL is missing it is trained briefly with the demo profile (and DATA generated if missing).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_ML="${VENV_ML:-$REPO/.venv-monailabel}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
MONAILABEL_VERSION=0.8.5

log() { echo "[check_monailabel] $*"; }
fail() { echo "[check_monailabel] FAIL $*"; exit 1; }

# ---------------------------------------------------------------------------------------------------
# The venv: monailabel 0.8.5 + taco (editable), CPU torch pinned.
#
# `pip install torch==X monailabel==0.8.5 -e REPO` resolves, but does not give a working server:
#  - monailabel needs `sam2` (an sdist that build-requires torch: its isolated build env would install
#    an unpinned, i.e. CUDA, torch from PyPI: GBs), `mlflow` (via monai[mlflow]; ~40 more packages) and `numpymaxflow`/`pydicom-seg`,
#    which pin numpy<2 (the bundle is built against numpy 2);
#  - the resolver picks pydicom 3, but pydicom-seg 0.4.1 (imported by monailabel's /infer endpoint)
#    needs pydicom<3 (`pydicom._storage_sopclass_uids`), and dicomweb-client>=0.60 needs pydicom>=3,
#    so both are pinned back (pydicom 2.4.x, dicomweb-client 0.59.x);
#  - the only torchvision for torch 2.13 is the PyPI (CUDA) wheel; its _C ops need libtorch_cuda, so
#    `import torchvision` fails on the CPU torch ("operator torchvision::nms does not exist"); the check
#    then gives the server a stub torchvision.utils (see taco_tools.monailabel_check).
# So: one pip command installs torch (pinned), taco (-e) and the packages monailabel imports when the
# server starts and infers; a second one adds monailabel and pydicom-seg with --no-deps (it cannot
# pull torch). Left out: sam2 (the app then skips its SAM inferers), mlflow (training tracking only),
# numpymaxflow (scribbles), pynetdicom, ninja, gdown, lmdb, openslide, torchvision.
# ---------------------------------------------------------------------------------------------------
if [[ ! -x "$VENV_ML/bin/python" ]]; then
    log "creating venv $VENV_ML"
    "$PYTHON" -m venv "$VENV_ML"
fi
# the repo's .gitignore covers .venv/ only: make this venv ignore itself (as `python -m venv` does from 3.13)
[[ -f "$VENV_ML/.gitignore" ]] || echo '*' > "$VENV_ML/.gitignore"
PY="$VENV_ML/bin/python"

if [[ "${FORCE_INSTALL:-0}" != 1 ]] && "$PY" -c "
import monailabel, taco, taco_tools.monailabel_check, torch
assert monailabel.__version__ == '$MONAILABEL_VERSION', monailabel.__version__
assert torch.__version__.split('+')[0] == '$TORCH_VERSION', torch.__version__
" >/dev/null 2>&1; then
    log "reusing $VENV_ML (monailabel $MONAILABEL_VERSION, taco, torch $TORCH_VERSION already installed)"
else
    log "installing torch==$TORCH_VERSION, taco (-e) and monailabel==$MONAILABEL_VERSION into $VENV_ML"
    PIP_LOG="$(mktemp "${TMPDIR:-/tmp}/check_monailabel_pip.XXXXXX")"
    start=$SECONDS
    "$PY" -m pip install --disable-pip-version-check "torch==$TORCH_VERSION" -e "$REPO" \
        "fastapi>=0.110.2" "uvicorn>=0.29.0" "pydantic>=2.7.0" "pydantic-settings>=2.2.1" \
        "python-dotenv>=1.0.1" "python-multipart>=0.0.9" "httpx>=0.27.0" "schedule>=1.2.1" \
        "timeloop>=1.0.2" "expiringdict>=1.2.2" "expiring_dict>=1.1.0" "cachetools>=5.3.3" \
        "watchdog>=4.0.0" "pydicom>=2.4.4,<3" "dicomweb-client>=0.59.1,<0.60" "girder-client>=3.2.3" \
        "pynrrd>=1.0.0" "pyyaml>=6.0.1" "filelock>=3.11.0" "passlib>=1.7.4" "pyjwt>=2.8.0" \
        "bcrypt>=4.1.2" "shapely>=2.0.4" "requests>=2.31.0" "requests-toolbelt>=1.0.0" \
        "urllib3>=2.2.1" "google-auth>=2.29.0" SimpleITK "jsonschema>=3.2.0" scikit-image psutil \
        pillow tqdm > "$PIP_LOG" 2>&1 || { tail -n 40 "$PIP_LOG"; fail "pip install (deps); log: $PIP_LOG"; }
    "$PY" -m pip install --disable-pip-version-check --no-deps "monailabel==$MONAILABEL_VERSION" \
        "pydicom-seg==0.4.1" >> "$PIP_LOG" 2>&1 || { tail -n 40 "$PIP_LOG"; fail "pip install monailabel; log: $PIP_LOG"; }
    rm -f "$PIP_LOG"
    log "install took $((SECONDS - start)) s"
fi

ARGS=(--model "${1:-${MODEL:-/tmp/demo/seg/models/model.pt}}" --data "${DATA:-/tmp/demo/data}"
      --fusion "${FUSION:-early}" --fusion_mode "${FUSION_MODE:-mean}" --cases "${N_CASES:-2}" --wait_timeout "${WAIT_TIMEOUT:-300}" --infer_timeout "${INFER_TIMEOUT:-900}")
[[ -n "${ML_PORT:-}" ]] && ARGS+=(--port "$ML_PORT")
[[ "${KEEP_WORK:-0}" == 1 ]] && ARGS+=(--keep_work)
cd "$REPO"
exec "$PY" -m taco_tools.monailabel_check run "${ARGS[@]}"
