"""Reading the frame (rig_core/diagnostics/reading.py and benchmarks/reading.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from rig_core.annotate.rules import where
from rig_core.diagnostics.reading import ReadingSample, offsets_in, reading_accuracy


def test_offsets_round_trip_every_phrase_the_annotator_writes():
    for dx in range(-4, 5):
        for dy in range(-3, 4):
            if dx or dy:
                assert offsets_in(f"I see a tree {where(dx, dy)}. So I go.") == [(dx, dy)]
    text = f"A zombie is {where(2, 0)}. There is water {where(-1, 3)}."
    assert offsets_in(text) == [(2, 0), (-1, 3)]
    assert offsets_in("A tree is right in front of me. I do not see water here.") == []


class _Echo:
    """A stand-in policy that answers with a fixed (thought, action) per instruction."""

    def __init__(self, answers, builder):
        self.answers, self.builder = answers, builder

    def reset(self, instructions):
        self.rows = list(instructions)
        self.history = [[] for _ in instructions]

    def act(self, frames, imagine=True):
        from rig_core.inference.step import StepOutput

        assert len(frames) == len(self.rows)
        return [StepOutput(thought=self.answers[r][0], action=self.answers[r][1], imagined_codes=np.zeros(1),
                           think_tokens=1, think_closed=True) for r in self.rows]


class _Builder:
    def step(self, *args):
        class P:
            ids = [1, 2, 3]

        return P()


def test_reading_scores_offsets_directions_actions_and_invented_offsets():
    frame = np.zeros((64, 64, 3), np.uint8)
    ref = {"a": (f"A tree is {where(-3, -2)}.", 1), "b": (f"Water is {where(2, 0)}.", 2),
           "c": ("I do not see a tree here.", 3), "d": ("No water is in view.", 4)}
    answers = {"a": (f"A tree is {where(-3, -2)}.", 1),  # right offsets, right action
               "b": (f"Water is {where(3, 1)}.", 0),  # same directions? no: dy 0 vs 1
               "c": (f"A tree is {where(1, 1)}.", 3),  # invented
               "d": ("No water is in view.", 0)}
    samples = [ReadingSample(k, [(None, "", 0, None)], frame, *ref[k]) for k in "abcd"]
    r = reading_accuracy(_Echo(answers, _Builder()), samples, batch=3)
    assert r["states"] == 4
    assert r["action"]["rate"] == 0.5 and r["action"]["n"] == 4
    assert r["where"]["rate"] == 0.5 and r["where"]["n"] == 2
    assert r["direction"]["rate"] == 0.5
    assert r["invented"]["rate"] == 0.5 and r["invented"]["n"] == 2
    assert r["examples"] == [{"reference": ref["b"][0], "policy": answers["b"][0]}]
    lo, hi = r["action"]["ci95"]
    assert lo < 0.5 < hi


def test_reading_benchmark_runs_on_a_trained_checkpoint(tiny_checkpoint, reasoned_dataset, tmp_path):
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, str(root / "benchmarks" / "reading.py"), "--checkpoint", str(tiny_checkpoint),
           "--data", str(reasoned_dataset), "--per-episode", "2", "--history", "2", "--out", str(tmp_path / "r")]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
    assert p.returncode == 0, p.stderr
    doc = json.loads((tmp_path / "r" / "reading.json").read_text())["sections"]["main"]
    assert doc["command"].startswith("python benchmarks/reading.py --checkpoint") and doc["versions"]
    row = doc["rows"][0]
    # the tiny run holds out one of the four episodes of its training data: two states of it are read
    assert row["episodes"] == 1 and row["states"] == 2
    assert row["where"]["n"] + row["invented"]["n"] == 2
    assert "Reading the frame" in p.stdout


def test_held_out_episodes_follow_task_and_seed_across_datasets(tiny_checkpoint, reasoned_dataset, random_dataset):
    from rig_core.data.reader import Dataset
    from rig_core.diagnostics.reading import held_out_episodes

    with Dataset(reasoned_dataset) as trained, Dataset(random_dataset) as same_worlds:
        val = held_out_episodes(tiny_checkpoint, trained)
        assert len(val) == 1  # the run's validation split of its own data
        # the input of the reasoning stage holds the same (task, seed) episodes: the same one is held out
        assert held_out_episodes(tiny_checkpoint, same_worlds) == val
        # a checkpoint directory of the run (as --checkpoint accepts) holds out the same episodes
        step = sorted(p for p in (tiny_checkpoint / "checkpoints").iterdir() if p.name.isdigit())[-1]
        assert held_out_episodes(step, trained) == val


def test_reading_counts_an_offset_the_policy_missed():
    frame = np.zeros((64, 64, 3), np.uint8)
    ref = {"a": (f"A cow is {where(1, 0)}.", 5), "b": (f"A tree is {where(0, -2)}.", 3)}
    answers = {"a": ("I do not see a cow here.", 5), "b": (f"A tree is {where(0, -2)}.", 3)}
    samples = [ReadingSample(k, [], frame, *ref[k]) for k in "ab"]
    r = reading_accuracy(_Echo(answers, _Builder()), samples, batch=2)
    assert r["missed"]["rate"] == 0.5 and r["missed"]["n"] == 2 and r["where"]["rate"] == 0.5


def test_reading_on_review_data_reads_the_policys_own_history_against_the_expert(tiny_checkpoint, review_dataset,
                                                                                 lookahead_run):
    from rig_core.annotate.context import episode_contexts
    from rig_core.annotate.rules import RuleAnnotator
    from rig_core.data.reader import Dataset
    from rig_core.diagnostics.reading import held_out_episodes, reading_samples
    from rig_core.inference.policy import RigPolicy
    from rig_core.model.run_config import load_run_config
    from rig_core.train.data import split_episodes

    image_tok = RigPolicy.from_checkpoint(tiny_checkpoint).image_tok
    with Dataset(review_dataset) as ds:
        i = ds.indices()[0]
        ep = ds.episode(i)
        n = len(ep.read("actions"))
        samples = reading_samples(ds, [i], image_tok, per_episode=n, history=2)
        assert len(samples) == n
        mine = ep.texts("reasoning")  # the policy's own thoughts
        ctxs = episode_contexts(ep, ds.action_names, ds.manifest.get("semantic_names", {}), with_frames=False)
        expert = dict(zip(ep.read("review/step").tolist(), ep.read("review/expert").tolist()))
        for t, smp in enumerate(samples):
            assert smp.thought == RuleAnnotator(0).annotate(ctxs[t], int(ep.attrs["seed"]))
            assert smp.action == expert[t]
            assert [h[1] for h in smp.history] == mine[max(0, t - 2):t]
        cfg = load_run_config(lookahead_run)  # a lookahead run is read on the review episodes it held out
        assert held_out_episodes(lookahead_run, ds) == split_episodes(ds.indices(), cfg.val_fraction, cfg.seed)[1]
