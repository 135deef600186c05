"""LeRobot v3.0 datasets into rig: one rig exported comes back identical (meta/rig.json, the ``rig.*``
columns and ``rig.episode``); others need frames (image or video features) and one discrete action index
per step. Read with pyarrow, videos decoded with av."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rig_core.errors import RigError
from rig_core.exchange.episodes import EpisodeArrays, decode_attrs, decode_value, restore_array
from rig_core.exchange.lerobot_format import FORMAT_VERSION, IMAGE, STATE, arrow_libs, chunk_file


def check_import(src: Path) -> dict[str, Any]:
    """The dataset's info.json, once it is known to be a LeRobot v3 dataset with frames."""
    arrow_libs()
    src = Path(src)
    if not src.is_dir():
        raise RigError(f"{src} is not a folder", "pass the LeRobot dataset's root folder (the one holding meta/)")
    info = _read_info(src)
    _image_key(info)
    return info


def _read_info(root: Path) -> dict[str, Any]:
    path = root / "meta" / "info.json"
    if not path.exists():
        raise RigError(f"{root} is not a LeRobot dataset (no meta/info.json)", "pass the dataset's root folder")
    info = json.loads(path.read_text())
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise RigError(f"{root} is a LeRobot {version or 'unknown-version'} dataset; rig reads v3.0",
                       "convert it with LeRobot's converter (lerobot.datasets.v30.convert_dataset_v21_to_v30)")
    return info


def _image_key(info: dict[str, Any]) -> str:
    feats = info["features"]
    keys = [k for k, ft in feats.items() if ft["dtype"] in ("image", "video")]
    if not keys:
        raise RigError("the LeRobot dataset has no camera frames (no image or video feature)",
                       "rig learns from frames: import a dataset with an observation.image(s) feature")
    return IMAGE if IMAGE in keys else sorted(keys)[0]


def _decode_video(path: Path, start: float, stop: float, fps: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if start - 0.5 / fps <= t < stop - 0.5 / fps:
                frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def _episodes(root: Path, info: dict[str, Any], rig: dict | None) -> Iterator[EpisodeArrays]:
    _, pq = arrow_libs()
    eps = [row for f in sorted((root / "meta" / "episodes").glob("*/*.parquet")) for row in pq.read_table(f).to_pylist()]
    image = _image_key(info)
    feats = info["features"]
    tables: dict[str, Any] = {}
    for ep in sorted(eps, key=lambda e: e["episode_index"]):
        key = chunk_file(ep["data/chunk_index"], ep["data/file_index"])
        if key not in tables:
            tables = {key: pq.read_table(root / "data" / f"{key}.parquet")}
        idx = tables[key].column("episode_index").to_numpy()
        rows = tables[key].filter(idx == ep["episode_index"]).to_pydict()
        if feats[image]["dtype"] == "video":
            vkey = chunk_file(ep[f"videos/{image}/chunk_index"], ep[f"videos/{image}/file_index"])
            frames = np.stack(_decode_video(root / "videos" / image / f"{vkey}.mp4", ep[f"videos/{image}/from_timestamp"],
                                            ep[f"videos/{image}/to_timestamp"], int(info["fps"])))
        else:
            from PIL import Image

            frames = np.stack([np.asarray(Image.open(io.BytesIO(c["bytes"]) if c.get("bytes") else root / c["path"]).convert("RGB"))
                               for c in rows[image]])
        if rig is not None:
            extras = json.loads(ep["rig.episode"])
            schema = extras["schema"]
            t = schema["actions"]["shape"][0]
            arrays: dict[str, Any] = {
                "frames": frames, "inventory": rows[STATE], "actions": rows["action"][:t],
                "rewards": rows["next.reward"][:t], "terminated": rows["next.terminated"][:t],
                "truncated": rows["next.truncated"][:t]}
            for path, name in rig["columns"].items():
                if path in schema and path not in extras["other"]:
                    arrays[path] = rows[name][:schema[path]["shape"][0]]
            arrays.update({p: decode_value(v) for p, v in extras["other"].items()})
            arrays = {p: restore_array(arrays[p], spec) for p, spec in schema.items()}
            yield EpisodeArrays(int(extras["index"]), arrays, decode_attrs(extras["attrs"]),
                                {k: decode_attrs(v) for k, v in extras["dataset_attrs"].items()})
            continue
        yield _foreign_episode(ep, rows, frames, feats)


def _foreign_episode(ep: dict, rows: dict, frames: np.ndarray, feats: dict) -> EpisodeArrays:
    act = feats.get("action")
    if act is None or not act["dtype"].startswith("int") or list(act["shape"]) not in ([1], []):
        raise RigError(f"the LeRobot dataset's actions are {act['dtype'] if act else 'missing'} "
                       f"{list(act['shape']) if act else ''}, not one discrete index per step",
                       "rig policies choose among named discrete actions; discretise the actions first")
    n = len(frames)
    actions = np.asarray(rows["action"], np.int64).reshape(-1)[: n - 1]
    reward = np.asarray(rows.get("next.reward", [0.0] * n), np.float32).reshape(-1)[: n - 1]
    done = np.asarray(rows.get("next.done", [False] * n), bool).reshape(-1)[: n - 1]
    arrays = {"frames": frames.astype(np.uint8), "inventory": np.zeros((n, 0), np.int16),
              "actions": actions.astype(np.int16), "rewards": reward, "terminated": done,
              "truncated": np.zeros(n - 1, bool)}
    task = (ep.get("tasks") or [""])[0]
    attrs = {"task": str(task), "seed": int(ep["episode_index"]), "success": bool(done.any()), "agent": "lerobot"}
    return EpisodeArrays(int(ep["episode_index"]), arrays, attrs)


def _foreign_manifest(root: Path, info: dict[str, Any]) -> dict[str, Any]:
    image = _image_key(info)
    act = info["features"].get("action", {})
    names = act.get("names")
    actions = list(names) if isinstance(names, list) and len(names) > 1 else None
    if actions is None:
        actions = [f"action_{i}" for i in range(int(_max_action(root)) + 1)]
    return {"env": {"id": info.get("robot_type") or "lerobot", "version": str(info["codebase_version"])},
            "action_names": actions, "item_names": [], "achievement_names": [], "semantic_names": {},
            "frame_shape": list(info["features"][image]["shape"]), "stages": ["collect"]}


def _max_action(root: Path) -> int:
    _, pq = arrow_libs()
    return max(int(np.max(pq.read_table(f, columns=["action"]).column("action").to_numpy(zero_copy_only=False)))
               for f in sorted((root / "data").glob("*/*.parquet")))


def open_lerobot(src: Path) -> tuple[dict, int, Iterator[EpisodeArrays], dict]:
    """The LeRobot v3.0 folder ``src`` as what a rig dataset needs: its manifest fields, episode count,
    episodes and a note of the source. Every problem with the folder as a whole is raised here."""
    src = Path(src)
    info = check_import(src)
    rig_path = src / "meta" / "rig.json"
    rig = json.loads(rig_path.read_text()) if rig_path.exists() else None
    if rig is not None and int(rig.get("format_version", 0)) > FORMAT_VERSION:
        raise RigError(f"{src} was exported by a newer rig", "upgrade rig (pip install -U rig)")
    manifest = rig["manifest"] if rig is not None else _foreign_manifest(src, info)
    source = {"format": "lerobot", "path": str(src), "codebase_version": info["codebase_version"]}
    return manifest, int(info.get("total_episodes", 0)), _episodes(src, info, rig), source
