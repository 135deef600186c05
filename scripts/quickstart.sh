#!/usr/bin/env bash
# One command from nothing: install, then run the pipeline on the embedded default.
# Today the pipeline is its first stage: the scripted expert collects a small dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
OUT=${OUT:-datasets/quickstart}
if [ -f "$OUT/dataset.json" ]; then RESUME=--resume; else RESUME=; fi
.venv/bin/rig collect --agent expert --task basic --episodes 10 --seed 0 --workers 2 --out "$OUT" $RESUME
.venv/bin/rig dataset gif "$OUT" --episode 0 --out "$OUT/episode-0.gif"
