#!/usr/bin/env bash
# The whole demo on a CPU: install into .venv/, generate demo brain MRI from the MNI152 templates that
# the nilearn wheel ships (nothing is downloaded), and pre-train with the bundle's demo profile.
# Results go to demo_output/ (override with DEMO_OUTPUT=...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$REPO_ROOT"
OUT="${DEMO_OUTPUT:-$REPO_ROOT/demo_output}"
DATA="$OUT/data"
PRETRAIN="$OUT/pretrain"

if [[ ! -f "$DATA/datalist.json" ]]; then
    python scripts/make_demo_data.py --out "$DATA" --subjects 30 --seed 0
fi

echo "[taco] pre-training (bundles/taco_pretrain, demo profile)"
start=$SECONDS
python -m monai.bundle run \
    --config_file "['bundles/taco_pretrain/configs/train.json','bundles/taco_pretrain/configs/demo.json']" \
    --meta_file bundles/taco_pretrain/configs/metadata.json \
    --logging_file bundles/taco_pretrain/configs/logging.conf \
    --dataset_dir "$DATA" --bundle_root bundles/taco_pretrain \
    --ckpt_dir "$PRETRAIN/models" --output_dir "$PRETRAIN/runs"
echo "[taco] pre-training took $((SECONDS - start)) s"

cat <<MSG

[taco] demo finished. Results:
  demo data + datalist : $DATA/datalist.json
  a look at one subject: $DATA/montage.png
  pre-trained encoder  : $PRETRAIN/models/encoder.pt  (loads into monai SwinUNETR(...).swinViT)
  full checkpoint      : $PRETRAIN/models/checkpoint_iteration=*.pt
  TensorBoard logs     : tensorboard --logdir $PRETRAIN/runs/tensorboard
MSG
