"""`rig evaluate`: success rates, Crafter score, imagination quality, the test-time-steps sweep."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rig_cli.common import CANDIDATE_MARGIN_HELP, CANDIDATES_HELP, command_line, handle_errors, print_json
from rig_core.config import EVAL_SEED, EvalConfig
from rig_core.errors import RigError
from rig_core.model.device import DEVICE_HELP


@handle_errors
def evaluate(
    checkpoint: Optional[List[Path]] = typer.Option(
        None, "--checkpoint", "-c", help="A run directory or a checkpoint; repeat to evaluate several players on the "
        "same seeds (each into OUT/<name>, then one paired report against the first)."),
    agent: Optional[List[str]] = typer.Option(None, help="A baseline through the same code: expert or random "
                                              "(repeatable, with or without --checkpoint)."),
    suite: str = typer.Option("tasks", help="tasks or all (all 22), open, a group (basic, tools, advanced, survival) or a task id."),
    episodes: int = typer.Option(100, help="Episodes per task, on world seeds --seed-start, --seed-start + 1, ..."),
    seed_start: int = typer.Option(EVAL_SEED, help="First world seed (the same for every task; training data "
                                   "from rig collect counts up from 0). Keep seed ranges you never tune on."),
    test_time_steps: str = typer.Option("0", help="Comma-separated lookahead steps to sweep, e.g. 0,1,2,3 (with "
                                        "--candidates: the steps each candidate is imagined)."),
    candidates: Optional[int] = typer.Option(
        None, help=CANDIDATES_HELP),
    candidate_margin: float = typer.Option(
        0.0, help=CANDIDATE_MARGIN_HELP),
    workers: int = typer.Option(1, help="Parallel processes."),
    backend: str = typer.Option("process", help="Where episodes run: process (worker processes here) or ray "
                                "(Ray tasks; needs pip install 'rig[ray]')."),
    address: Optional[str] = typer.Option(None, help="With --backend ray: an existing Ray cluster (ray://HEAD:10001, "
                                          "or auto); default: a local Ray with --workers CPUs, shut down after."),
    batch: int = typer.Option(8, help="Environments per batched forward pass."),
    max_steps: Optional[int] = typer.Option(None, help="Step limit per episode (default: each task's budget)."),
    imagination_steps: int = typer.Option(3, help="Horizon of the imagination rollouts."),
    imagination_episodes: int = typer.Option(10, help="Played episodes whose states start imagination rollouts "
                                             "(one every 10 steps)."),
    gifs: int = typer.Option(2, help="Episodes written as GIFs."),
    temperature: Optional[float] = typer.Option(None, help="0 = greedy decoding; > 0 samples thoughts, actions and "
                                      "imagined frames (the policy's, not the expert's). Default: the model's own (generation_config.json; "
                                      "greedy when it names none)."),
    seed: int = typer.Option(0, help="Sampling seed (with --temperature)."),
    review_threshold: Optional[float] = typer.Option(
        None, help="With N > 0: correct a proposal only when the review's P(correction) at its first word is at "
        "least this (0-1); otherwise the proposal is confirmed and taken. Default: the review decides freely."),
    history: Optional[int] = typer.Option(
        None, help="Past steps the policy keeps in its context (0: the current frame only). Default: as many "
        "as the context holds."),
    full_prefill: bool = typer.Option(False, "--full-prefill", help="Re-encode each step's whole context "
                                      "instead of keeping the KV cache across steps (slower; for comparison)."),
    no_draft: bool = typer.Option(False, "--no-draft", help="Decode imagined frames one token per forward pass "
                                  "instead of with the last frame as the draft (the same frames greedy, the same "
                                  "distribution sampled; slower; for comparison)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (eval.json, report.md, plots, GIFs)."),
    compare: Optional[List[Path]] = typer.Option(
        None, "--compare", help="Compare earlier evaluations (repeat): side by side, and every player against the "
        "baseline, paired on the seeds both played (unpaired where they differ). With --out: compare.md/json."),
    baseline: Optional[Path] = typer.Option(None, help="With --compare: the evaluation the others are compared "
                                            "against (default: the first)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or tables."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Evaluate a policy or a baseline: every number of a comparison comes from this one evaluator."""
    from rig_core.evaluate.compare import compare_players
    from rig_core.evaluate.players import evaluate as run_evaluation
    from rig_core.evaluate.report import compare as compare_results
    from rig_core.viz.tables import print_compare, print_eval, print_paired

    if compare:
        rows = compare_results(list(compare))
        paired = compare_players(list(compare), baseline=baseline, out=out)
        if json_output:
            print_json({"rows": rows, "paired": paired})
        elif not quiet:
            print_compare(rows)
            print_paired(paired)
        return
    if out is None:
        raise RigError("rig evaluate needs --out DIR", "e.g. rig evaluate --checkpoint runs/tiny --out evals/tiny")
    cfg = EvalConfig(suite=suite, episodes=episodes, seed_start=seed_start, test_time_steps=test_time_steps,
                     max_steps=max_steps, batch=batch, workers=workers, imagination_steps=imagination_steps,
                     imagination_episodes=imagination_episodes, gifs=gifs, temperature=temperature, seed=seed,
                     review_threshold=review_threshold, history=history, full_prefill=full_prefill,
                     draft=not no_draft, backend=backend, candidates=candidates, candidate_margin=candidate_margin,
                     address=address, device=device, command=command_line())
    several, result = run_evaluation(list(checkpoint or []), list(agent or []), cfg, out,
                                     quiet=quiet or json_output)
    if several:
        if json_output:
            print_json(result)
        elif not quiet:
            print_paired(result)
            print(f"wrote {out}/report.md, players.png, compare.json and one folder per player")
            print(f"see every episode step by step: rig view {out}")
        return
    if json_output:
        print_json({k: v for k, v in result.items() if k != "sweep"} |
                   {"sweep": [{k: v for k, v in e.items() if k != "episodes"} for e in result["sweep"]]})
    elif not quiet:
        print_eval(result, out)
        print(f"see every episode step by step: rig view {out}")
