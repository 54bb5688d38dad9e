#!/usr/bin/env bash
# The whole demo on a CPU: install into .venv/, generate demo brain MRI from the MNI152 templates that
# the nilearn wheel ships (nothing is downloaded), pre-train with TACO, fine-tune segmentation and
# classification from the pre-trained encoder, evaluate both on the test split, and evaluate the
# segmentation model with every subset of modalities missing. Each stage uses its bundle's demo
# profile. Results go to demo_output/ (override with DEMO_OUTPUT=...); a stage whose model already
# exists there is resumed or skipped by its bundle.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$REPO_ROOT"
OUT="${DEMO_OUTPUT:-$REPO_ROOT/demo_output}"
DATA="$OUT/data"
PRETRAIN="$OUT/pretrain"

bundle() {  # bundle <name> <configs...> -- <overrides...>
    local name=$1; shift
    local configs=()
    while [[ $1 != "--" ]]; do configs+=("'bundles/$name/configs/$1'"); shift; done
    shift
    local joined
    joined=$(IFS=,; echo "${configs[*]}")
    python -m monai.bundle run --config_file "[$joined]" \
        --meta_file "bundles/$name/configs/metadata.json" --logging_file "bundles/$name/configs/logging.conf" \
        --bundle_root "bundles/$name" --dataset_dir "$DATA" "$@"
}

stage() {  # stage <message>: print it and start its clock
    echo "[taco] $1"
    STAGE_START=$SECONDS
}

took() { echo "[taco] ... took $((SECONDS - STAGE_START)) s"; }

demo_start=$SECONDS
if [[ ! -f "$DATA/datalist.json" ]]; then
    stage "generating 30 demo subjects"
    python scripts/make_demo_data.py --out "$DATA" --subjects 30 --seed 0
    took
fi

stage "pre-training (bundles/taco_pretrain, demo profile)"
bundle taco_pretrain train.json demo.json -- --ckpt_dir "$PRETRAIN/models" --output_dir "$PRETRAIN/runs"
took

for task in seg cls; do
    stage "fine-tuning $task from the pre-trained encoder (bundles/taco_${task}_finetune, demo profile)"
    bundle "taco_${task}_finetune" train.json demo.json -- --ckpt_dir "$OUT/$task/models" \
        --output_dir "$OUT/$task/runs" --pretrained_ckpt "$PRETRAIN/models/encoder.pt"
    took
    stage "evaluating $task on the test split"
    bundle "taco_${task}_finetune" train.json demo.json evaluate.json -- --ckpt_dir "$OUT/$task/models" \
        --output_dir "$OUT/$task/runs"
    took
done

stage "missing-modality evaluation of the segmentation model (bundles/taco_missing_modality_eval)"
bundle taco_missing_modality_eval evaluate.json demo.json -- --ckpt_dir "$OUT/seg/models" \
    --output_dir "$OUT/missing_modality" --fill zeros
took

echo
python scripts/demo_summary.py --out "$OUT"
cat <<MSG

[taco] demo finished in $((SECONDS - demo_start)) s. Results:
  results tables            : $OUT/results.md
  missing-modality heatmap  : $OUT/missing_modality/missing_modality.png
  per-subject predictions   : $OUT/cls/runs/eval/predictions.csv, $OUT/seg/runs/eval/*_raw.csv
  demo data + datalist      : $DATA/datalist.json (a look at one subject: $DATA/montage.png)
  pre-trained encoder       : $PRETRAIN/models/encoder.pt  (loads into monai SwinUNETR(...).swinViT)
  fine-tuned models         : $OUT/seg/models/model.pt, $OUT/cls/models/model.pt
  TensorBoard logs          : tensorboard --logdir $OUT
MSG
