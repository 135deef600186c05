"""Write docs/cli.md, the reference of every `rig` command and option, from the Typer app itself.

    python scripts/gen_cli_docs.py            # rewrite docs/cli.md
    python scripts/gen_cli_docs.py --check    # exit 1 when docs/cli.md is stale

A test runs the check, so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import typer

OUT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"

HEADER = """# `rig` command reference

Every command and option, generated from the CLI by `python scripts/gen_cli_docs.py` (a test fails when this
page is stale). `rig COMMAND --help` prints the same. Every command also takes `--debug` before the command
name (`rig --debug train ...`) to show the traceback of an error.
"""


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _default(p, ctx) -> str:
    """The default as a reader types it; "required", or empty where there is none (the help then says what
    happens without the option)."""
    if p.required:
        return "required"
    value = p.get_default(ctx, call=False)
    if value is None or value == () or value == [] or callable(value):
        return ""
    if getattr(p, "is_flag", False) and not getattr(p, "secondary_opts", None):
        return "on" if value else "off"
    return f"`{value}`"


def _row(p, ctx) -> tuple[str, str, str, str]:
    """One argument or option: its names, the type of its value, its default and its help."""
    names, _ = p.get_help_record(ctx)  # e.g. "-o, --out <path>", "--lora / --no-lora", "--data PATH"
    if p.param_type_name == "argument":
        names = p.name.upper()
        kind = p.get_help_record(ctx)[0].split()[-1].strip("<>").lower()
    elif getattr(p, "is_flag", False):
        kind = "flag"
    else:
        names, kind = names.rsplit(" ", 1)
        kind = kind.strip("<>").lower()
    if getattr(p, "multiple", False):
        kind = kind.removeprefix("list[").removesuffix("]") + ", repeatable"
    return names, kind, _default(p, ctx), getattr(p, "help", "") or ""


def _command(path: str, cmd) -> list[str]:
    """A command's heading, its help and a table of its arguments and options: type, default and help."""
    ctx = cmd.make_context(path.split()[-1], [], resilient_parsing=True)
    lines = [f"## `{path}`", "", _cell(cmd.help), ""]
    rows = [_row(p, ctx) for p in cmd.params if not getattr(p, "hidden", False) and p.name != "help"]
    if rows:
        lines += ["| option | type | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{_cell(names)}` | {_cell(kind)} | {_cell(default)} | {_cell(text)} |"
                  for names, kind, default, text in rows]
        lines.append("")
    return lines


def _walk(path: str, cmd) -> list[str]:
    if hasattr(cmd, "commands"):  # a group: its own options, then each subcommand
        lines = _command(path, cmd) if path == "rig" else []
        for name in sorted(cmd.commands):
            lines += _walk(f"{path} {name}", cmd.commands[name])
        return lines
    return _command(path, cmd)


def _recipe_fields() -> list[str]:
    """The training fields a recipe's ``train:`` / ``lookahead:`` section or ``rig train --set`` can set, with the
    comment each has in the code (rig_core/model/run_config.py)."""
    import re

    from rig_core.model import run_config
    from rig_core.train.config import NOT_SETTABLE, experiment_recipes, load_recipe, shipped_recipes

    source = Path(run_config.__file__).read_text()
    body = source[source.index("class TrainConfig"):source.index("def validate")]
    experiments = experiment_recipes()
    product = [n for n in shipped_recipes() if n not in experiments]
    names = lambda ns: ", ".join(f"`{n}`" for n in ns)
    lines = ["## Recipe fields", "",
             "A recipe (`rig train --recipe NAME|FILE.yaml`) sets these in its `train:` section (and, for "
             "`--stage lookahead`, its `lookahead:` section); `rig train --set FIELD=VALUE` sets one for a run. "
             f"Shipped training recipes: {names(n for n in product if 'train' in load_recipe(n))}; "
             f"the others ({names(n for n in product if 'train' not in load_recipe(n))}) are "
             "pipelines for `rig pipeline` (all in `rig_core/resources/recipes/`). Recipes that reproduce an "
             f"experiment ({names(experiments)}) are in `recipes/experiments/`, each saying what it tested; "
             "a field marked *experiment* did not pay and only those recipes set it.", "",
             "| field | type | default | meaning |", "|---|---|---|---|"]
    for m in re.finditer(r"^    (\w+): ([^=]+?) = (.+?)(?:  # (.*))?$", body, re.M):
        name, kind, default, note = m.groups()
        if name not in NOT_SETTABLE:
            tag = "*experiment*: " if name in run_config.EXPERIMENT_FIELDS else ""
            lines.append(f"| `{name}` | {_cell(kind)} | `{default.strip()}` | {tag}{_cell(note)} |")
    return lines + [""]


def _pipeline_stages() -> list[str]:
    """Every stage kind of a pipeline recipe with its inputs and settings (rig_core/pipeline/stages.py)."""
    from rig_core.pipeline.stages import KINDS

    lines = ["## Pipeline stage settings", "",
             "What a stage of a pipeline recipe (`rig pipeline`, docs/pipeline.md) takes; a setting left out has "
             "the default shown here. A train stage takes every recipe field below as well.", "",
             "| run | inputs (required in bold) | settings and defaults |", "|---|---|---|"]
    for kind in KINDS.values():
        inputs = ", ".join(f"**{i}**" if i in kind.required else i for i in kind.inputs) or "-"
        settings = ", ".join(f"`{k}`: `{v}`" for k, v in kind.settings.items()
                             if kind.name != "train" or k in ("recipe", "stage"))
        lines.append(f"| {kind.name} | {inputs} | {_cell(settings)} |")
    return lines + [""]


def render() -> str:
    from rig_cli.main import app

    root = typer.main.get_command(app)
    return HEADER + "\n" + "\n".join(_walk("rig", root) + _recipe_fields() + _pipeline_stages()).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when docs/cli.md differs from the CLI")
    a = ap.parse_args()
    text = render()
    if a.check:
        stale = not OUT.exists() or OUT.read_text() != text
        if stale:
            print(f"{OUT} is stale: run python scripts/gen_cli_docs.py", file=sys.stderr)
        return int(stale)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
