"""A benchmark script's results file: one file per script (``benchmarks/results/<script>.json``), one section per
question it answers, each section with the command that made it, the package versions and the date.

    {"format": "rig-benchmark-results", "script": "benchmarks/review.py",
     "sections": {"<name>": {"command": "python benchmarks/review.py ...", "versions": {...},
                             "date": "2026-12-05", ...the script's figures...}}}

Writing a section keeps the file's other sections. Paths outside the working directory are cut to their last
part (``/home/me/runs/basic`` becomes ``basic``), so a results file names no private folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_json
from rig_core.versions import versions

FORMAT = "rig-benchmark-results"
_ABSOLUTE = re.compile(r"(?<![\w.:/-])/(?:[\w.+@-]+/)*[\w.+@-]+")  # an absolute POSIX path inside a text


def public(obj: Any, root: Path | None = None) -> Any:
    """``obj`` with every absolute path inside its strings (keys included) made relative to ``root`` (default:
    the working directory) when it lies there, or cut to its last part when it does not."""
    base = Path(root or os.getcwd()).resolve()

    def one(match: re.Match) -> str:
        path = Path(match.group(0))
        try:
            return str(path.resolve().relative_to(base))
        except ValueError:
            return path.name

    if isinstance(obj, str):
        return _ABSOLUTE.sub(one, obj)
    if isinstance(obj, dict):
        return {public(k, base) if isinstance(k, str) else k: public(v, base) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [public(v, base) for v in obj]
    return obj


def command(script: str, argv: list[str]) -> str:
    """The command line that runs ``script`` (a path such as benchmarks/review.py) with ``argv``."""
    return " ".join(["python", script, *(shlex.quote(str(a)) for a in argv)])


def read_results(path: Path) -> dict[str, Any]:
    """A results file, or one clear error when it is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RigError(f"{path} is not a readable results file ({exc})", "remove it, or pass another --json") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("sections"), dict):
        raise RigError(f"{path} is not a benchmark results file (format {FORMAT})",
                       "pass a path under benchmarks/results/, or a new file")
    return doc


def write_section(path: Path, script: str, section: str, figures: dict[str, Any], argv: list[str],
                  extra_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """Write ``figures`` as section ``section`` of the results file ``path`` (made if absent, its other sections
    kept), headed by the command (``script`` with ``argv``), the package versions and today's date."""
    path = Path(path)
    doc = read_results(path) if path.exists() else {"format": FORMAT, "script": script, "sections": {}}
    body = {"command": command(script, argv), "versions": {**versions(), **(extra_versions or {})},
            "date": dt.date.today().isoformat(), **figures}
    doc["sections"][section] = public(body)
    doc["script"] = script
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)
    return doc["sections"][section]


def publish(figures: dict[str, Any], script: str, section: str, argv: list[str], out: Path,
            results: Path | None = None, extra_versions: dict[str, str] | None = None) -> dict[str, Any]:
    """A benchmark's figures as section ``section`` of the results file ``out`` and, when given (``--update``),
    of ``results`` (the script's file in benchmarks/results/)."""
    for path in (out, results):
        if path is not None:
            body = write_section(path, script, section, figures, argv, extra_versions)
    return body
