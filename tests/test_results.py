"""Benchmark results files (rig_core/results.py and benchmarks/results/): one file per script, a section per
question, each with its command, versions and date, and no private paths."""

import json
from pathlib import Path

import pytest

from rig_core.errors import RigError
from rig_core.results import FORMAT, public, read_results, write_section

ROOT = Path(__file__).resolve().parents[1]


def test_a_section_is_written_beside_the_others_with_its_command_versions_and_date(tmp_path):
    path = tmp_path / "bench.json"
    write_section(path, "benchmarks/x.py", "first", {"rows": [1]}, ["--run", "/home/me/runs/basic"])
    body = write_section(path, "benchmarks/x.py", "second", {"rows": [2], "where": "/srv/data/set"}, ["--fast"])
    doc = read_results(path)
    assert set(doc["sections"]) == {"first", "second"} and doc["sections"]["first"]["rows"] == [1]
    first = doc["sections"]["first"]
    assert first["command"] == "python benchmarks/x.py --run basic"  # a private folder is cut to its name
    assert first["versions"]["torch"] and len(first["date"]) == 10
    assert body["where"] == "set" and body["command"] == "python benchmarks/x.py --fast"
    write_section(path, "benchmarks/x.py", "first", {"rows": [3]}, [])  # a section is replaced, the others kept
    assert read_results(path)["sections"]["first"]["rows"] == [3] and "second" in read_results(path)["sections"]


def test_paths_inside_the_working_folder_stay_relative_and_keys_are_cleaned_too(tmp_path):
    inside = tmp_path / "runs" / "a"
    out = public({str(inside): f"--run {inside} --out /var/tmp/x and 1/2"}, tmp_path)
    assert out == {"runs/a": "--run runs/a --out x and 1/2"}


def test_a_file_that_is_not_a_results_file_is_refused(tmp_path):
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(RigError, match="not a benchmark results file"):
        write_section(bad, "benchmarks/x.py", "s", {}, [])
    assert json.loads(bad.read_text()) == {"rows": []}  # untouched


def test_the_shipped_results_are_one_file_per_benchmark_script():
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    for f in sorted((ROOT / "benchmarks" / "results").iterdir()):
        assert f.suffix == ".json" and f.stem in scripts, f"{f.name}: no benchmarks/{f.stem}.py writes it"
        doc = read_results(f)
        assert doc["format"] == FORMAT and doc["script"] == f"benchmarks/{f.stem}.py" and doc["sections"]
        for name, s in doc["sections"].items():
            assert s["command"].startswith(f"python benchmarks/{f.stem}.py"), (f.name, name)
            assert s["versions"] and len(s["date"]) == 10, (f.name, name)
        text = f.read_text()
        assert "/work/" not in text and "/tmp/" not in text and "/home/" not in text, f.name


def test_the_paired_benchmark_writes_a_section_from_evaluations(tmp_path):
    import subprocess
    import sys

    from cli_helpers import rig

    ev = tmp_path / "ev"
    r = rig("evaluate", "--agent", "expert", "--agent", "random", "--suite", "collect_wood", "--episodes", 2,
            "--max-steps", 15, "--gifs", 0, "--quiet", "--out", ev)
    assert r.exit_code == 0, r.output
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "paired.py"), str(ev), "--section", "baselines",
                        "--made-by", "rig evaluate --agent expert --agent random", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    s = read_results(tmp_path / "o" / "paired.json")["sections"]["baselines"]
    assert [x["player"] for x in s["players"]] == ["expert", "random"] and s["baseline"] == "expert"
    row = s["paired"][0]
    assert row["player"] == "random" and row["paired"] and -1 <= row["success_diff"] <= 0
    assert s["commands"] == ["rig evaluate --agent expert --agent random"] and "--section baselines" in s["command"]
