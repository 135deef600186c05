"""The ceiling of choosing among the policy's own candidates: the expert as an oracle over its top-K actions.

    rig evaluate --checkpoint crafter-basic --suite basic --episodes 40 --max-steps 60 --seed-start 12000000 \\
        --batch 50 --workers 2 --imagination-episodes 0 --gifs 0 --out evals/base
    python benchmarks/candidates.py --checkpoint crafter-basic --suite basic --episodes 40 --max-steps 60 \\
        --seed-start 12000000 --batch 50 --workers 2 --candidates 1,2,4 --offline 4 --baseline evals/base \\
        --out bench-candidates --section oracle_ceiling --update

At every step of its play the policy thinks and draws its action as at N = 0 (its own temperature); the
player then takes the policy's K most probable actions after that thought, has the expert judge each in
forks of the live env (a candidate is fine when it is not worse than the expert's own move after
``--horizon`` steps by any of the judge's reasons, the rules of the review data: rig_core/review/oracle.py)
and plays the first fine one, or the top one where none is (rig_core/review/candidates.py). K = 1 plays the
policy's most likely action, no judge. This is the most any verifier over K of the policy's candidates can
give. ``--offline K`` plays the policy's own drawn action (the N = 0 player, on the same worker split and
sampling seed as rig evaluate, so the same episodes) and judges its top-K and drawn action at every state:
the share of states where the top-1 is worse and another of the top-k is fine.

The learned verifier (``--verifier``, a lookahead checkpoint trained with candidate samples: ``--set
mix_verify``): a player per K of ``--verify-k`` and N of ``--verify-n`` plays ``rig evaluate --candidates K
--test-time-steps N`` (K = 1: N = 0 only): the policy's top-K after its thought, each imagined N steps and scored
by its review's P(worse), the least likely worse played (``--margin``). ``--judge`` has the oracle judge every
candidate of every state it plays (the action played is the verifier's): ranking quality within a state, i.e.
the share of states where the action played is fine against the policy's top-1, what it fixed and broke, where
its least-likely-worse candidate is fine, what each of a few margins would have chosen on the same states, and
the ROC AUC of its P(worse) for the oracle's worse verdicts (rig_core/review/candidates.py ``ranking``). Its
actions/s leave out the oracle's forks (``actions_per_s_policy``). Each K's players at N > 0 are also paired
against its N = 0 (``imagination``: what imagining the candidates' outcomes adds).

    python benchmarks/candidates.py --checkpoint crafter-basic --suite basic --episodes 40 --max-steps 60 \\
        --seed-start 14000000 --batch 50 --workers 2 --candidates 1 --offline 0 \\
        --verifier runs/verifier/verify --verify-k 1,4,2 --verify-n 0,1,2 --baseline OUT/top1 \\
        --out OUT --resume --section verifier_grid --update
    (the top-1 player is crafter-basic at N = 0: run once without --baseline, then again with it)

Each player is written as OUT/<player>/eval.json in rig evaluate's format (so ``rig evaluate --compare``
pairs them); with ``--baseline`` (an evaluation of the same seeds) every player is compared against it,
paired on the episodes (Newcombe interval, McNemar). Writes section --section of OUT/candidates.json (with
--update also of benchmarks/results/candidates.json). ``--resume`` keeps players already written with the same
settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from rich.table import Table

from rig_core.config import EvalConfig
from rig_core.errors import RigError
from rig_core.evaluate.compare import EVAL_FORMAT, EVAL_VERSION, compare_players, load_evaluation
from rig_core.evaluate.runner import resolve_suite, summarize_results
from rig_core.fsutil import atomic_write_json, read_json
from rig_core.results import command as command_of
from rig_core.results import publish
from rig_core.versions import versions

from candidates_tables import out, pct, print_imagination, print_offline, print_ranking

RESULTS = Path(__file__).parent / "results" / "candidates.json"


class Timed:
    """A scorer that counts the seconds it takes (the oracle's forks are no part of a player's speed)."""

    def __init__(self, scorer):
        self.scorer, self.seconds = scorer, 0.0

    def begin(self, tasks, seeds, envs):
        self.scorer.begin(tasks, seeds, envs)

    def score(self, row, env, obs, actions):
        start = time.perf_counter()
        try:
            return self.scorer.score(row, env, obs, actions)
        finally:
            self.seconds += time.perf_counter() - start


def play_share(job: dict) -> tuple[list[dict], list[tuple], float, float]:
    """One worker's (task, seed) pairs, in batches as rig evaluate plays them: episode rows, judged states, the
    seconds it took and the seconds of those the oracle's judging took."""
    from rig_core.inference.episodes import play
    from rig_core.inference.policy import RigPolicy
    from rig_core.review.candidates import CandidatePlayer
    from rig_core.review.oracle import OracleScorer
    from rig_core.tasks import load_suite

    verifier = job.get("verifier")
    policy = RigPolicy.from_checkpoint(Path(verifier or job["checkpoint"]), seed=job["seed"],
                                       temperature=job["temperature"], device=job["device"],
                                       candidate_margin=job.get("margin") or 0.0)
    suite, pairs, batch = load_suite("crafter"), job["pairs"], job["batch"]
    rows, states, judging = [], [], []
    start = time.perf_counter()
    for i in range(0, len(pairs), batch):
        chunk = pairs[i : i + batch]
        tasks, seeds = [suite.get(t) for t, _ in chunk], [s for _, s in chunk]
        scorer = Timed(OracleScorer(job["horizon"])) if job["scorer"] == "oracle" or job.get("judge") else None
        judging += [scorer] if scorer is not None else []
        record = (lambda s, chunk=chunk: states.append((*chunk[s.env], s))) if job["follow"] == "policy" else None
        # the verifier's own play has nothing to choose (K = 1 or its review chose): judged only with --judge
        picker = (None if verifier and not job.get("judge") else
                  CandidatePlayer(job["k"], scorer, job["follow"], on_state=record))
        for r in play(tasks, seeds, policy=policy, max_steps=job["max_steps"], compare_expert=True, imagine=False,
                      picker=picker, candidates=job["k"] if verifier else None,
                      test_time_steps=job.get("n", 0) if verifier else 0):
            rows.append({k: v for k, v in asdict(r).items() if k != "env" and (k != "ranks" or v)})  # as rig evaluate
        print(f"{job['name']} worker {job['worker']}: {i + len(chunk)}/{len(pairs)} episodes, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return rows, states, time.perf_counter() - start, sum(s.seconds for s in judging)


def players(a) -> list[dict]:
    try:
        ks = [int(x) for x in a.candidates.split(",") if x.strip()] if a.candidates else []
    except ValueError:
        ks = [0]
    if any(k < 1 for k in ks):
        raise RigError(f"--candidates {a.candidates} is not a list of numbers of 1 or more", "e.g. --candidates 1,2,4")
    if a.offline < 0 or a.horizon < 1:
        raise RigError(f"--offline {a.offline} / --horizon {a.horizon}: need 0 or more / 1 or more",
                       "e.g. --offline 4 --horizon 3")
    plan = [{"name": f"top{k}" + ("-oracle" if k > 1 else ""), "k": k, "scorer": "oracle" if k > 1 else None,
             "follow": "best"} for k in ks]
    if a.offline:
        plan.append({"name": f"own-top{a.offline}-judged", "k": a.offline, "scorer": "oracle", "follow": "policy"})
    if a.verifier:
        try:
            vk = [int(x) for x in a.verify_k.split(",") if x.strip()]
            vn = [int(x) for x in a.verify_n.split(",") if x.strip()]
        except ValueError:
            vk = vn = [-1]
        if not vk or not vn or min(vk) < 1 or min(vn) < 0:
            raise RigError(f"--verify-k {a.verify_k} / --verify-n {a.verify_n}: need numbers of 1 or more / 0 or more",
                           "e.g. --verify-k 1,2,4 --verify-n 0,1,2")
        if not 0 <= a.margin < 1:
            raise RigError(f"--margin {a.margin} is not a probability below 1", "pass e.g. --margin 0 or 0.1")
        for k in vk:
            for n in ([0] if k == 1 else vn):
                plan.append({"name": f"verifier-top{k}" + (f"-n{n}" if k > 1 else ""), "k": k, "n": n,
                             "scorer": "review" if k > 1 else None, "verifier": a.verifier,
                             "follow": "policy" if a.judge else "best", "judge": a.judge, "margin": a.margin})
    return plan


def settings(a, p: dict, temperature: float, device: str) -> dict:
    return {"checkpoint": a.checkpoint, "suite": a.suite, "episodes": a.episodes, "max_steps": a.max_steps,
            "seed_start": a.seed_start, "batch": a.batch, "workers": a.workers, "seed": a.seed,
            "temperature": temperature, "horizon": a.horizon, "k": p["k"], "scorer": p["scorer"],
            "follow": p["follow"], "device": device} | ({"verifier": p["verifier"], "n": p["n"], "margin": p["margin"],
                                                         "judge": p["judge"]} if p.get("verifier") else {})


def run_player(a, p: dict, cfg: EvalConfig) -> tuple[dict, list[tuple]]:
    """Play one player on every (task, seed) of the suite; its eval.json and judged states."""
    folder = a.out / p["name"]
    temperature, device = p.get("temperature", cfg.temperature), cfg.device
    want = settings(a, p, temperature, device)
    if a.resume and (folder / "eval.json").exists():
        doc = read_json(folder / "eval.json", "delete the folder to replay it")
        if doc.get("benchmark") == want:
            out.print(f"{p['name']}: kept from {folder}")
            states = read_json(folder / "states.json", "delete the folder to replay it") \
                if p["follow"] == "policy" else []
            return doc, [(t, s, as_state(j)) for t, s, j in states]
    from rig_core.envs import make_env

    seeds = [a.seed_start + j for j in range(a.episodes)]
    pairs = [(t.id, s) for t in resolve_suite(a.suite) for s in seeds]
    jobs = [{**want, "name": p["name"], "worker": w, "pairs": pairs[w :: a.workers]}
            for w in range(a.workers) if pairs[w :: a.workers]]
    start = time.perf_counter()
    if len(jobs) == 1:
        parts = [play_share(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(len(jobs)) as pool:
            parts = pool.map(play_share, jobs)
    elapsed = time.perf_counter() - start
    rows = [r for part in parts for r in part[0]]
    states = [s for part in parts for s in part[1]]
    entry = {"test_time_steps": p.get("n", 0), **summarize_results(rows, make_env().achievement_names),
             "seconds": elapsed}
    entry["actions_per_s"] = entry["steps"] / elapsed if elapsed > 0 else None
    # the workers' throughput without the oracle's forks: each worker's steps over its own time less its judging
    own = [(sum(r["steps"] for r in part[0]), part[2] - part[3]) for part in parts]
    entry["actions_per_s_policy"] = sum(n / t for n, t in own if t > 0) or None
    entry["judge_seconds"] = sum(part[3] for part in parts)
    entry["episodes"] = rows
    player = ({"checkpoint": p["verifier"], "agent": None, "candidates": p["k"], "scorer": p["scorer"],
               "candidate_margin": p["margin"], "judged": p["judge"]} if p.get("verifier") else
              {"checkpoint": a.checkpoint, "agent": None, "candidates": p["k"], "scorer": p["scorer"],
               "follow": p["follow"], "horizon": a.horizon})
    doc = {"format": EVAL_FORMAT, "version": EVAL_VERSION,
           "player": player,
           "suite": a.suite, "episodes_per_task": a.episodes, "seeds": seeds, "max_steps": a.max_steps,
           "temperature": temperature, "sampling_seed": a.seed, "review_threshold": None, "history": None,
           "step_cache": True, "device": device, "command": cfg.command, "config": cfg.to_dict(),
           "versions": versions(),
           "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "benchmark": want,
           "sweep": [entry]}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "eval.json", doc)
    if p["follow"] == "policy":
        atomic_write_json(folder / "states.json", [[t, s, asdict(j)] for t, s, j in states])
    return doc, states


def as_state(d: dict):
    """A judged state from its JSON form."""
    from rig_core.review.candidates import JudgedState, Judgement

    d = dict(d)
    d["judgements"] = [Judgement(**j) for j in d["judgements"]]
    d["own_judgement"] = Judgement(**d["own_judgement"]) if d["own_judgement"] else None
    return JudgedState(**d)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="crafter-basic", help="a run, a checkpoint or a shipped model")
    p.add_argument("--suite", default="basic")
    p.add_argument("--episodes", type=int, default=40, help="episodes per task")
    p.add_argument("--max-steps", type=int, default=60)
    p.add_argument("--seed-start", type=int, default=12_000_000, help="first world seed (never used for tuning)")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="sampling seed, as rig evaluate --seed")
    p.add_argument("--temperature", type=float, default=None, help="default: the model's own")
    p.add_argument("--candidates", default="1,2,4", help="comma-separated K: a top-K oracle player each")
    p.add_argument("--offline", type=int, default=4, help="the policy's own play with its top-K judged (0: none)")
    p.add_argument("--horizon", type=int, default=3, help="steps after which the judge compares the branches")
    p.add_argument("--verifier", default=None, help="a lookahead checkpoint: players of its learned verifier")
    p.add_argument("--verify-k", default="1,2,4", help="with --verifier: comma-separated K (candidates)")
    p.add_argument("--verify-n", default="0,1,2", help="with --verifier: comma-separated N (imagined steps)")
    p.add_argument("--margin", type=float, default=0.0, help="with --verifier: rig evaluate --candidate-margin")
    p.add_argument("--judge", action="store_true", help="with --verifier: the oracle judges every candidate of "
                   "every state played (ranking quality; slow)")
    p.add_argument("--baseline", type=Path, default=None, help="an evaluation of the same seeds to pair against")
    p.add_argument("--out", type=Path, default=Path("bench-candidates"))
    p.add_argument("--resume", action="store_true", help="keep players already in OUT with the same settings")
    p.add_argument("--section", default="main", help="the question this run answers, as a short name: the section "
                   "of the results file it writes")
    p.add_argument("--update", action="store_true", help="also write the section of benchmarks/results/candidates.json")
    a = p.parse_args(argv)
    try:
        return run(a, sys.argv[1:] if argv is None else list(argv))
    except RigError as exc:
        print(f"error: {exc.line()}", file=sys.stderr)
        sys.exit(exc.exit_code)


def run(a, args: list[str]) -> dict:
    from rig_core.inference.policy import RigPolicy
    from rig_core.review.candidates import headroom, ranking

    command = command_of("benchmarks/candidates.py", args)
    cfg = EvalConfig(suite=a.suite, episodes=a.episodes, seed_start=a.seed_start, max_steps=a.max_steps,
                     batch=a.batch, workers=a.workers, imagination_episodes=0, gifs=0, temperature=a.temperature,
                     seed=a.seed, command=command).validate()
    plan = players(a)
    resolve_suite(a.suite)
    if a.baseline is not None:
        load_evaluation(a.baseline)  # before hours of play: an evaluation of rig's format
    probe = RigPolicy.from_checkpoint(Path(a.checkpoint), temperature=a.temperature)
    temperature, device = float(probe.temperature or 0.0), str(probe.device)
    del probe
    cfg = replace(cfg, temperature=temperature, device=device)
    if a.verifier:  # before hours of play: a checkpoint whose review can score candidates
        from rig_core.inference.branches import check_candidates

        probe = RigPolicy.from_checkpoint(Path(a.verifier), temperature=a.temperature)
        for pl in plan:
            if pl.get("verifier"):
                check_candidates(pl["k"], pl["n"], probe.stage, probe.checkpoint)
                pl["temperature"] = float(probe.temperature or 0.0)
        del probe
    docs, offline, ranked = {}, None, {}
    for pl in plan:
        doc, states = run_player(a, pl, cfg)
        docs[pl["name"]] = doc
        if pl.get("verifier") and pl["judge"]:
            ranked[pl["name"]] = ranking([j for _, _, j in states], [(t, int(s)) for t, s, _ in states])
        elif pl["follow"] == "policy":
            ks = (2, pl["k"]) if pl["k"] > 2 else (pl["k"],)
            offline = {"player": pl["name"], "k": pl["k"],
                       **headroom([j for _, _, j in states], [(t, int(s)) for t, s, _ in states], ks=ks)}
    rows, baseline = [], None
    if a.baseline is not None:
        paired = compare_players([a.baseline, *[a.out / n for n in docs]], baseline=a.baseline, out=a.out / "compare")
        rows = paired["rows"]
        base = read_json(Path(a.baseline) / "eval.json", "pass an evaluation folder")
        baseline = {"command": base.get("command"), "player": base.get("player"),
                    **{k: base["sweep"][0].get(k) for k in ("overall", "steps", "expert_agreement", "seconds")},
                    "tasks": {t: {k: d[k] for k in ("rate", "ci95", "episodes")}
                              for t, d in base["sweep"][0]["tasks"].items()}}
    imagination = imagination_rows(a.out, plan)
    table = Table(title=f"Players on {a.suite}, {a.episodes} seeds per task from {a.seed_start}, at most "
                  f"{a.max_steps} steps, T {temperature:g}; oracle judged after {a.horizon} steps", title_justify="left")
    for col in ("player", "episodes", "success", "changed", "expert agrees", "against baseline [95 %]", "McNemar p",
                "actions/s"):
        table.add_column(col, justify="left" if col == "player" else "right", no_wrap=True)
    for name, doc in docs.items():
        e = doc["sweep"][0]
        r = next((r for r in rows if r["player"] == label_of(a.out / name)), None)
        diff = "-" if r is None else (f"{100 * r['success_diff']:+.1f} [{100 * r['success_diff_ci95'][0]:+.1f}, "
                                      f"{100 * r['success_diff_ci95'][1]:+.1f}]")
        table.add_row(name, str(e["overall"]["episodes"]), pct(e["overall"]["rate"]), pct(e["changed_rate"]),
                      pct(e["expert_agreement"]), diff, "-" if r is None else f"{r['mcnemar_p']:.3g}",
                      f"{e['actions_per_s_policy'] or 0:.2f}")
    out.print(table)
    if imagination:
        print_imagination(imagination)
    if offline:
        print_offline(offline)
    if ranked:
        print_ranking(ranked)
    result = {"settings": {"checkpoint": a.checkpoint, "suite": a.suite, "episodes_per_task": a.episodes,
                           "max_steps": a.max_steps, "seed_start": a.seed_start, "batch": a.batch,
                           "workers": a.workers, "sampling_seed": a.seed, "temperature": temperature,
                           "horizon": a.horizon, "device": device},
              "players": {name: {**{k: v for k, v in doc["sweep"][0].items() if k not in ("episodes", "tasks")},
                                 "tasks": {t: {k: v for k, v in d.items() if k in ("rate", "ci95", "episodes")}
                                           for t, d in doc["sweep"][0]["tasks"].items()}}
                          for name, doc in docs.items()},
              "baseline": baseline, "paired": rows, "imagination": imagination or None, "offline": offline,
              "ranking": ranked or None}
    publish(result, "benchmarks/candidates.py", a.section, args, a.out / "candidates.json", RESULTS if a.update else None)
    return result


def imagination_rows(folder: Path, plan: list[dict]) -> list[dict]:
    """What imagination adds to the verifier: each K's players at N > 0 paired against its N = 0 on the same
    episodes (success, reward; McNemar)."""
    out = []
    for p in plan:
        zero = next((q for q in plan if q.get("verifier") and q["k"] == p["k"] and q["n"] == 0), None)
        if p.get("verifier") and p["k"] > 1 and p["n"] > 0 and zero is not None:
            paired = compare_players([folder / zero["name"], folder / p["name"]], baseline=folder / zero["name"])
            row = next(r for r in paired["rows"] if r["player"] == label_of(folder / p["name"]))
            out.append({"k": p["k"], "n": p["n"], "player": p["name"], "against": zero["name"], **row})
    return out


def label_of(folder: Path) -> str:
    """The player's label in the paired rows (its name, with N where it imagines)."""
    from rig_core.evaluate.compare import players_of

    return players_of(folder)[0].label


if __name__ == "__main__":
    main()
