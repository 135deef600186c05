"""The tables benchmarks/candidates.py prints: the oracle's headroom on the policy's own states, the learned
verifier's ranking within a state, and what imagination adds to it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

out = Console(width=150)  # wide tables in logs too


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _share(d: dict) -> str:
    if d["share"] is None:
        return "-"
    lo, hi = d["ci95"]
    return f"{100 * d['share']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"


def print_offline(offline: dict) -> None:
    ks = sorted({int(key[3:]) for key in offline if key.startswith("top") and key[3:].isdigit()})
    k = offline["k"]
    table = Table(title=f"On the states of the policy's own play ({offline['states']} states, {offline['episodes']} "
                  "episodes; 95 % intervals resample episodes)", title_justify="left")
    table.add_column("share of states", no_wrap=True)
    table.add_column("", justify="right", no_wrap=True)
    table.add_row("top-1 worse", _share(offline["top1_worse"]))
    for kk in ks:
        t = offline[f"top{kk}"]
        table.add_row(f"top-1 worse, another of top-{kk} fine", _share(t["rescued"]))
        table.add_row(f"top-1 worse, none of top-{kk} fine", _share(t["stuck"]))
        table.add_row(f"  of the top-1 worse: another of top-{kk} fine", _share(t["rescued_when_top1_worse"]))
        table.add_row(f"the expert's action among top-{kk}", _share(t["expert_among"]))
    table.add_row("drawn action worse", _share(offline["own_worse"]))
    table.add_row(f"drawn action worse, one of top-{k} fine", _share(offline[f"top{k}"]["own_worse_and_a_fine_one"]))
    table.add_row("drawn action is the top-1", _share(offline["own_is_top1"]))
    table.add_row("the policy's mean probability by rank", " / ".join(f"{p:.2g}" for p in offline["prob_by_rank"]))
    out.print(table)
    table = Table(title="The top-1's worse verdicts by the judge's reason", title_justify="left")
    for col in ("reason", "share of states", *[f"of these: a fine one in top-{kk}" for kk in ks]):
        table.add_column(col, justify="left" if col == "reason" else "right", no_wrap=True)
    for reason, d in offline["by_reason"].items():
        table.add_row(reason, _share(d["top1_worse"]), *[_share(d[f"rescued_top{kk}"]) for kk in ks])
    out.print(table)


def print_ranking(ranked: dict) -> None:
    table = Table(title="The verifier's choice within a state, judged by the oracle (shares of states; 95 % intervals "
                  "resample episodes)", title_justify="left")
    for col in ("player", "states", "played fine", "top-1 fine", "difference", "rescued", "broken", "any fine",
                "least-worse fine", "AUC of P(worse)"):
        table.add_column(col, justify="left" if col == "player" else "right", no_wrap=col == "player")
    for name, r in ranked.items():
        d = r["played_minus_top1"]
        auc = r["auc_p_worse"]
        table.add_row(name, str(r["states"]), _share(r["played_fine"]), _share(r["top1_fine"]),
                      "-" if d is None else f"{100 * d['difference']:+.1f} [{100 * d['ci95'][0]:+.1f}, "
                                            f"{100 * d['ci95'][1]:+.1f}]",
                      _share(r["rescued"]), _share(r["broken"]), _share(r["any_fine"]), _share(r["least_worse_fine"]),
                      "-" if auc is None else f"{auc['auc']:.2f} [{auc['ci95'][0]:.2f}, {auc['ci95'][1]:.2f}]")
    out.print(table)
    margins = Table(title="Had it chosen with a margin (--margin; the same states), or against each action's mean "
                    "P(worse) on the other episodes: share fine, share changed; AUC of P(worse) on the top action "
                    "alone, and over all candidates against the prior", title_justify="left")
    first = next(iter(ranked.values()), {})
    names = list(first.get("fine_by_margin") or {})
    for col in ("player", *[f"margin {m}" for m in names], "against the prior", "top-1 AUC", "AUC against the prior"):
        margins.add_column(col, justify="left" if col == "player" else "right", no_wrap=col == "player")

    def auc(d):
        return "-" if d is None else f"{d['auc']:.2f} [{d['ci95'][0]:.2f}, {d['ci95'][1]:.2f}]"

    for name, r in ranked.items():
        rel = "-" if r.get("fine_relative") is None else f"{_share(r['fine_relative'])}, {pct(r['changed_relative'])}"
        margins.add_row(name, *[f"{_share(r['fine_by_margin'][m])}, {pct(r['changed_by_margin'][m])}"
                                for m in names], rel, auc(r.get("auc_p_worse_top1")),
                        auc(r.get("auc_p_worse_relative")))
    out.print(margins)


def print_imagination(rows: list[dict]) -> None:
    table = Table(title="What imagination adds: the same K at N > 0 against N = 0, paired", title_justify="left")
    for col in ("K", "N", "success", "at N = 0", "difference [95 %]", "McNemar p"):
        table.add_column(col, justify="right")
    for r in rows:
        lo, hi = r["success_diff_ci95"]
        table.add_row(str(r["k"]), str(r["n"]), pct(r["success"]), pct(r["baseline_success"]),
                      f"{100 * r['success_diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]", f"{r['mcnemar_p']:.3g}")
    out.print(table)
