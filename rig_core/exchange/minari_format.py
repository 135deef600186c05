"""Minari datasets (Farama) through the ``minari`` library: a rig dataset out and back, losslessly, and
Minari datasets from elsewhere in.

Layout of an export: observations ``{"frame": uint8 [T+1, H, W, 3], "inventory": int16 [T+1, items]}``,
actions ``Discrete(len(action_names))``, rewards, terminations, truncations as Minari has them; every other
per-step dataset of the episode (reasoning texts, privileged state, review samples) under ``infos`` by its
path. Frames are stored raw (``jpeg_encoding=False``): Minari's default JPEG would change pixels. The rig
manifest sits in the dataset metadata under ``rig``; each episode's attributes, the datasets' dtypes and
shapes under the episode metadata ``rig`` (JSON), beside plain ``task`` and ``seed``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rig_core.errors import RigError
from rig_core.exchange.episodes import (CORE, EpisodeArrays, decode_attrs, episode_extras, is_text, json_text,
                                        complete_dataset, plain, producer, read_episode,
                                        restore_array)

FORMAT_VERSION = 1
_OBS_KEYS = ("frame", "pixels", "image", "rgb", "pov", "observation")


def _minari():
    try:
        import minari
    except ImportError as exc:
        raise RigError("the Minari format needs the minari package", "install it with: pip install 'rig[minari]'") from exc
    return minari


@contextlib.contextmanager
def _datasets_root(root: Path | None):
    """Point Minari at ``root`` (its own default when None) for the block."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    if root is not None:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(root).resolve())
    try:
        yield
    finally:
        if root is not None:
            if old is None:
                os.environ.pop("MINARI_DATASETS_PATH", None)
            else:
                os.environ["MINARI_DATASETS_PATH"] = old


def default_root() -> Path:
    return Path(os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets")


def _check_id(minari, dataset_id: str) -> None:
    try:
        minari.dataset.minari_dataset.parse_dataset_id(dataset_id)
    except Exception as exc:  # minari raises its own error types for malformed ids
        raise RigError(f"'{dataset_id}' is not a Minari dataset id",
                       "use the form namespace/name-v0, e.g. rig/crafter-expert-v0") from exc


def _infos(ep: EpisodeArrays) -> dict[str, Any]:
    """Every non-core dataset as a nested dict by path; texts flattened to lists of str, empty ones left out
    (Minari cannot store them; their shape is in the episode's metadata)."""
    out: dict[str, Any] = {}
    for path, arr in ep.arrays.items():
        if path in CORE or arr.size == 0:
            continue
        node = out
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = arr.ravel().tolist() if is_text(arr) else arr
    return out


def _buffer(minari, i: int, ep: EpisodeArrays):
    from minari.data_collector.episode_buffer import EpisodeBuffer

    a = ep.arrays
    seed = ep.attrs.get("seed")
    return EpisodeBuffer(id=i, seed=int(seed) if seed is not None else None,
                         observations={"frame": a["frames"], "inventory": a["inventory"]},
                         actions=a["actions"], rewards=a["rewards"], terminations=a["terminated"],
                         truncations=a["truncated"], infos=_infos(ep))


def check_export(dataset_id: str, root: Path | None) -> tuple[Path, Path]:
    """What can be wrong before anything is written: the package, the id, an existing dataset."""
    minari = _minari()
    _check_id(minari, dataset_id)
    root = Path(root) if root is not None else default_root()
    final = root / dataset_id
    if final.exists():
        raise RigError(f"Minari dataset {dataset_id} already exists in {root}",
                       "choose another id or version (Minari datasets are never overwritten)")
    return root, final


def check_import(dataset_id: str, root: Path | None) -> None:
    _minari()
    where = Path(root) if root is not None else default_root()
    if not (where / dataset_id).exists():
        raise RigError(f"no Minari dataset {dataset_id} in {where}",
                       "check the id, pass --root DIR where it lies, or download it: minari download ID")


def export_minari(data: Path, dataset_id: str, *, root: Path | None = None, batch: int = 32,
                  on_episode=None) -> dict[str, Any]:
    """Write the rig dataset at ``data`` as the Minari dataset ``dataset_id`` under ``root`` (Minari's own
    datasets folder when None). Built in a hidden folder beside and moved into place when whole."""
    minari = _minari()
    import gymnasium as gym
    from minari.namespace import create_namespace, list_local_namespaces

    root, final = check_export(dataset_id, root)
    with complete_dataset(data) as ds:
        man = ds.manifest
        shape = tuple(man["frame_shape"])
        items = list(man.get("item_names", []))
        obs_space = gym.spaces.Dict({
            "frame": gym.spaces.Box(0, 255, shape, np.uint8),
            "inventory": gym.spaces.Box(-32768, 32767, (len(items),), np.int16),
        })
        act_space = gym.spaces.Discrete(len(man["action_names"]))
        tmp_root = root / f".rig-export-{os.getpid()}"
        shutil.rmtree(tmp_root, ignore_errors=True)
        count = steps = 0
        try:
            with _datasets_root(tmp_root), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Minari warns about every optional metadata field left empty
                made_by = man.get("producer", {})
                out = minari.create_dataset_from_buffers(
                    dataset_id, [], observation_space=obs_space, action_space=act_space,
                    algorithm_name=str(made_by.get("config", {}).get("agent", "rig")), author="rig",
                    description=f"{man['env']['id']} episodes exported by rig", data_format="hdf5",
                    jpeg_encoding=False)
                pending: list[EpisodeArrays] = []

                def flush() -> None:
                    if not pending:
                        return
                    first = out.storage.total_episodes
                    out.storage.update_episodes([_buffer(minari, first + k, e) for k, e in enumerate(pending)])
                    out.storage.update_episode_metadata(
                        [{"task": e.task, "rig": json_text(episode_extras(e))} for e in pending],
                        range(first, first + len(pending)))
                    pending.clear()

                for ep in ds:
                    pending.append(read_episode(ep))
                    count += 1
                    steps += pending[-1].length
                    if on_episode is not None:
                        on_episode(pending[-1])
                    if len(pending) >= batch:
                        flush()
                flush()
                out.storage.update_metadata({"rig": {"format_version": FORMAT_VERSION, "manifest": man,
                                                   "producer": producer("rig dataset export --format minari")}})
            with _datasets_root(root):
                namespace = minari.dataset.minari_dataset.parse_dataset_id(dataset_id)[0]
                if namespace is not None and namespace not in list_local_namespaces():
                    create_namespace(namespace)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_root / dataset_id, final)
        finally:
            shutil.rmtree(tmp_root, ignore_errors=True)
    return {"out": str(final), "dataset_id": dataset_id, "root": str(root), "episodes": count, "steps": steps,
            "frames": "raw (lossless)"}


# -- import ---------------------------------------------------------------------------------------------
def _image_key(space) -> str | None:
    """The observation key that holds RGB frames (None when the observation itself is the frame)."""
    import gymnasium as gym

    def is_rgb(s) -> bool:
        return isinstance(s, gym.spaces.Box) and s.dtype == np.uint8 and len(s.shape) == 3 and s.shape[-1] == 3

    if is_rgb(space):
        return None
    if isinstance(space, gym.spaces.Dict):
        keys = sorted(space.spaces, key=lambda k: (k not in _OBS_KEYS, k))
        for key in keys:
            if is_rgb(space.spaces[key]):
                return key
    raise RigError(f"the Minari dataset has no RGB frames in its observations ({space})",
                   "rig learns from frames: import a dataset whose observations hold uint8 HxWx3 images")


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}{k}/"))
        return out
    return {prefix[:-1]: node}


def _foreign_manifest(mds, image_key: str | None) -> dict[str, Any]:
    import gymnasium as gym

    act = mds.action_space
    if not isinstance(act, gym.spaces.Discrete):
        raise RigError(f"the Minari dataset's actions are {act}, not a discrete set",
                       "rig policies choose among named discrete actions; discretise the actions first")
    obs = mds.observation_space
    frame_space = obs if image_key is None else obs.spaces[image_key]
    spec = mds.env_spec
    return {"env": {"id": spec.id if spec is not None else f"minari:{mds.id}", "version": "minari"},
            "action_names": [f"action_{i}" for i in range(int(act.n))], "item_names": [],
            "achievement_names": [], "semantic_names": {}, "frame_shape": list(frame_space.shape),
            "stages": ["collect"]}


def _episodes(mds, rig_meta: dict | None, image_key: str | None) -> Iterator[EpisodeArrays]:
    metas = mds.storage.get_episode_metadata(mds.episode_indices)
    for ep, meta in zip(mds.iterate_episodes(), metas):
        obs = ep.observations
        if rig_meta is not None:
            extras = json.loads(plain(meta["rig"]))
            schema = extras["schema"]
            arrays = {"frames": obs["frame"], "inventory": obs["inventory"], "actions": ep.actions,
                      "rewards": ep.rewards, "terminated": ep.terminations, "truncated": ep.truncations}
            arrays.update(_flatten(ep.infos or {}))
            arrays = {k: restore_array(arrays[k], spec) if k in arrays else np.zeros(spec["shape"], _dtype(spec))
                      for k, spec in schema.items()}
            yield EpisodeArrays(int(extras["index"]), arrays, decode_attrs(extras["attrs"]),
                                {k: decode_attrs(v) for k, v in extras["dataset_attrs"].items()})
            continue
        frames = np.asarray(obs if image_key is None else obs[image_key], dtype=np.uint8)
        steps = len(ep.actions)
        if len(frames) != steps + 1:
            raise RigError(f"episode {ep.id} has {len(frames)} observations for {steps} actions",
                           "rig needs the observation after the last action too (Minari's own layout)")
        arrays = {"frames": frames, "inventory": np.zeros((steps + 1, 0), np.int16),
                  "actions": np.asarray(ep.actions, np.int16), "rewards": np.asarray(ep.rewards, np.float32),
                  "terminated": np.asarray(ep.terminations, bool), "truncated": np.asarray(ep.truncations, bool)}
        task = plain(meta.get("task", mds.id))
        attrs = {"task": str(task), "seed": int(meta.get("seed") or 0), "success": bool(np.any(ep.terminations)),
                 "agent": f"minari:{mds.id}"}
        yield EpisodeArrays(int(ep.id), arrays, attrs)


def _dtype(spec: dict[str, Any]):
    return str if spec["dtype"] == "str" else np.dtype(spec["dtype"])


def open_minari(dataset_id: str, *, root: Path | None = None) -> tuple[dict, int, Iterator[EpisodeArrays], dict]:
    """The Minari dataset ``dataset_id`` (from ``root`` or Minari's folder) as what a rig dataset needs: its
    manifest fields, episode count, episodes and a note of the source. Every problem is raised here."""
    minari = _minari()
    check_import(dataset_id, root)
    where = Path(root) if root is not None else default_root()
    with _datasets_root(root), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mds = minari.load_dataset(dataset_id)
    meta = mds.storage.metadata.get("rig")
    if meta is not None:
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise RigError(f"{dataset_id} was exported by a newer rig", "upgrade rig (pip install -U rig)")
        manifest, image_key = meta["manifest"], "frame"
    else:
        image_key = _image_key(mds.observation_space)
        manifest = _foreign_manifest(mds, image_key)
    source = {"format": "minari", "dataset_id": dataset_id, "root": str(where)}
    if meta is not None:
        source["producer"] = meta["manifest"].get("producer")
    return manifest, mds.total_episodes, _episodes(mds, meta, image_key), source
