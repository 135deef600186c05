#!/usr/bin/env bash
# One command from nothing: install, then run the whole pipeline on the embedded default
# (CPU, no internet): collect expert data -> add reasoning -> train a tiny RIG model ->
# play one episode (recorded) -> evaluate it next to the expert on the basic tasks.
# Rerunning resumes or reuses what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
W=${WORK:-quickstart}
RIG=.venv/bin/rig
if [ -f "datasets/$W/dataset.json" ]; then RESUME=--resume; else RESUME=; fi
$RIG collect --agent expert --task basic --episodes 10 --seed 0 --workers 2 --out "datasets/$W" $RESUME
$RIG dataset gif "datasets/$W" --episode 0 --out "datasets/$W/episode-0.gif"
[ -f "datasets/$W-reason/dataset.json" ] && grep -q '"complete": true' "datasets/$W-reason/dataset.json" \
  || $RIG augment --stage reason --data "datasets/$W" --out "datasets/$W-reason" $( [ -d "datasets/$W-reason" ] && echo --resume )
if [ -d "runs/$W" ]; then $RIG train --resume "runs/$W"; else $RIG train --data "datasets/$W-reason" --recipe tiny --out "runs/$W"; fi
$RIG play --checkpoint "runs/$W" --task collect_wood --max-steps 20 --record "runs/$W/media/play.gif" --quiet
$RIG evaluate --checkpoint "runs/$W" --suite basic --episodes 2 --max-steps 100 --out "runs/$W/eval" --quiet
$RIG evaluate --agent expert --suite basic --episodes 2 --max-steps 100 --out "runs/$W/eval-expert" --quiet
$RIG evaluate --compare "runs/$W/eval" --compare "runs/$W/eval-expert"
echo "report: runs/$W/eval/report.md"
