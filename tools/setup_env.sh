#!/usr/bin/env bash
# Create ./.venv (if missing) and install litehrnet_seg with its test extras.
# Idempotent: a second run only checks what is installed.
#   TORCH_SPEC   torch to install first (default torch==2.13.0, the CPU wheel
#                of the reference machine); set it to your CUDA build, e.g.
#                TORCH_SPEC="torch==2.4.1" with --index-url in PIP_INDEX_URL.
#   VENV         venv folder (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# Pin torch before anything else: an unpinned `torch` requirement would make
# pip pull the newest (multi-GB CUDA) build.
"$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
"$VENV/bin/python" -m pip install -q -e ".[tests]"
# Editable installs cannot ship the start-up hook's .pth (mmseg's own tools
# on mmcv-lite, see litehrnet_seg_startup.py): write it (idempotent).
"$VENV/bin/python" -m litehrnet_seg_startup --install
"$VENV/bin/python" -c "import litehrnet_seg, torch, mmseg; print('litehrnet_seg', litehrnet_seg.__version__, '| torch', torch.__version__, '| mmseg', mmseg.__version__)"
