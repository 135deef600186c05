#!/usr/bin/env bash
# Create .venv (if absent) and install rig with its pinned CPU build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q --resume-retries 20 -c constraints.txt -e ".[dev]"
.venv/bin/python -c "import torch, crafter, rig_core; print('rig', rig_core.__version__, '| torch', torch.__version__)"
bash scripts/browser.sh || echo "note: Chromium is not installed, so the browser tests of rig view will fail (RIG_NO_BROWSER=1 skips them)" >&2
