#!/usr/bin/env bash
# The whole demo on a CPU: install into .venv/, generate demo brain MRI from the MNI152 templates that
# the nilearn wheel ships (nothing is downloaded), pre-train with TACO, fine-tune segmentation and
# classification from the pre-trained encoder, evaluate both on the test split, and evaluate the
# segmentation model with every subset of modalities missing. Each stage uses its bundle's demo
# profile (scripts/demo.py, taco_tools/demo.py). Results go to demo_output/ (override with
# DEMO_OUTPUT=...); a stage that finished there in an earlier run is skipped, an interrupted one
# resumes from its checkpoint. Delete the folder to start afresh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$REPO_ROOT"
python scripts/demo.py --out "${DEMO_OUTPUT:-$REPO_ROOT/demo_output}"
