#!/usr/bin/env bash
# Quickstart on the bundled Cityscapes frame (2-core CPU: ~2 minutes after setup):
# set up .venv, convert the sample with the project's converter, train
# Lite-HRNet-18 + concat head with tools/train.py, score it with
# tools/test.py and write a colour prediction overlay.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
PY=.venv/bin/python
CONFIG=configs/litehrnet/fcn-concat_litehrnet18_1xb2-300i_cityscapes-sample-128x256.py
WORK_DIR=work_dirs/quickstart
rm -rf data/cityscapes_sample "$WORK_DIR"
mkdir -p data
cp -r tests/data/cityscapes data/cityscapes_sample
$PY tools/dataset_converters/cityscapes.py data/cityscapes_sample
$PY tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
$PY tools/test.py "$CONFIG" "$WORK_DIR/iter_300.pth" --work-dir "$WORK_DIR/test" \
    --show-dir "$WORK_DIR/overlays" 2>&1 | grep -E "Iter\(test\)|\|"
echo "overlay (ground truth | prediction):"
find "$WORK_DIR/overlays" -name '*.png'
