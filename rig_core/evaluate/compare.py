"""`rig evaluate --compare`: every player against a baseline, paired on the episodes (task, seed) both played.

A player is one test-time setting of one evaluation. Two players that played the same (task, seed) set are
compared pair by pair (Newcombe's paired interval, exact McNemar, paired bootstrap of reward and
achievements); otherwise they are compared as independent samples, and the row says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_json, atomic_write_text, read_json
from rig_core.stats.metrics import episodes_to_separate
from rig_core.stats.paired import (achievement_mcnemar, mcnemar_exact, paired_difference_interval,
                                   paired_episodes_to_separate, paired_mean_difference, paired_score_difference,
                                   unpaired_difference_interval, unpaired_mean_difference)
from rig_core.tasks import OPEN

EVAL_FORMAT = "rig-evaluation"
EVAL_VERSION = 1


@dataclass
class Player:
    label: str
    path: str
    n: int  # test-time steps
    episodes: dict[tuple[str, int], dict]  # (task, seed) -> the episode's result


def load_evaluation(path: Path) -> dict[str, Any]:
    """An eval.json (or the directory holding it), checked to be one this rig writes."""
    f = Path(path) / "eval.json" if Path(path).is_dir() else Path(path)
    if not f.exists():
        raise RigError(f"no evaluation at {path} (no eval.json)", "pass directories written by rig evaluate --out")
    doc = read_json(f, "re-run rig evaluate")
    fmt, version = doc.get("format"), doc.get("version")
    sweep = doc.get("sweep") if isinstance(doc, dict) else None
    ok = (fmt == EVAL_FORMAT and version == EVAL_VERSION and isinstance(sweep, list)
          and all(isinstance(e.get("episodes"), list) for e in sweep))
    if not ok:
        raise RigError(f"{f} is not an evaluation of format {EVAL_FORMAT} version {EVAL_VERSION} "
                       f"(format {fmt!r}, version {version!r})", "re-run rig evaluate with this version of rig")
    return doc


def player_name(player: dict[str, Any], path: Path) -> str:
    """The checkpoint or agent; for a policy playing among its top-K candidates, with K and the scorer."""
    who = player.get("checkpoint") or player.get("agent") or str(path)
    k = player.get("candidates")
    if k and player.get("follow") == "policy":  # its own drawn action, the candidates only judged
        return f"{who} (own action, top-{k} judged)"
    if k:
        return f"{who} top-{k}" + (f" {player['scorer']}" if player.get("scorer") else "")
    return who


def players_of(path: Path) -> list[Player]:
    doc = load_evaluation(path)
    who = player_name(doc["player"], path)
    out = []
    for entry in doc["sweep"]:
        n = int(entry["test_time_steps"])
        label = who if len(doc["sweep"]) == 1 and n == 0 else f"{who} N={n}"
        out.append(Player(label, str(path), n, {(e["task"], int(e["seed"])): e for e in entry["episodes"]}))
    return out


def compare_players(paths: list[Path], baseline: Path | None = None, out: Path | None = None) -> dict[str, Any]:
    """Every player of ``paths`` against the first player of ``baseline`` (default: of the first path)."""
    if len(paths) < 2:
        raise RigError("--compare needs at least two evaluations",
                       "repeat it: rig evaluate --compare evals/a --compare evals/b")
    if baseline is not None and Path(baseline) not in [Path(p) for p in paths]:
        raise RigError(f"--baseline {baseline} is not one of the compared evaluations", "pass one of the --compare paths")
    players = [p for path in paths for p in players_of(path)]
    base_path = str(baseline if baseline is not None else paths[0])
    base = next(p for p in players if p.path == base_path)
    result = {"baseline": base.label, "rows": [pair_row(base, p) for p in players if p is not base]}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "compare.json", result)
        atomic_write_text(out / "compare.md", markdown(result))
    return result


def _count(episodes: list[dict], key: str) -> list[float]:
    return [float(len(e.get("unlocked") or [])) if key == "achievements" else float(e.get(key) or 0.0)
            for e in episodes]


def pair_row(a: Player, b: Player) -> dict[str, Any]:
    """Player ``b`` against baseline ``a``: differences are b minus a."""
    paired = set(a.episodes) == set(b.episodes)
    if paired:
        keys = sorted(a.episodes)
        ea, eb = [a.episodes[k] for k in keys], [b.episodes[k] for k in keys]
        sa, sb = [bool(e["success"]) for e in ea], [bool(e["success"]) for e in eb]
        both = sum(x and y for x, y in zip(sa, sb))
        a_only = sum(x and not y for x, y in zip(sa, sb))
        b_only = sum(y and not x for x, y in zip(sa, sb))
        n = len(keys)
        diff, lo, hi = paired_difference_interval(both, a_only, b_only, n - both - a_only - b_only)
        extra = {"mcnemar_p": mcnemar_exact(a_only, b_only), "discordant": [a_only, b_only],
                 "episodes_to_separate": paired_episodes_to_separate(both / n, a_only / n, b_only / n)}
        mean_diff = paired_mean_difference
    else:
        ea, eb = list(a.episodes.values()), list(b.episodes.values())
        sa, sb = [bool(e["success"]) for e in ea], [bool(e["success"]) for e in eb]
        diff, lo, hi = unpaired_difference_interval(sum(sa), len(sa), sum(sb), len(sb))
        low, high = sorted((sum(sa) / len(sa), sum(sb) / len(sb)))
        extra = {"mcnemar_p": None, "discordant": None, "episodes_to_separate": episodes_to_separate(low, high)}
        mean_diff = unpaired_mean_difference
    row = {"player": b.label, "baseline": a.label, "paired": paired, "episodes": [len(ea), len(eb)],
           "success": sum(sb) / len(sb), "baseline_success": sum(sa) / len(sa),
           "success_diff": diff, "success_diff_ci95": [lo, hi], **extra}
    for key in ("reward", "achievements"):
        d, dlo, dhi = mean_diff(_count(ea, key), _count(eb, key))
        row[f"{key}_diff"], row[f"{key}_diff_ci95"] = d, [dlo, dhi]
    if paired and all(e["task"] == OPEN for e in ea):  # whole games: the Crafter score and each achievement
        row.update(_whole_games(ea, eb))
    return row


def _whole_games(ea: list[dict], eb: list[dict]) -> dict[str, Any]:
    """Whole games on the same seeds: the Crafter score difference (bootstrap over the shared seeds), game
    length, and each achievement's success with its McNemar p-value."""
    from rig_core.envs import make_env

    names = make_env().achievement_names
    ua, ub = [e["unlocked"] for e in ea], [e["unlocked"] for e in eb]
    d, lo, hi = paired_score_difference(ua, ub, names)
    ld, llo, lhi = paired_mean_difference(_count(ea, "steps"), _count(eb, "steps"))
    return {"crafter_score_diff": d, "crafter_score_diff_ci95": [lo, hi], "length_diff": ld,
            "length_diff_ci95": [llo, lhi], "achievement_pairs": achievement_mcnemar(ua, ub, names)}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Players against {result['baseline']}", "",
             "| player | pairing | episodes | success | baseline | difference [95 %] | McNemar p | "
             "reward difference [95 %] | achievements difference [95 %] |",
             "|---|---|---|---|---|---|---|---|---|"]
    pct = lambda x: f"{100 * x:+.1f}"
    for r in result["rows"]:
        lo, hi = r["success_diff_ci95"]
        p = "-" if r["mcnemar_p"] is None else f"{r['mcnemar_p']:.3g}"
        lines.append(f"| {r['player']} | {'paired' if r['paired'] else 'unpaired: seeds differ'} | "
                     f"{r['episodes'][1]} | {100 * r['success']:.1f} % | {100 * r['baseline_success']:.1f} % | "
                     f"{pct(r['success_diff'])} [{pct(lo)}, {pct(hi)}] | {p} | "
                     f"{r['reward_diff']:+.2f} [{r['reward_diff_ci95'][0]:+.2f}, {r['reward_diff_ci95'][1]:+.2f}] | "
                     f"{r['achievements_diff']:+.2f} [{r['achievements_diff_ci95'][0]:+.2f}, "
                     f"{r['achievements_diff_ci95'][1]:+.2f}] |")
    games = [r for r in result["rows"] if "crafter_score_diff" in r]
    if games:
        lines += ["", "## Whole games (paired on the same seeds)", "",
                  "| player | Crafter score difference [95 %, bootstrap over seeds] | game length difference [95 %] |",
                  "|---|---|---|"]
        for r in games:
            (lo, hi), (llo, lhi) = r["crafter_score_diff_ci95"], r["length_diff_ci95"]
            lines.append(f"| {r['player']} | {r['crafter_score_diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] | "
                         f"{r['length_diff']:+.0f} [{llo:+.0f}, {lhi:+.0f}] |")
        lines += ["", f"Success per achievement against {result['baseline']} (exact McNemar p on the seeds where "
                  "only one of the two unlocked it):", "",
                  "| achievement | " + " | ".join(r["player"] for r in games) + " |",
                  "|---|" + "---|" * len(games)]
        for a in games[0]["achievement_pairs"]:
            cells = [f"{100 * r['achievement_pairs'][a]['b']:.0f} % vs {100 * r['achievement_pairs'][a]['a']:.0f} % "
                     f"(p {r['achievement_pairs'][a]['mcnemar_p']:.2g})" for r in games]
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
