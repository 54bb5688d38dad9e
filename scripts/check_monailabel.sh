#!/usr/bin/env bash
# Check that bundles/taco_seg_finetune serves segmentations from a real MONAI Label server
# (monailabel 0.8.5, its `monaibundle` sample app), on loopback only.
#
#   bash scripts/check_monailabel.sh [MODEL]
#
# Steps: install monailabel into a separate venv; build an app dir from the monaibundle sample app with
# the bundle (trained weights + the demo profile merged into inference.json) under model/; stack test
# subjects' 4 modality NIfTIs into one 4-D NIfTI per case (a MONAI Label datastore holds one image per
# case); start the server; POST /infer/taco_seg_finetune for each case; check the returned label volumes.
#
# Environment (all optional):
#   VENV_ML      venv to create or reuse (default: $REPO/.venv-monailabel; made self-ignoring for git)
#   PYTHON       interpreter for a new venv (default: python3; the local CPU torch wheel is cp311)
#   TORCH_VERSION  torch to pin in the install (default 2.13.0, a local CPU wheel)
#   FORCE_INSTALL=1  run the pip install even if the venv already imports monailabel 0.8.5 and taco
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
BUNDLE_NAME=taco_seg_finetune
BUNDLE_SRC="$REPO/bundles/$BUNDLE_NAME"
VENV_ML="${VENV_ML:-$REPO/.venv-monailabel}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
MONAILABEL_VERSION=0.8.5
MODEL="${1:-${MODEL:-/tmp/demo/seg/models/model.pt}}"
DATA="${DATA:-/tmp/demo/data}"
N_CASES="${N_CASES:-2}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-300}"
INFER_TIMEOUT="${INFER_TIMEOUT:-900}"
KEEP_WORK="${KEEP_WORK:-0}"

T0=$SECONDS
log() { echo "[check_monailabel] $*"; }
fail() { echo "[check_monailabel] FAIL $* ($((SECONDS - T0)) s)"; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/check_monailabel.XXXXXX")"
SERVER_PID=""
STATUS=fail
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        # the server runs in its own session (setsid), so its process group id is its pid
        kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 20); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    fi
    if [[ "$STATUS" == pass && "$KEEP_WORK" != 1 ]]; then
        rm -rf "$WORK"
    else
        echo "[check_monailabel] work dir kept: $WORK (server log: $WORK/server.log)"
    fi
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------------
# 1. venv with monailabel 0.8.5 + taco (editable), CPU torch pinned.
#
# `pip install torch==X monailabel==0.8.5 -e REPO` resolves, but does not give a working server:
#  - monailabel needs `sam2` (an sdist that build-requires torch: its isolated build env would install
#    an unpinned, i.e. CUDA, torch from PyPI: GBs), `mlflow` (via monai[mlflow]; ~40 more packages) and `numpymaxflow`/`pydicom-seg`,
#    which pin numpy<2 (the bundle is built against numpy 2);
#  - the resolver picks pydicom 3, but pydicom-seg 0.4.1 (imported by monailabel's /infer endpoint)
#    needs pydicom<3 (`pydicom._storage_sopclass_uids`), and dicomweb-client>=0.60 needs pydicom>=3,
#    so both are pinned back (pydicom 2.4.x, dicomweb-client 0.59.x);
#  - the only torchvision for torch 2.13 is the PyPI (CUDA) wheel; its _C ops need libtorch_cuda, so
#    `import torchvision` fails on the CPU torch ("operator torchvision::nms does not exist").
# So: one pip command installs torch (pinned), taco (-e) and the packages monailabel imports when the
# server starts and infers; a second one adds monailabel and pydicom-seg with --no-deps (it cannot
# pull torch). Left out: sam2 (the app then skips its SAM inferers), mlflow (training tracking only),
# numpymaxflow (scribbles), pynetdicom, ninja, gdown, lmdb, openslide, torchvision (see step 5).
# ---------------------------------------------------------------------------------------------------
if [[ ! -x "$VENV_ML/bin/python" ]]; then
    log "creating venv $VENV_ML"
    "$PYTHON" -m venv "$VENV_ML"
fi
# the repo's .gitignore covers .venv/ only: make this venv ignore itself (as `python -m venv` does from 3.13)
[[ -f "$VENV_ML/.gitignore" ]] || echo '*' > "$VENV_ML/.gitignore"
PY="$VENV_ML/bin/python"

if [[ "${FORCE_INSTALL:-0}" != 1 ]] && "$PY" -c "
import monailabel, taco, torch
assert monailabel.__version__ == '$MONAILABEL_VERSION', monailabel.__version__
assert torch.__version__.split('+')[0] == '$TORCH_VERSION', torch.__version__
" >/dev/null 2>&1; then
    log "reusing $VENV_ML (monailabel $MONAILABEL_VERSION, taco, torch $TORCH_VERSION already installed)"
else
    log "installing torch==$TORCH_VERSION, taco (-e) and monailabel==$MONAILABEL_VERSION into $VENV_ML"
    start=$SECONDS
    "$PY" -m pip install --disable-pip-version-check "torch==$TORCH_VERSION" -e "$REPO" \
        "fastapi>=0.110.2" "uvicorn>=0.29.0" "pydantic>=2.7.0" "pydantic-settings>=2.2.1" \
        "python-dotenv>=1.0.1" "python-multipart>=0.0.9" "httpx>=0.27.0" "schedule>=1.2.1" \
        "timeloop>=1.0.2" "expiringdict>=1.2.2" "expiring_dict>=1.1.0" "cachetools>=5.3.3" \
        "watchdog>=4.0.0" "pydicom>=2.4.4,<3" "dicomweb-client>=0.59.1,<0.60" "girder-client>=3.2.3" \
        "pynrrd>=1.0.0" "pyyaml>=6.0.1" "filelock>=3.11.0" "passlib>=1.7.4" "pyjwt>=2.8.0" \
        "bcrypt>=4.1.2" "shapely>=2.0.4" "requests>=2.31.0" "requests-toolbelt>=1.0.0" \
        "urllib3>=2.2.1" "google-auth>=2.29.0" SimpleITK "jsonschema>=3.2.0" scikit-image psutil \
        pillow tqdm > "$WORK/pip.log" 2>&1 || { tail -n 40 "$WORK/pip.log"; fail "pip install (deps)"; }
    "$PY" -m pip install --disable-pip-version-check --no-deps "monailabel==$MONAILABEL_VERSION" \
        "pydicom-seg==0.4.1" >> "$WORK/pip.log" 2>&1 || { tail -n 40 "$WORK/pip.log"; fail "pip install monailabel"; }
    log "install took $((SECONDS - start)) s"
fi
"$PY" -c "import monailabel, monai, torch, numpy; print('[check_monailabel] monailabel', monailabel.__version__,
'| monai', monai.__version__, '| torch', torch.__version__, '| numpy', numpy.__version__)"

# ---------------------------------------------------------------------------------------------------
# 2. trained model + demo data (generated and trained briefly only when missing)
# ---------------------------------------------------------------------------------------------------
if [[ ! -f "$DATA/datalist.json" ]]; then
    log "no $DATA/datalist.json: generating demo data"
    (cd "$REPO" && "$PY" scripts/make_demo_data.py --out "$DATA" --subjects 30 --seed 0)
fi
if [[ ! -f "$MODEL" ]]; then
    CKPT_DIR="$(dirname "$MODEL")"
    [[ "$(basename "$MODEL")" == model.pt ]] || fail "MODEL $MODEL is missing (and only a .../model.pt can be trained)"
    log "no $MODEL: fine-tuning 1 epoch with the demo profile into $CKPT_DIR"
    # val_interval 1: model.pt is written by the best-metric checkpointer, i.e. after a validation
    (cd "$REPO" && "$PY" -m monai.bundle run \
        --config_file "['bundles/$BUNDLE_NAME/configs/train.json','bundles/$BUNDLE_NAME/configs/demo.json']" \
        --meta_file "bundles/$BUNDLE_NAME/configs/metadata.json" \
        --dataset_dir "$DATA" --bundle_root "bundles/$BUNDLE_NAME" \
        --ckpt_dir "$CKPT_DIR" --output_dir "$(dirname "$CKPT_DIR")/runs" --epochs 1 --val_interval 1)
    [[ -f "$MODEL" ]] || fail "training did not write $MODEL"
fi
log "model: $MODEL"
log "data : $DATA"

# ---------------------------------------------------------------------------------------------------
# 3. the MONAI Label app: the monaibundle sample app + the bundle under model/taco_seg_finetune/
# ---------------------------------------------------------------------------------------------------
APP="$WORK/apps/monaibundle"
mkdir -p "$WORK/apps"
# `monailabel apps --download` copies the sample app installed with the package (no network)
(cd "$WORK" && PATH="$VENV_ML/bin:$PATH" "$VENV_ML/bin/monailabel" apps --download --name monaibundle \
    --output "$WORK/apps" > "$WORK/apps.log" 2>&1) || { cat "$WORK/apps.log"; fail "monailabel apps --download"; }
[[ -f "$APP/main.py" ]] || fail "no monaibundle app at $APP"
DST="$APP/model/$BUNDLE_NAME"
mkdir -p "$DST/models"
cp -r "$BUNDLE_SRC/configs" "$BUNDLE_SRC/docs" "$BUNDLE_SRC/LICENSE" "$DST/"
cp "$MODEL" "$DST/models/model.pt"
# MONAI Label reads configs/inference.json alone: merge in the demo profile's values for the keys that
# inference.json defines (roi_size, pixdim, feature_size, window_size, decoder_norm, sw_batch_size)
"$PY" - "$DST/configs" <<'PYEOF'
import json, os, sys
configs = sys.argv[1]
with open(os.path.join(configs, "inference.json")) as f:
    inference = json.load(f)
with open(os.path.join(configs, "demo.json")) as f:
    demo = json.load(f)
merged = {key: value for key, value in demo.items() if key in inference}
needed = {"roi_size", "pixdim", "feature_size", "window_size", "decoder_norm", "sw_batch_size"}
assert needed <= merged.keys(), f"demo.json lacks {needed - merged.keys()}"
inference.update(merged)
with open(os.path.join(configs, "inference.json"), "w") as f:
    json.dump(inference, f, indent=4)
print("[check_monailabel] inference.json + demo profile:", json.dumps(merged))
PYEOF

# ---------------------------------------------------------------------------------------------------
# 4. studies: one 4-D NIfTI (X, Y, Z, modality) per case, modalities in the datalist's order
# ---------------------------------------------------------------------------------------------------
STUDIES="$WORK/studies"
mkdir -p "$STUDIES"
"$PY" - "$DATA" "$STUDIES" "$N_CASES" <<'PYEOF'
import json, os, sys
import nibabel as nib
import numpy as np
data, studies, n_cases = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(os.path.join(data, "datalist.json")) as f:
    datalist = json.load(f)
modalities = datalist["modalities"]
subjects = next(datalist[k] for k in ("test", "validation", "training") if datalist.get(k))
# prefer subjects with an enhancing tumour, so that the prediction has something to find
subjects = sorted(subjects, key=lambda s: -int(s.get("class_label", 0)))[:n_cases]
cases = {}
for subject in subjects:
    files = [os.path.join(data, p) for p in subject["image"]]
    for name, file in zip(modalities, files):
        assert name in os.path.basename(file), f"{file} is not the {name} image"
    images = [nib.load(file) for file in files]
    for image, file in zip(images[1:], files[1:]):
        assert image.shape == images[0].shape and np.allclose(image.affine, images[0].affine), file
    stacked = np.stack([np.asarray(image.dataobj, dtype=np.float32) for image in images], axis=-1)
    out = nib.Nifti1Image(stacked, images[0].affine)
    out.header.set_xyzt_units(*images[0].header.get_xyzt_units())
    case = subject["subject"]
    nib.save(out, os.path.join(studies, f"{case}.nii.gz"))
    cases[case] = {"shape": list(images[0].shape), "affine": images[0].affine.tolist()}
    print(f"[check_monailabel] case {case}: {len(files)} modalities {modalities} -> {stacked.shape}")
with open(os.path.join(studies, "..", "cases.json"), "w") as f:
    json.dump(cases, f)
PYEOF
mapfile -t CASES < <("$PY" -c "import json,sys; print('\n'.join(json.load(open(sys.argv[1]))))" "$WORK/cases.json")

# ---------------------------------------------------------------------------------------------------
# 5. start the server, wait for the model, infer each case
# MONAI Label's infer task (monailabel/tasks/infer/bundle.py + basic_infer.py) runs the bundle's
# `preprocessing` transforms one by one on {"image": <path>, "image_path": <path>, ...}, the `inferer`,
# then `postprocessing` without SaveImaged plus its own Restored, and writes `pred` with its Writer.
# The string "image_path" breaks monai 1.6.1's Spacingd (it calls .update() on every "image_*" entry),
# which is why inference.json hides that key around Spacingd (CopyItemsd/DeleteItemsd).
# ---------------------------------------------------------------------------------------------------
PORT="${ML_PORT:-$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")}"
URL="http://127.0.0.1:$PORT"
SERVER_ENV=(PATH="$VENV_ML/bin:$PATH" MONAILABEL_PYEXE="$PY")
# torchvision: monailabel.transform.post imports torchvision.utils (make_grid/save_image, used only by
# its 2-D debug-dump transform and DeepEdit handlers). No CPU torchvision exists for this torch, so when
# it does not import, a stub package that raises on use is put first on the server's PYTHONPATH.
if ! "$PY" -c "import torchvision" >/dev/null 2>&1; then
    mkdir -p "$WORK/shim/torchvision"
    cat > "$WORK/shim/torchvision/__init__.py" <<'PYEOF'
"""Stub: the installed torch has no matching CPU torchvision; only ``import torchvision.utils`` works."""
__version__ = "0.0.0+stub"
PYEOF
    cat > "$WORK/shim/torchvision/utils.py" <<'PYEOF'
def make_grid(*args, **kwargs):
    raise RuntimeError("torchvision stub (scripts/check_monailabel.sh): make_grid is not available")


def save_image(*args, **kwargs):
    raise RuntimeError("torchvision stub (scripts/check_monailabel.sh): save_image is not available")
PYEOF
    SERVER_ENV+=(PYTHONPATH="$WORK/shim${PYTHONPATH:+:$PYTHONPATH}")
    log "torchvision does not import in $VENV_ML: using a stub torchvision.utils for the server"
fi

log "starting MONAI Label on $URL"
# zoo_source: anything but "monaihosting" makes the app use the local bundle dir without listing the
# online model zoo (the default asks the network for the zoo's bundle list first)
(cd "$WORK" && exec env "${SERVER_ENV[@]}" setsid "$VENV_ML/bin/monailabel" start_server \
    --app "$APP" --studies "$STUDIES" --conf models "$BUNDLE_NAME" --conf zoo_source github \
    --host 127.0.0.1 --port "$PORT" > "$WORK/server.log" 2>&1) &
SERVER_PID=$!

start=$SECONDS
until curl -sf "$URL/info/" -o "$WORK/info.json" \
        && "$PY" -c "import json,sys; sys.exit('$BUNDLE_NAME' not in json.load(open(sys.argv[1])).get('models', {}))" \
            "$WORK/info.json" 2>/dev/null; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        tail -n 60 "$WORK/server.log"; fail "server exited before listing $BUNDLE_NAME"
    fi
    if (( SECONDS - start > WAIT_TIMEOUT )); then
        tail -n 60 "$WORK/server.log"; fail "server did not list $BUNDLE_NAME within $WAIT_TIMEOUT s"
    fi
    sleep 2
done
"$PY" - "$WORK/info.json" "$BUNDLE_NAME" <<'PYEOF'
import json, sys
info = json.load(open(sys.argv[1]))
model = info["models"][sys.argv[2]]
print(f"[check_monailabel] /info/ after the server came up: models {list(info['models'])}, trainers "
      f"{list(info.get('trainers', {}))}; {sys.argv[2]}: type {model.get('type')}, labels {model.get('labels')}, "
      f"version {model.get('version')}")
PYEOF
log "server ready after $((SECONDS - start)) s"

SUMMARY=()
for CASE in "${CASES[@]}"; do
    OUTFILE="$WORK/result_$CASE.nii.gz"
    # output=image: the response body is the label file itself (default: multipart with params + image)
    read -r CODE SECS < <(curl -s --max-time "$INFER_TIMEOUT" -X POST "$URL/infer/$BUNDLE_NAME?image=$CASE&output=image" \
        -F 'params={}' -o "$OUTFILE" -w '%{http_code} %{time_total}\n' || echo "000 0")
    if [[ "$CODE" != 200 ]]; then
        [[ -f "$OUTFILE" ]] && head -c 2000 "$OUTFILE" && echo
        tail -n 60 "$WORK/server.log"; fail "POST /infer/$BUNDLE_NAME?image=$CASE returned HTTP $CODE"
    fi
    RESULT="$("$PY" - "$OUTFILE" "$WORK/cases.json" "$CASE" "$SECS" <<'PYEOF'
import json, sys
import nibabel as nib
import numpy as np
path, cases, case, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
expected = json.load(open(cases))[case]
label = nib.load(path)
values, counts = np.unique(np.asarray(label.dataobj), return_counts=True)
problems = []
if list(label.shape) != expected["shape"]:
    problems.append(f"shape {label.shape} != case spatial shape {tuple(expected['shape'])}")
if not set(values.tolist()) <= {0, 1, 2, 4}:
    problems.append(f"label values {values.tolist()} not within {{0, 1, 2, 4}}")
affine_ok = np.allclose(label.affine, expected["affine"], atol=1e-3)
if not affine_ok:
    problems.append(f"affine {label.affine.tolist()} != case affine {expected['affine']}")
voxels = ", ".join(f"{int(v)}: {c}" for v, c in zip(values, counts))
print(f"{case}: shape {tuple(label.shape)}, labels {[int(v) for v in values]} (voxels {voxels}), "
      f"affine {'matches' if affine_ok else 'DIFFERS'}, request {seconds:.1f} s"
      + (f"; PROBLEMS: {'; '.join(problems)}" if problems else ""))
sys.exit(1 if problems else 0)
PYEOF
)" || { echo "$RESULT"; fail "$RESULT"; }
    log "$RESULT"
    SUMMARY+=("$RESULT")
done

STATUS=pass
log "PASS $BUNDLE_NAME served by MONAI Label $MONAILABEL_VERSION (monaibundle app): $(IFS=';'; echo "${SUMMARY[*]}" | sed 's/;/; /g') | total $((SECONDS - T0)) s"
