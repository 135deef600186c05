"""The lookahead stage at tiny size: adapter and export, test-time steps, review cue, guard and threshold, the
test-time-scaling benchmark, exact resume."""

import json

import numpy as np
import pytest

from cli_helpers import one_line_error as _err
from cli_helpers import rig
from rig_core.envs import make_env


def test_lookahead_run_is_an_adapter_on_the_basic_model(lookahead_run, tiny_checkpoint, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model_dir = lookahead_run / "checkpoints" / "last" / "model"
    assert (model_dir / "adapter_config.json").exists() and not (model_dir / "model.safetensors").exists()
    base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint / "checkpoints" / "last" / "model")
    peft = PeftModel.from_pretrained(base, str(model_dir))  # loads with transformers + peft alone
    merged = tmp_path / "merged"
    r = rig("export", "--merge", lookahead_run, "--out", merged, "--json")
    assert r.exit_code == 0, r.output
    full = AutoModelForCausalLM.from_pretrained(merged / "checkpoints" / "last" / "model")
    x = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(full(x).logits, peft(x).logits, atol=1e-4)
    assert "nothing to merge" in _err(rig("export", "--merge", merged, "--out", tmp_path / "again"))
    from rig_core.inference.policy import RigPolicy

    policy = RigPolicy.from_checkpoint(lookahead_run)  # decodes with the adapter folded in
    assert not isinstance(policy.model, PeftModel)
    with torch.no_grad():
        assert torch.allclose(policy.model(x).logits, peft(x).logits, atol=1e-4)
    r = rig("play", "--checkpoint", merged, "--max-steps", 1, "--max-think", 3, "--test-time-steps", 1, "--json")
    assert r.exit_code == 0, r.output


def test_lookahead_plays_and_evaluates_with_test_time_steps(lookahead_run, tmp_path):
    r = rig("play", "--checkpoint", lookahead_run, "--task", "collect_wood", "--max-steps", 2, "--max-think", 4,
            "--test-time-steps", 2, "--json")
    assert r.exit_code == 0, r.output
    played = json.loads(r.stdout[r.stdout.index("{"):])
    assert played["steps"] == 2 and 0 <= played["review_changed"] + played["review_fallbacks"] <= 2
    ev = tmp_path / "ev"
    r = rig("evaluate", "--checkpoint", lookahead_run, "--suite", "collect_wood", "--episodes", 1, "--max-steps", 2,
            "--test-time-steps", "0,2", "--out", ev, "--quiet")
    assert r.exit_code == 0, r.output
    res = json.loads((ev / "eval.json").read_text())
    assert [e["test_time_steps"] for e in res["sweep"]] == [0, 2]
    n0, n2 = res["sweep"]
    assert n0["changed_rate"] == 0 and n0["fallback_rate"] == 0  # no review without lookahead
    assert 0 <= n2["changed_rate"] <= 1 and 0 <= n2["fallback_rate"] <= 1
    assert "review changed" in (ev / "report.md").read_text()
    assert len(n2["episodes"][0]["p_worse"]) == n2["steps"] and 0 <= n2["p_worse_mean"] <= 1
    assert set(n2["p_worse_share_above"]) >= {"0.5", "0.9"} and "p_worse_mean" not in n0
    r = rig("evaluate", "--checkpoint", lookahead_run, "--suite", "collect_wood", "--episodes", 1, "--max-steps", 2,
            "--test-time-steps", "1", "--review-threshold", 1.0, "--out", tmp_path / "ev1", "--quiet")
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "ev1" / "eval.json").read_text())
    assert res["review_threshold"] == 1.0 and res["sweep"][0]["changed_rate"] == 0  # every proposal confirmed
    assert "P(correction) >= 1" in (tmp_path / "ev1" / "report.md").read_text()
    line = _err(rig("evaluate", "--checkpoint", lookahead_run, "--suite", "collect_wood", "--episodes", 1,
                    "--test-time-steps", "1", "--review-threshold", 2, "--out", tmp_path / "ev2"))
    assert "--review-threshold 2" in line and not (tmp_path / "ev2").exists()
    r = rig("play", "--checkpoint", lookahead_run, "--max-steps", 1, "--max-think", 4, "--test-time-steps", 1,
            "--review-threshold", 1.0, "--json")
    assert r.exit_code == 0, r.output
    played = json.loads(r.stdout[r.stdout.index("{"):])
    assert played["review_changed"] == 0 and 0 <= played["review_p_worse_mean"] <= 1
    r = rig("play", "--checkpoint", lookahead_run, "--max-steps", 2, "--max-think", 4, "--test-time-steps", 1,
            "--review-threshold", 0.0)  # the per-step log shows each review (tau 0: every one opens "Wait")
    assert r.exit_code == 0, r.output
    import re

    assert len(re.findall(r"review P\(correction\) [01]\.\d\d: W", r.output)) == 2  # "Wait"'s first token


def test_step_log_shows_the_review_and_what_it_changed():
    from rig_core.records import StepRecord
    from rig_core.viz.live import log_line

    frame = np.zeros((64, 64, 3), np.uint8)
    rec = StepRecord(env=0, t=4, frame=frame, action=1, action_name="move_left", thought="I hit the grass.",
                     review="Wait, nothing happens if I interact. Better to move left.", proposed_name="do",
                     p_worse=0.62)
    line = log_line(rec)
    assert "I hit the grass. | review P(correction) 0.62: Wait, nothing" in line and line.endswith("[do -> move_left]")
    rec.proposed_name, rec.review = "move_left", "Good, that works. I move left."
    assert "->" not in log_line(rec) and "Good, that works" in log_line(rec)
    rec.review = ""
    assert "review" not in log_line(rec)  # N = 0: no review


def test_lookahead_policy_cues_the_review_and_guards_cut_off_texts(lookahead_run):
    from rig_core.inference.policy import RigPolicy

    policy = RigPolicy.from_checkpoint(lookahead_run, max_think=3)
    assert policy.builder.review_cue  # recorded in the run's rig.json
    s = policy.tok.special
    fed = []
    feed = policy._feed
    policy._feed = lambda rows, **kw: fed.append([list(r) for r in rows]) or feed(rows, **kw)
    obs = make_env("crafter").reset(seed=3)
    policy.reset(["Collect wood."] * 2)
    outs = policy.act(np.stack([obs.frame] * 2), lookahead=1)
    opened = [r for rows in fed for r in rows if s["<review>"] in r]
    assert len(opened) == 2
    for row, o in zip(opened, outs):  # </imagine> <review> PROPOSAL, fed by the system
        k = row.index(s["<review>"])
        assert row[k - 1] == s["</imagine>"] and row[k + 1] == policy.tok.action(o.proposed)
    policy.max_think = 0  # every further thought and review is cut off: the proposal is taken
    outs = policy.act(np.stack([obs.frame] * 2), lookahead=1)
    assert all(o.fallback and o.action == o.proposed and not o.think_closed for o in outs)


def test_review_threshold_decides_the_verdict(lookahead_run):
    from rig_core.errors import RigError
    from rig_core.inference.policy import RigPolicy
    from rig_core.review.texts import opening_tokens

    obs = make_env("crafter").reset(seed=3)
    frames = np.stack([obs.frame] * 3)
    runs = {}
    for tau in (None, 0.0, 1.0):
        policy = RigPolicy.from_checkpoint(lookahead_run, max_think=6, review_threshold=tau)
        policy.reset(["Collect wood.", "Collect wood.", "Place a table."])
        runs[tau] = policy.act(frames, lookahead=1)
    worse, fine = policy.meta["review_openings"]["correct"], policy.meta["review_openings"]["confirm"]
    assert (worse, fine) == opening_tokens(policy.tok)  # the tiny data's reviews open as review.yaml's do
    opens = lambda o, ids: any(o.review.startswith(policy.tok.decode_text([t])) for t in ids)
    p = [o.p_worse for o in runs[None]]
    assert all(0.0 <= x <= 1.0 for x in p)
    for tau in (0.0, 1.0):  # the verdict reads the same distribution, whatever the threshold
        assert np.allclose([o.p_worse for o in runs[tau]], p, atol=1e-5)
        assert [o.proposed for o in runs[tau]] == [o.proposed for o in runs[None]]
    assert all(opens(o, worse) for o in runs[0.0])  # tau = 0: every review corrects
    for o in runs[1.0]:  # tau = 1: every proposal is confirmed and taken as it is
        assert (o.fallback or opens(o, fine)) and o.action == o.proposed
    with pytest.raises(RigError, match="review-threshold"):
        RigPolicy.from_checkpoint(lookahead_run, review_threshold=1.5)


def test_the_verdict_reads_the_opening_words_the_checkpoint_recorded(lookahead_run, review_dataset):
    import torch

    from rig_core.data.reader import Dataset
    from rig_core.inference.policy import RigPolicy
    from rig_core.review.texts import data_opening_tokens, opening_tokens

    policy = RigPolicy.from_checkpoint(lookahead_run)
    with Dataset(review_dataset) as ds:
        assert policy.meta["review_openings"] == data_opening_tokens(ds, policy.tok)  # recorded by rig train
    logits = torch.randn(4, policy.model.get_output_embeddings().weight.shape[0], generator=torch.Generator().manual_seed(0))
    p = policy.p_correction(logits)
    stored = policy.meta["review_openings"]
    policy.meta = {**policy.meta, "review_openings": {"correct": stored["confirm"], "confirm": stored["correct"]}}
    policy._openings = None
    assert torch.allclose(policy.p_correction(logits), 1 - p, atol=1e-6)  # the recorded words decide, not review.yaml
    policy.meta = {k: v for k, v in policy.meta.items() if k != "review_openings"}  # none recorded: review.yaml's
    policy._openings = None
    assert [t.tolist() for t in policy.openings(torch.device("cpu"))] == list(opening_tokens(policy.tok))


def test_lookahead_benchmark_prints_the_sweep_and_the_targets(lookahead_run, tiny_checkpoint, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, str(root / "benchmarks" / "lookahead.py"), "--basic", str(tiny_checkpoint),
           "--lookahead", str(lookahead_run), "--suite", "collect_wood", "--episodes", "2", "--steps", "0,2",
           "--max-steps", "3", "--imagination-episodes", "2", "--rollouts", "2", "--horizon", "1",
           "--out", str(tmp_path / "b")]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / "b" / "lookahead.json").read_text())["sections"]["main"]
    assert [e["test_time_steps"] for e in res["lookahead"]["sweep"]] == [0, 2]
    assert res["basic"]["sweep"][0]["overall"]["episodes"] == 2
    assert res["imagination"]["basic"]["rollouts"] == res["imagination"]["lookahead"]["rollouts"] >= 1
    assert len(res["targets"]) == 3 and all(isinstance(t["met"], bool) for t in res["targets"])
    assert "lookahead targets" in p.stdout and "paired interval above 0" in res["targets"][0]["target"]
    assert res["imagine_on"] == "lookahead" and "by_outcome" in res["imagination"]["lookahead"]
    assert [r["test_time_steps"] for r in res["curve"]] == [0, 2]  # each N paired against basic and against N = 0
    for r in res["curve"]:
        assert r["vs_basic"]["paired"] and r["vs_n0"]["paired"] and r["vs_basic"]["episodes"] == [2, 2]
    assert res["curve"][0]["vs_n0"]["success_diff"] == 0  # N = 0 against itself
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=600)
    assert again.returncode == 0 and again.stdout.count("reusing") == 3  # basic N=0, lookahead N=0 and N=2 are not redone
    cmd[cmd.index("--imagination-episodes") + 1] = "0"  # no imagination; a review threshold at N > 0 only
    tau = subprocess.run(cmd + ["--review-threshold", "0.9"], capture_output=True, text=True, cwd=root, timeout=600)
    assert tau.returncode == 0 and tau.stdout.count("reusing") == 2, tau.stderr
    res = json.loads((tmp_path / "b" / "lookahead.json").read_text())["sections"]["main"]
    assert (tmp_path / "b" / "lookahead-n2-t0.9" / "eval.json").exists() and res["review_threshold"] == 0.9
    assert res["imagination"] == {} and len(res["targets"]) == 2


def test_imagination_on_play_benchmark_measures_every_model_on_the_same_windows(lookahead_run, tiny_checkpoint,
                                                                              tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "im.json"
    p = subprocess.run([sys.executable, str(root / "benchmarks" / "imagination_on_play.py"), "--player",
                        str(tiny_checkpoint), "--models", str(tiny_checkpoint), str(lookahead_run), "--episodes", "2",
                        "--max-steps", "4", "--rollouts", "3", "--horizon", "1", "--out", str(out)],
                       capture_output=True, text=True, cwd=root, timeout=600)
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())["sections"]["main"]
    a, b = (res["models"][Path(m).name] for m in (tiny_checkpoint, lookahead_run))  # no private folders: names
    assert a["rollouts"] == b["rollouts"] >= 1 and "by_outcome" in a
    assert sum(r["samples"] for r in a["by_outcome"].values()) == a["horizons"][0]["samples"]
    assert "pooled / ceiling" in p.stdout


def test_lookahead_resume_is_exact(lookahead_run, review_dataset, tiny_checkpoint, tmp_path):
    import shutil

    other = tmp_path / "look"
    shutil.copytree(lookahead_run, other, symlinks=True)
    shutil.rmtree(other / "checkpoints" / "000004")
    (other / "checkpoints" / "last").unlink()
    (other / "checkpoints" / "last").symlink_to("000002")
    r = rig("train", "--resume", other, "--json")
    assert r.exit_code == 0, r.output
    a = [json.loads(x) for x in (lookahead_run / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (other / "metrics.jsonl").read_text().splitlines()]
    la = [m["loss"] for m in a if m["split"] == "train"]
    lb = [m["loss"] for m in b if m["split"] == "train"]
    assert np.allclose(la, lb, rtol=1e-4)


def test_lookahead_benchmark_says_how_two_intervals_relate():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lookahead.py"
    spec = importlib.util.spec_from_file_location("lookahead_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from rig_core.stats.metrics import wilson_interval

    rate = lambda k, n: {"test_time_steps": 0, "overall": {"rate": k / n, "ci95": list(wilson_interval(k, n))}}
    basic, look = rate(18, 50), rate(24, 50)  # 36 % and 48 % on 50 episodes: intervals overlap
    assert bench._needed(basic, look) == "; apart from ~260 episodes per player at these rates"
    assert bench._needed(look, basic) == "" and bench._needed(rate(18, 50), rate(45, 50)) == ""  # lower / apart
    # the same 50 seeds: 15 both, 3 basic only, 9 lookahead only -> the paired plan at that discordance
    won = lambda pattern: [{"task": "collect_wood", "seed": i, "success": w} for i, w in enumerate(pattern)]
    basic["episodes"] = won([True] * 18 + [False] * 32)
    look["episodes"] = won([True] * 15 + [False] * 3 + [True] * 9 + [False] * 23)
    from rig_core.stats.paired import paired_episodes_to_separate

    n = paired_episodes_to_separate(15 / 50, 3 / 50, 9 / 50)
    assert bench._needed(basic, look).endswith(f", ~{n:,} paired episodes at this run's discordance") and n < 260


def test_lookahead_mixes_several_review_datasets(review_dataset, reasoned_dataset, tiny_checkpoint, tmp_path):
    from rig_core.model.run_config import load_run_config
    from rig_core.train.lookahead import prepare_lookahead
    from rig_core.train.lookahead_data import REVIEW
    from rig_core.model.load import load_tokenizers

    other = tmp_path / "rev2"
    r = rig("augment", "--stage", "review", "--checkpoint", tiny_checkpoint, "--data", reasoned_dataset, "--out", other,
            "--episodes", 2, "--max-steps", 4, "--horizon", 2, "--seed", 5, "--confirm-share", 0.5, "--quiet")
    assert r.exit_code == 0, r.output
    out = tmp_path / "mixed"
    r = rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset, "--data", other,
            "--out", out, "--max-steps", 2, "--eval-every", 2, "--save-every", 2, "--set", "merge_codes=40", "--json")
    assert r.exit_code == 0, r.output
    cfg = load_run_config(out)
    merged = load_tokenizers(out / "tokenizer")[1]  # merge_codes: the run encodes with fewer distinct codes
    assert merged.canonical is not None and merged.distinct_codes < merged.codebook_size
    assert set(np.unique(h5py_codes(out))) <= set(merged.canonical)
    assert cfg.data == str(review_dataset) and cfg.more_data == [str(other)]
    tok, image_tok, meta = load_tokenizers(out / "tokenizer")
    both = prepare_lookahead(cfg, out, tok, image_tok, meta).train_set
    cfg.data, cfg.more_data = str(other), []
    alone = prepare_lookahead(cfg, tmp_path / "alone", tok, image_tok, meta).train_set
    counts = {}
    for it in both.items:
        counts[it[0], it[1]] = counts.get((it[0], it[1]), 0) + 1
    assert counts.get((REVIEW, 0)) and counts.get((REVIEW, 1))  # review samples of both datasets
    second = [it for it in both.items if it[0] == REVIEW and it[1] == 1]
    by_key = {it[2:]: k for k, it in enumerate(alone.items) if it[0] == REVIEW}
    assert {it[2:] for it in second} <= set(by_key)  # the same split of the second dataset as on its own
    k = both.items.index(second[0])
    a, b = both[k], alone[by_key[second[0][2:]]]  # read from the second dataset's own frames and codes
    assert all(np.array_equal(a[name], b[name]) for name in a)
    line = _err(rig("train", "--data", reasoned_dataset, "--data", reasoned_dataset, "--out", tmp_path / "b"))
    assert "one dataset" in line and not (tmp_path / "b").exists()


def h5py_codes(run):
    """Every image code a run's cache holds for its review datasets' frames."""
    import h5py

    out = []
    for path in (run / "cache").glob("*.h5"):
        with h5py.File(path, "r") as f:
            f.visititems(lambda _, obj: out.append(obj[()].ravel()) if isinstance(obj, h5py.Dataset) else None)
    return np.concatenate(out)


def test_reviews_can_read_the_forks_real_frames(lookahead_run, tmp_path):
    from rig_core.diagnostics.review_quality import review_samples
    from rig_core.inference.policy import RigPolicy
    from rig_core.tokenize.sequence import IGNORE
    from rig_core.model.run_config import load_run_config
    from rig_core.train.lookahead import prepare_lookahead
    from rig_core.train.lookahead_data import REVIEW, REVIEW_REAL
    from rig_core.model.load import load_tokenizers

    cfg = load_run_config(lookahead_run)
    tok, image_tok, meta = load_tokenizers(lookahead_run / "tokenizer")
    sets = {}
    for frames in ("imagined", "real", "both"):
        cfg.review_frames = frames
        prepared = prepare_lookahead(cfg, tmp_path / frames, tok, image_tok, meta)
        sets[frames] = prepared.train_set
        assert prepared.mix_counts.get("review_real_frames", 0) == sum(it[0] == REVIEW_REAL for it in prepared.train_set.items)
    keys = lambda ds, kinds: sorted(it[1:] for it in ds.items if it[0] in kinds)
    imagined = keys(sets["imagined"], (REVIEW,))
    real = keys(sets["real"], (REVIEW_REAL,))
    assert real and not keys(sets["imagined"], (REVIEW_REAL,))
    assert keys(sets["real"], (REVIEW, REVIEW_REAL)) == imagined  # each sample once, real frames where the fork has them
    assert keys(sets["both"], (REVIEW,)) == imagined and keys(sets["both"], (REVIEW_REAL,)) == real  # each twice
    ds = sets["both"]
    for key in real[:5]:
        source, index, s, j = key
        a, b = ds.build((REVIEW, *key)), ds.build((REVIEW_REAL, *key))
        assert len(a["input_ids"]) == len(b["input_ids"]) and not np.array_equal(a["input_ids"], b["input_ids"]) or \
            np.array_equal(ds._episode(source, index)["imagined"][s, :j], ds._episode(source, index)["real"][s, :j])
        assert np.array_equal(a["labels"] != IGNORE, b["labels"] != IGNORE)  # the same review and action targets
        ids = b["input_ids"].tolist()
        for m in range(j):  # the fork's real frames fill the proposal's imagine spans
            frame = [tok.special["<imagine>"], *tok.images(ds._episode(source, index)["real"][s, m]).tolist(),
                     tok.special["</imagine>"]]
            assert any(ids[k:k + len(frame)] == frame for k in range(len(ids) - len(frame) + 1))
    policy = RigPolicy.from_checkpoint(lookahead_run)
    shown = review_samples(policy, limit=20, frames="real")
    assert shown and len(shown) <= 20
    with pytest.raises(Exception, match="unknown review frames"):
        review_samples(policy, limit=20, frames="dreamt")


def test_lookahead_refuses_unknown_review_frames(review_dataset, tiny_checkpoint, tmp_path):
    out = tmp_path / "look"
    line = _err(rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset, "--out", out,
                    "--set", "review_frames=dreamt"))
    assert "review_frames" in line and not out.exists()


def test_relabelled_samples_teach_the_experts_thought_on_the_policys_own_history(lookahead_run, tmp_path):
    from rig_core.tokenize.sequence import IGNORE
    from rig_core.model.run_config import load_run_config
    from rig_core.train.lookahead import prepare_lookahead
    from rig_core.train.lookahead_data import RELABEL
    from rig_core.model.load import load_tokenizers

    cfg = load_run_config(lookahead_run)
    tok, image_tok, meta = load_tokenizers(lookahead_run / "tokenizer")
    assert "relabel" not in prepare_lookahead(cfg, tmp_path / "off", tok, image_tok, meta).mix_counts  # default 0
    cfg.mix_relabel = 0.4
    prepared = prepare_lookahead(cfg, tmp_path / "on", tok, image_tok, meta)
    ds = prepared.train_set
    items = [it for it in ds.items if it[0] == RELABEL]
    assert items and prepared.mix_counts["relabel"] == len(items)
    s_ = tok.special
    seen_imagine = {True: 0, False: 0}
    for _, source, index, s, _ in items[:12]:
        sample = ds.build((RELABEL, source, index, s, 0))
        e = ds._episode(source, index)
        t = int(e["step"][s])
        expert, taken = int(e["expert"][s]), int(e["actions"][t])
        thought = ds.expert_thoughts(source, index)[t]
        assert thought and len(ds.expert_thoughts(source, index)) == len(e["actions"])
        tail = ds.builder.step(e["codes"][t], thought, expert, e["codes"][t + 1] if taken == expert else None)
        n = len(tail)
        assert sample["input_ids"][-n:].tolist() == tail.ids  # the expert's thought and action at the visited state
        assert sample["labels"][-n:].tolist() == tail.labels and (sample["labels"][:-n] == IGNORE).all()
        seen_imagine[taken == expert] += 1
        assert (s_["<imagine>"] in sample["input_ids"][-n:].tolist()) == (taken == expert)
        if t:  # history: the policy's own last step, its thought as it wrote it, as context
            last = ds.builder.step(e["codes"][t - 1], e["reasoning"][t - 1], int(e["actions"][t - 1]), e["codes"][t])
            assert sample["input_ids"][-n - len(last):-n].tolist() == last.ids
    assert sum(seen_imagine.values()) == min(12, len(items))
    # where the policy took another action, the thought ends on the expert's action, the sample's target
    from dataclasses import replace
    from rig_core.annotate.context import episode_contexts
    from rig_core.annotate.rules import RuleAnnotator

    rules, differed = RuleAnnotator(0), 0
    for _, source, index, s, _ in items:
        e = ds._episode(source, index)
        t, expert = int(e["step"][s]), int(e["expert"][s])
        if int(e["actions"][t]) == expert:
            continue
        ctx = episode_contexts(e["ep"], e["ds"].action_names, e["ds"].manifest.get("semantic_names", {}))[t]
        seed = int(e["ep"].attrs.get("seed", 0))
        thought = ds.expert_thoughts(source, index)[t]
        assert thought == rules.annotate(replace(ctx, action=e["ds"].action_names[expert]), seed)
        differed += thought != rules.annotate(ctx, seed)  # the taken action's phrasing
    assert differed > 0


def test_lookahead_refuses_a_negative_relabel_share(review_dataset, tiny_checkpoint, tmp_path):
    out = tmp_path / "look"
    line = _err(rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset, "--out", out,
                    "--set", "mix_relabel=-0.1"))
    assert "impossible mix" in line and "relabel -0.1" in line and not out.exists()


def test_blocked_share_draws_again_from_the_blocked_align_samples(lookahead_run, tmp_path, monkeypatch):
    from rig_core.model.load import load_tokenizers
    from rig_core.model.run_config import load_run_config
    from rig_core.train import lookahead_data
    from rig_core.train.lookahead import prepare_lookahead
    from rig_core.train.lookahead_data import ALIGN, BLOCKED

    cfg = load_run_config(lookahead_run)
    tok, image_tok, meta = load_tokenizers(lookahead_run / "tokenizer")
    cfg.mix_blocked = 0.5
    monkeypatch.setattr(lookahead_data, "blocked_states", lambda ep, shifts: set())
    with pytest.raises(Exception, match="no blocked moves"):
        prepare_lookahead(cfg, tmp_path / "none", tok, image_tok, meta)
    monkeypatch.setattr(lookahead_data, "blocked_states", lambda ep, shifts: {0})  # the first state of each episode
    prepared = prepare_lookahead(cfg, tmp_path / "on", tok, image_tok, meta)
    ds = prepared.train_set
    blocked = [it for it in ds.items if it[0] == BLOCKED]
    assert blocked and prepared.mix_counts["blocked"] == len(blocked)
    assert {it[3] for it in blocked} == {0}
    align = {it[1:] for it in ds.items if it[0] == ALIGN}
    for it in blocked[:3]:  # an align sample of that state: the same tokens and targets
        sample = ds.build(it)
        twin = ds.build((ALIGN, *it[1:]))
        assert np.array_equal(sample["input_ids"], twin["input_ids"]) and np.array_equal(sample["labels"], twin["labels"])
    assert align  # the ordinary align samples are still drawn beside the blocked ones


def test_lookahead_refuses_a_negative_blocked_share(review_dataset, tiny_checkpoint, tmp_path):
    out = tmp_path / "look"
    line = _err(rig("train", "--stage", "lookahead", "--init", tiny_checkpoint, "--data", review_dataset, "--out", out,
                    "--set", "mix_blocked=-0.2"))
    assert "impossible mix" in line and "blocked -0.2" in line and not out.exists()
