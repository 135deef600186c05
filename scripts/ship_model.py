"""Package a trained run as a shipped model (rig_core/resources/models/NAME) with its model card.

    python scripts/ship_model.py --run runs/crafter-basic/basic --eval runs/crafter-basic/eval \
        --name crafter-basic --recipe crafter-basic

Copies the run's last checkpoint (weights and tokenizers, no optimizer state) and its config, and writes
card.json (the figures) and README.md (the model card) from the run's metrics and the evaluation folder
written by `rig evaluate` with several players (the model, the expert and the random agent on the same
seeds). Every figure on the card comes from those files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

from rig_core.evaluate.compare import load_evaluation
from rig_core.evaluate.report import overall, whole_games
from rig_core.fsutil import atomic_write_json, atomic_write_text
from rig_core.results import public
from rig_core.model.checkpoint import find_checkpoint, last_step
from rig_core.model.shipped import models_folder

REPO = Path(__file__).resolve().parents[1]


def _metrics(run: Path) -> tuple[dict, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    val = [r for r in rows if r.get("split") == "val"]
    seconds = sum(r.get("compute_s", 0) + r.get("data_s", 0) for r in rows if r.get("split") == "train")
    return (val[-1] if val else {}), seconds


def _lineage(run: Path) -> list[dict]:
    """Every run the weights went through, oldest first (a run started with --init continues another): its
    data's collection settings, steps, peak learning rate and training compute."""
    from rig_core.model.checkpoint import run_of_checkpoint

    out = []
    while True:
        cfg = json.loads((run / "config.json").read_text())
        data = Path(cfg["data"])  # absolute, relative to where training ran, or (a pipeline's) beside the run
        data = data if data.is_absolute() or data.exists() else run.parent / data.name
        collect = _collect_settings(data)
        _, seconds = _metrics(run)
        out.append({"data": collect, "steps": last_step(run), "lr": cfg["lr"], "compute_s": round(seconds),
                    "command": cfg.get("command", "")})
        if not cfg.get("init_checkpoint"):
            return out[::-1]
        run = run_of_checkpoint(Path(cfg["init_checkpoint"]))


def _collect_settings(data: Path) -> dict:
    """The collection settings behind a dataset (a reasoned dataset records its source's producer)."""
    doc = json.loads((data / "dataset.json").read_text())
    producer = (doc.get("source") or {}).get("producer") or doc["producer"]
    cfg = producer["config"]
    return {k: cfg.get(k) for k in ("agent", "task", "episodes", "seed", "epsilon")}


def _player(eval_dir: Path, name: str) -> Path:
    """The evaluation of ``name`` in a folder of several players: the subfolder of that name, else the agent of
    that name, else ("model") the one trained model."""
    if (eval_dir / name / "eval.json").is_file():
        return eval_dir / name
    for sub in sorted(eval_dir.iterdir()):
        if sub.is_dir() and (sub / "eval.json").is_file():
            doc = load_evaluation(sub)
            who = doc["player"].get("agent") or "model"
            if who == name:
                return sub
    raise SystemExit(f"no {name} evaluation in {eval_dir}")


def _others(eval_dir: Path, model: Path) -> list[Path]:
    return [sub for sub in sorted(eval_dir.iterdir()) if sub.is_dir() and (sub / "eval.json").is_file()
            and sub.resolve() != model.resolve()]


def _figures(sub: Path) -> dict:
    doc = load_evaluation(sub)
    e = doc["sweep"][0]
    o = overall(e)
    return {"success": o["rate"], "success_ci95": o["ci95"], "episodes": o["episodes"],
            "per_task": {t: {"success": v["rate"], "episodes": v["episodes"]} for t, v in e["tasks"].items()},
            "seeds": [min(doc["seeds"]), max(doc["seeds"])], "max_steps": doc["max_steps"], "suite": doc["suite"],
            "episodes_per_task": doc["episodes_per_task"], "command": doc["command"],
            "temperature": doc.get("temperature"), "seconds": e.get("seconds"),
            "actions_per_s": e.get("actions_per_s"), "peak_memory_mb": e.get("peak_memory_mb")} | (
        {"open": whole_games(e)} if "open" in e else {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--eval", type=Path, help="rig evaluate folder: the model, expert and random (without it: "
                    "package the weights only, then evaluate the shipped model by name and run this again)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--temperature", type=float, default=0.0,
                    help="the decoding the model was evaluated with, written to its generation_config.json")
    ap.add_argument("--player", default="model",
                    help="the model's folder in --eval, where it holds several trained models (e.g. rig)")
    ap.add_argument("--limits", default="", help="the model card's Limits section (default: the basic tasks')")
    a = ap.parse_args()
    ckpt = find_checkpoint(a.run)
    cfg = json.loads((a.run / "config.json").read_text())
    dest = models_folder() / a.name
    tmp = dest.with_name(f".{a.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for part in ("model", "tokenizer"):
        shutil.copytree(ckpt / part, tmp / part)
    (tmp / "model" / "model.safetensors").chmod(0o644)
    (tmp / "tokenizer" / "image_tokenizer.safetensors").chmod(0o644)
    gen_path = tmp / "model" / "generation_config.json"
    gen = json.loads(gen_path.read_text())
    gen.update(do_sample=a.temperature > 0, temperature=a.temperature or None)
    gen_path.write_text(json.dumps(gen, indent=2) + "\n")
    cfg = public({**cfg, "data": f"{Path(cfg['data']).name} (see README.md)", "out": a.name})  # no private folders
    atomic_write_json(tmp / "config.json", cfg)
    val, _ = _metrics(a.run)
    stages = _lineage(a.run)
    mine = _player(a.eval, a.player) if a.eval else None  # the model's own evaluation
    card = public({
        "name": a.name, "stage": cfg["stage"], "description": a.description,
        "parameters": _parameters(tmp / "model"),
        "size": cfg["size"], "context": cfg["context"], "training_steps": sum(s["steps"] for s in stages),
        "training_compute_s": round(sum(s["compute_s"] for s in stages)), "lineage": stages, "precision": cfg["mixed_precision"],
        "temperature": a.temperature,
        "recipe": a.recipe,
        "held_out": {k: round(v, 4) for k, v in val.items() if k.startswith(("loss", "action_acc"))},
        "evaluation": _figures(mine) if a.eval else None,
        "baselines": {sub.name: _figures(sub) for sub in _others(a.eval, mine)}
        if a.eval else None,
        "paired": _paired(a.eval) if a.eval else None,
        "imagination": _imagination(mine) if a.eval else None,
        "limits": a.limits,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                 text=True).stdout.strip(),
        "reproduce": f"rig pipeline {a.recipe} --out runs/{a.name} --workers 2",
    })
    atomic_write_json(tmp / "card.json", card)
    atomic_write_text(tmp / "README.md", _markdown(card))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    print(f"shipped {dest} ({(dest / 'model' / 'model.safetensors').stat().st_size / 1e6:.1f} MB of weights)")


def _parameters(model_dir: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as fh:
        return sum(_prod(fh.get_slice(k).get_shape()) for k in fh.keys())


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _paired(eval_dir: Path) -> list[dict]:
    doc = json.loads((eval_dir / "compare.json").read_text())
    keys = ("player", "baseline", "paired", "success_diff", "success_diff_ci95", "mcnemar_p", "crafter_score_diff",
            "crafter_score_diff_ci95", "length_diff", "length_diff_ci95", "achievement_pairs")
    return [{k: r[k] for k in keys if k in r} for r in doc["rows"]]


def _imagination(sub: Path) -> dict | None:
    """The 1-step imagination on the model's own evaluation episodes (greedy), against copying the last frame."""
    doc = load_evaluation(sub)
    horizons = (doc.get("imagination") or {}).get("horizons") or []
    one = next((h for h in horizons if h["horizon"] == 1), None)
    if one is None:
        return None
    return {k: one[k] for k in ("samples", "psnr_model", "psnr_copy_last", "psnr_gain_ci95", "cell_accuracy")}


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _imagination_text(c: dict) -> str:
    im = c.get("imagination")
    if not im:
        return ""
    lo, hi = im["psnr_gain_ci95"]
    return (f"\nImagination, 1 step ahead on the policy's own evaluation episodes ({im['samples']} states, greedy): "
            f"{im['psnr_model']:.1f} dB PSNR against {im['psnr_copy_last']:.1f} dB for copying the last frame "
            f"(gain interval [{lo:+.1f}, {hi:+.1f}] dB), cell accuracy {100 * im['cell_accuracy']:.0f} %.\n")


def _runs(c: dict) -> str:
    return "\n".join(
        f"- {'Then continued (`rig train --init`)' if i else 'Trained from scratch'} for {s['steps']} steps (peak learning "
        f"rate {s['lr']:g}) on {s['data']['episodes']} episodes of the `{s['data']['task']}` tasks by the "
        f"`{s['data']['agent']}` agent (world seeds {s['data']['seed']}..{s['data']['seed'] + s['data']['episodes'] - 1}, "
        f"random action with probability {s['data']['epsilon']}), reasoning added by `rig augment --stage reason`."
        for i, s in enumerate(c["lineage"]))


def _training(c: dict) -> str:
    held = ", ".join(f"{k} {v}" for k, v in c["held_out"].items())
    return f"""## Training

- Recipe `{c['recipe']}`; reproduce with `{c['reproduce']}`.
{_runs(c)}
- {c['training_steps']} optimizer steps in all, {c['training_compute_s'] / 60:.0f} min of training compute on 2 CPU cores ({c['precision']}).
- Held out (10 % of the last run's episodes, its last evaluation): {held}.
- Code: commit `{c['commit']}` (the recipe above reproduces the model with it).
"""


def _open_markdown(c: dict) -> str:
    """The card of a model evaluated on whole games: the Crafter score of every player on the same seeds, how
    the games ended, success per achievement and the paired differences."""
    ev = c["evaluation"]
    players = [(c["name"], ev)] + list(c["baselines"].items())
    score = lambda f: (f"{f['open']['crafter_score']:.1f} [{f['open']['crafter_score_ci95'][0]:.1f}, "
                       f"{f['open']['crafter_score_ci95'][1]:.1f}]")
    ended = lambda f: ", ".join(f"{k} {v}" for k, v in sorted(f["open"]["ended"].items(), key=lambda x: -x[1])) or "-"
    speed = lambda f: f"{f['seconds'] / 60:.0f} min" if f.get("seconds") else "-"
    rows = "\n".join(f"| {who} | {score(f)} | {f['open']['length_mean']:.0f} [{f['open']['length_ci95'][0]:.0f}, "
                     f"{f['open']['length_ci95'][1]:.0f}] | {ended(f)} | {speed(f)} |" for who, f in players)
    names = list(ev["open"]["achievement_rates"])
    ach = "\n".join(f"| {a} | " + " | ".join(f"{f['open']['achievement_rates'][a]:.0f} % "
                                            f"[{f['open']['achievement_ci95'][a][0]:.0f}, "
                                            f"{f['open']['achievement_ci95'][a][1]:.0f}]" for _, f in players) + " |"
                    for a in names)
    paired = []
    for r in c["paired"] or []:
        if "crafter_score_diff" not in r:
            continue
        lo, hi = r["crafter_score_diff_ci95"]
        sig = [f"{a} {100 * (x['b'] - x['a']):+.0f} (p {x['mcnemar_p']:.2g})" for a, x in r["achievement_pairs"].items()
               if x["mcnemar_p"] is not None and x["mcnemar_p"] < 0.05]
        paired.append(f"| {Path(r['player']).name} − {Path(r['baseline']).name} | {r['crafter_score_diff']:+.1f} "
                      f"[{lo:+.1f}, {hi:+.1f}] | {r['length_diff']:+.0f} [{r['length_diff_ci95'][0]:+.0f}, "
                      f"{r['length_diff_ci95'][1]:+.0f}] | {', '.join(sig) or 'none'} |")
    decoding = (f"sampled at temperature {c['temperature']} (its `generation_config.json`)" if c["temperature"]
                else "greedy decoding")
    memory = f", peak memory of a worker process {ev['peak_memory_mb']:.0f} MB" if ev.get("peak_memory_mb") else ""
    return f"""# {c['name']}

{c['description']}

A {c['stage']} RIG policy: one {c['parameters'] / 1e6:.1f}M-parameter Llama-style transformer ({c['size']} size,
{c['context']}-token context) trained from scratch to reason, act and imagine the next frame over whole Crafter
games. Use it by name: `rig play --live --checkpoint {c['name']} --task open`, `rig evaluate --checkpoint
{c['name']} --suite open`. It loads with plain `transformers` from `model/`; the tokenizers are in `tokenizer/`.

## Evaluation: whole games

{ev['open']['episodes']} games on world seeds {ev['seeds'][0]:,}-{ev['seeds'][1]:,} (never trained or tuned on), each
ending at death or at {ev['max_steps']:,} steps, {decoding}, every player on the same seeds. The Crafter score is
the geometric mean of the 22 achievements' success rates (95 % intervals: bootstrap over games).

| player | Crafter score [95 %] | game length [95 %] | how games ended | time for the games (2 workers) |
|---|---|---|---|---|
{rows}

The model played at {ev['actions_per_s']:.1f} actions/s on 2 CPU cores{memory}. Command: `{ev['command']}`

Paired on the same seeds (score: bootstrap over seeds; achievements whose McNemar p < 0.05):

| difference | Crafter score [95 %] | game length [95 %] | achievements |
|---|---|---|---|
{chr(10).join(paired)}

| achievement | {' | '.join(who for who, _ in players)} |
|---|{'---|' * len(players)}
{ach}
{_imagination_text(c)}
{_training(c)}
## Limits

{c.get('limits') or 'See docs/experiments.md.'}
"""


def _markdown(c: dict) -> str:
    if c["evaluation"] is None:
        return f"# {c['name']}\n\nNot evaluated yet.\n"
    if "open" in c["evaluation"]:
        return _open_markdown(c)
    ev, ex, rnd = c["evaluation"], c["baselines"]["expert"], c["baselines"]["random"]
    decoding = (f"sampled at temperature {c['temperature']} (its `generation_config.json`; `--temperature 0` "
                "decodes greedily)" if c["temperature"] else "greedy decoding")
    ci = lambda f: f"[{_pct(f['success_ci95'][0])}, {_pct(f['success_ci95'][1])}]"
    tasks = "\n".join(f"| {t} | {_pct(v['success'])} | {_pct(ex['per_task'][t]['success'])} | "
                      f"{_pct(rnd['per_task'][t]['success'])} | {v['episodes']} |" for t, v in ev["per_task"].items())
    return f"""# {c['name']}

{c['description']}

A {c['stage']} RIG policy: one {c['parameters'] / 1e6:.1f}M-parameter Llama-style transformer ({c['size']} size,
{c['context']}-token context) trained from scratch to reason, act and imagine the next frame in Crafter. Use it by
name: `rig play --live --checkpoint {c['name']}`, `rig evaluate --checkpoint {c['name']}`, `rig train --init
{c['name']}` (continue training), `rig augment --stage review --checkpoint {c['name']}`. It loads with plain
`transformers` from `model/` (`AutoModelForCausalLM.from_pretrained`); the tokenizers are in `tokenizer/`.

## Evaluation

`{ev['suite']}` suite, {ev['episodes_per_task']} episodes per task on world seeds {ev['seeds'][0]:,}-{ev['seeds'][1]:,}
(never trained or tuned on), at most {ev['max_steps']} steps, {decoding}, every player on the same seeds:

| player | success | 95 % interval | episodes |
|---|---|---|---|
| {c['name']} | {_pct(ev['success'])} | {ci(ev)} | {ev['episodes']} |
| expert | {_pct(ex['success'])} | {ci(ex)} | {ex['episodes']} |
| random | {_pct(rnd['success'])} | {ci(rnd)} | {rnd['episodes']} |

| task | {c['name']} | expert | random | episodes |
|---|---|---|---|---|
{tasks}

Command: `{ev['command']}`
{_imagination_text(c)}
{_training(c)}
## Limits

Trained on the five basic tasks only; on the policy's own states it reads its frame less well than on the expert's
(see docs/experiments.md), and its imagination is a 1-step world model trained on expert play.
"""


if __name__ == "__main__":
    main()
