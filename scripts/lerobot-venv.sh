#!/usr/bin/env bash
# Build .venv-lerobot: a separate Python with LeRobot and the torch it pins (it cannot share rig's venv),
# used by tests/test_exchange.py to load rig's LeRobot exports with LeRobotDataset itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv-lerobot/bin/python ]; then
  "$PY" -m venv .venv-lerobot
fi
.venv-lerobot/bin/python -m pip install -q --upgrade pip
.venv-lerobot/bin/python -m pip install -q --resume-retries 20 "lerobot>=0.4,<0.5"  # its torch is a ~900 MB download
.venv-lerobot/bin/python -c "import lerobot; print('lerobot', lerobot.__version__)"
