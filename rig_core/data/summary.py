"""A dataset's summary: episodes, steps, success per task, achievements, storage cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rig_core.data.reader import Dataset, opened
from rig_core.stats.metrics import wilson_interval


def summarize(root: Dataset | str | Path) -> dict[str, Any]:
    """Everything `rig dataset info` prints, as plain JSON-able data (reads attrs, not frames)."""
    with opened(root) as ds:
        man = ds.manifest
        refs = ds.refs()
        tasks: dict[str, dict[str, Any]] = {}
        achievements = {a: 0 for a in man.get("achievement_names", [])}
        steps = deaths = 0
        frame_bytes = frames = 0
        agents: set[str] = set()
        for ref in refs.values():
            a = ref.attrs
            t = tasks.setdefault(a.get("task", "?"), {"episodes": 0, "successes": 0, "steps": 0})
            t["episodes"] += 1
            t["successes"] += int(bool(a.get("success")))
            t["steps"] += int(a.get("length", 0))
            steps += int(a.get("length", 0))
            deaths += int(bool(a.get("died")))
            agents.add(str(a.get("agent", "?")))
            for name in json.loads(a.get("unlocked", "[]")):
                achievements[name] = achievements.get(name, 0) + 1
        for ref in refs.values():
            ds_frames = ds.episode(ref.index)["frames"]
            frame_bytes += ds_frames.id.get_storage_size()
            frames += ds_frames.shape[0]
        for t in tasks.values():
            lo, hi = wilson_interval(t["successes"], t["episodes"])
            t["success_rate"] = t["successes"] / t["episodes"]
            t["ci95"] = [round(lo, 4), round(hi, 4)]
            t["mean_length"] = t["steps"] / t["episodes"]
        n = len(refs)
        disk = sum((ds.root / f).stat().st_size for f in ds.shard_files if (ds.root / f).exists())
        return {
            "path": str(ds.root),
            "schema_version": man["schema_version"],
            "env": man["env"],
            "stages": man.get("stages", []),
            "complete": ds.complete,
            "episodes": n,
            "episodes_planned": man.get("episodes_planned", n),
            "steps": steps,
            "frames": frames,
            "agents": sorted(agents),
            "deaths": deaths,
            "mean_length": steps / n if n else 0.0,
            "tasks": dict(sorted(tasks.items())),
            "achievements": achievements,
            "shards": len(ds.shard_files),
            "bytes_on_disk": disk,
            "bytes_per_frame": frame_bytes / frames if frames else 0.0,
            "bytes_per_step_total": disk / frames if frames else 0.0,
            "producer": {k: man.get("producer", {}).get(k) for k in ("command", "seed", "created")},
        }
