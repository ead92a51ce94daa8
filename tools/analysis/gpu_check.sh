#!/usr/bin/env bash
# GPU acceptance check, one command on a machine with one CUDA GPU:
#   1. the `cuda`-marked tests (tests/end_to_end/test_cuda.py): seg and pose training
#      with --amp, SyncBN on a 1-process NCCL group, tools/test.py mIoU on
#      CUDA vs CPU, the multi-task sample, CUDA graphs, the benchmark in
#      CUDA mode, the compat layer with/without full mmcv;
#   2. inference benchmark, 1024x2048 batch 1: eager fp32 and fp16, BN
#      folding, channels_last, torch.compile and CUDA graphs, for
#      Lite-HRNet-18 and the peers fcn_hr18s and BiSeNetV2 in the same run;
#   3. training benchmark, 512x1024 batch 8, fp32 and AMP, same models.
# Writes OUT_DIR/gpu_check.md (tables) and OUT_DIR/gpu_check.json, plus
# each step's log. Planned for under 8 minutes on an H200-class GPU (most
# of it torch.compile); each step also has its own time limit.
#
# Usage: bash tools/analysis/gpu_check.sh [OUT_DIR]   (default
#        work_dirs/gpu_check). PYTHON picks the interpreter (default:
#        .venv/bin/python when present, else python3).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-work_dirs/gpu_check}
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
CONFIG=configs/litehrnet/fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py

# Fail fast, with the reason, where there is no GPU.
"$PYTHON" - <<'EOF' || exit 2
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(
        'gpu_check: no CUDA device: torch.cuda.is_available() is False '
        f'(torch {torch.__version__}, built for CUDA {torch.version.cuda}). '
        'Run this on a machine with an NVIDIA GPU and a CUDA build of torch.'
    )
print(f'gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}')
EOF
mkdir -p "$OUT"
STATUS=0
START=$SECONDS

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log, time
    local name=$1 limit=$2 t0=$SECONDS rc
    shift 2
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$OUT/$name.out" 2>"$OUT/$name.log"
    rc=$?
    echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$OUT/steps.txt"
    [ $rc -eq 0 ] || { STATUS=1; tail -n 20 "$OUT/$name.log"; }
}

: >"$OUT/steps.txt"
step cuda_tests 300 "$PYTHON" -m pytest tests/end_to_end/test_cuda.py -m cuda -rs -q \
    -p no:cacheprovider --junitxml "$OUT/cuda_tests.xml"
step inference 270 "$PYTHON" tools/analysis/benchmark.py "$CONFIG" --peers \
    --device cuda --shape 1024 2048 --batch 1 --runs 20 --warmup 5 \
    --variants eager fold_bn channels_last compile cuda_graphs \
    --precision fp32 fp16 --keep-going --json "$OUT/inference.json"
step training 150 "$PYTHON" tools/analysis/benchmark.py "$CONFIG" --peers \
    --device cuda --shape 512 1024 --runs 12 --warmup 3 --variants eager \
    --train --train-batch 8 --train-crop 512 1024 --amp \
    --keep-going --json "$OUT/training.json"

"$PYTHON" - "$OUT" "$((SECONDS - START))" <<'EOF'
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

out, seconds = Path(sys.argv[1]), int(sys.argv[2])
steps = dict(
    line.split(' ', 1) for line in (out / 'steps.txt').read_text().splitlines()
)
tests = {}
if (out / 'cuda_tests.xml').exists():
    for case in ET.parse(out / 'cuda_tests.xml').iter('testcase'):
        outcome = 'passed'
        for tag in ('failure', 'error', 'skipped'):
            node = case.find(tag)
            if node is not None:
                outcome = f'{tag}: {node.get("message", "")[:200]}'
        tests[case.get('name')] = outcome
meta = dict(
    gpu=torch.cuda.get_device_name(0),
    torch=torch.__version__,
    cuda=torch.version.cuda,
    cudnn=torch.backends.cudnn.version(),
    seconds=seconds,
)
results = {}
failures = []
lines = [
    '# GPU check',
    '',
    f'{meta["gpu"]}, torch {meta["torch"]}, CUDA {meta["cuda"]}, cuDNN '
    f'{meta["cudnn"]}; {seconds} s in all.',
    '',
    '| step | result |',
    '|---|---|',
    *(f'| {k} | {v} |' for k, v in steps.items()),
    '',
    '## cuda tests',
    '',
    '| test | outcome |',
    '|---|---|',
    *(f'| {k} | {v} |' for k, v in tests.items()),
]
for name, title in (
    ('inference', 'Inference, 1024x2048, batch 1'),
    ('training', 'Training step, 512x1024, batch 8 (fp32, AMP fp16)'),
):
    table = (out / f'{name}.out').read_text() if (
        out / f'{name}.out'
    ).exists() else ''
    lines += ['', f'## {title}', '', table.strip() or '(no result)']
    path = out / f'{name}.json'
    if path.exists():
        saved = json.loads(path.read_text())
        results[name] = saved['results']
        failures += saved.get('failures', [])
        lines += [
            f'- FAILED: {f["config"]} {f["variant"]} {f["precision"]}: '
            f'{f["error"]}'
            for f in saved.get('failures', [])
        ]
(out / 'gpu_check.md').write_text('\n'.join(lines) + '\n')
(out / 'gpu_check.json').write_text(
    json.dumps(
        dict(meta=meta, steps=steps, tests=tests, failures=failures, **results),
        indent=2,
    )
)
print(f'gpu_check: wrote {out / "gpu_check.md"} and {out / "gpu_check.json"}')
sys.exit(1 if failures else 0)
EOF
[ $? -eq 0 ] || STATUS=1
if [ $STATUS -ne 0 ]; then
    echo "gpu_check: some steps failed, see $OUT/steps.txt and the logs" >&2
fi
exit $STATUS
