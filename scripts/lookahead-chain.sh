#!/usr/bin/env bash
# The RIG-lookahead experiment in one command: expert data -> reasoning -> RIG-basic -> review data
# (the basic policy's own rollouts, judged by the expert) -> RIG-lookahead (review, alignment,
# relabelled and basic samples) [-> more DAgger rounds] -> test-time scaling and imagination against
# the basic model on the same seeds (benchmarks/lookahead.py, which prints the targets met or not).
# Every stage writes under $WORK and is skipped or resumed when it is already there, so a stopped
# chain continues where it stopped. Sizes come from the environment (defaults: the cpu-lookahead
# scale, several hours on 2 CPU cores; minutes on a GPU):
#   WORK=runs/chain RECIPE=cpu-lookahead EPISODES=960 BASIC_STEPS=2000 REVIEW_EPISODES=128 \
#   LOOK_STEPS=800 EVAL_EPISODES=60 STEPS=0,1,2 THRESHOLD=0.6 WORKERS=2 ROUNDS=1 bash scripts/lookahead-chain.sh
# ROUNDS=k > 1 adds DAgger rounds (review-2, lookahead-2, ...); the benchmark takes the last round's model.
# TINY=1 runs it end to end at toy size (a few minutes on 2 cores) to check the plumbing.
set -euo pipefail
cd "$(dirname "$0")/.."
RIG=${RIG:-.venv/bin/rig}
PY=${PY:-.venv/bin/python}
if [ "${TINY:-0}" = 1 ]; then
  : "${WORK:=runs/chain-tiny}" "${RECIPE:=tiny}" "${EPISODES:=6}" "${BASIC_STEPS:=20}" "${REVIEW_EPISODES:=2}"
  : "${LOOK_STEPS:=10}" "${EVAL_EPISODES:=1}" "${STEPS:=0,1}" "${MAX_STEPS:=6}" "${IMAGINE_EPISODES:=1}"
fi
WORK=${WORK:-runs/chain}
RECIPE=${RECIPE:-cpu-lookahead}
EPISODES=${EPISODES:-960}
BASIC_STEPS=${BASIC_STEPS:-2000}
REVIEW_EPISODES=${REVIEW_EPISODES:-128}
LOOK_STEPS=${LOOK_STEPS:-800}
EVAL_EPISODES=${EVAL_EPISODES:-60}
STEPS=${STEPS:-0,1,2}
MAX_STEPS=${MAX_STEPS:-60}
THRESHOLD=${THRESHOLD:-0.6}
WORKERS=${WORKERS:-2}
IMAGINE_EPISODES=${IMAGINE_EPISODES:-20}
ROUNDS=${ROUNDS:-1}
mkdir -p "$WORK"

complete() { [ -f "$1/dataset.json" ] && grep -q '"complete": true' "$1/dataset.json"; }
dataset() {  # dataset DIR COMMAND...: make it, resume it, or keep it when complete
  local dir=$1; shift
  if complete "$dir"; then echo "kept $dir"; elif [ -d "$dir" ]; then "$@" --out "$dir" --resume; else "$@" --out "$dir"; fi
}
run() {  # run DIR COMMAND...: train it, or resume it (a finished run resumes to its end at once)
  local dir=$1; shift
  if [ -f "$dir/config.json" ]; then $RIG train --resume "$dir" --quiet; else "$@" --out "$dir"; fi
}

dataset "$WORK/data" $RIG collect --agent expert --task basic --episodes "$EPISODES" --epsilon 0.03 --seed 0 \
  --workers "$WORKERS" --quiet
dataset "$WORK/data-reason" $RIG augment --stage reason --data "$WORK/data" --workers "$WORKERS" --quiet
run "$WORK/basic" $RIG train --data "$WORK/data-reason" --recipe "$RECIPE" --max-steps "$BASIC_STEPS" --quiet
# DAgger rounds: round r rolls out the previous round's policy on new worlds (review data, relabelled by the
# expert) and trains RIG-lookahead from the basic model on every round's review data so far.
proposer="$WORK/basic"
reviews=()
for r in $(seq 1 "$ROUNDS"); do
  suffix=$([ "$r" = 1 ] && echo "" || echo "-$r")
  dataset "$WORK/review$suffix" $RIG augment --stage review --checkpoint "$proposer" --data "$WORK/data-reason" \
    --episodes "$REVIEW_EPISODES" --horizon 3 --max-steps "$MAX_STEPS" --confirm-floor 0.1 \
    --seed $((500000 + 100000 * (r - 1))) --workers "$WORKERS" --quiet
  reviews+=(--data "$WORK/review$suffix")
  run "$WORK/lookahead$suffix" $RIG train --stage lookahead --init "$WORK/basic" "${reviews[@]}" --recipe "$RECIPE" \
    --finetune full --max-steps "$LOOK_STEPS" --set mix_review=0.3 --set mix_relabel=0.3 --set mix_align=0.1 --set mix_basic=0.3 --quiet
  proposer="$WORK/lookahead$suffix"
done
$PY benchmarks/lookahead.py --basic "$WORK/basic" --lookahead "$proposer" --suite basic \
  --episodes "$EVAL_EPISODES" --steps "$STEPS" --max-steps "$MAX_STEPS" --review-threshold "$THRESHOLD" \
  --workers "$WORKERS" --imagination-episodes "$IMAGINE_EPISODES" --out "$WORK/bench"
