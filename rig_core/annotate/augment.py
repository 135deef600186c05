"""`rig augment --stage reason`: a new dataset whose episodes carry reasoning text for every step.

The input is never modified. Each output shard mirrors one input shard: every input
dataset is an HDF5 external link to the input file (or a copy with ``copy_frames``),
plus ``reasoning`` (UTF-8 str [T]) and ``reasoning_source`` (rules / vlm / cache /
fallback per step). Output shards are written under a temp name and renamed, so a
killed run resumes shard by shard.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rig_core.annotate.consistency import check
from rig_core.annotate.context import REQUIRED, episode_contexts
from rig_core.annotate.rules import RuleAnnotator
from rig_core.data.reader import Dataset, open_shard
from rig_core.data.schema import FORMAT, MANIFEST, SCHEMA_VERSION, episode_key, read_manifest
from rig_core.data.writer import TMP_SUFFIX, text_array
from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_json, ensure_writable_dir
from rig_core.ui import progress
from rig_core.versions import versions

_STR = h5py.string_dtype(encoding="utf-8")
_TOKEN = re.compile(r"\w+|[^\w\s]")
SOURCES = ("rules", "vlm", "cache", "fallback")


@dataclass
class ReasonConfig:
    data: str
    out: str
    annotator: str = "rules"
    seed: int = 0
    workers: int = 1
    copy_frames: bool = False
    model: str | None = None
    base_url: str | None = None
    api_key_env: str = "RIG_VLM_API_KEY"
    cache_dir: str | None = None
    concurrency: int = 4

    def validate(self) -> "ReasonConfig":
        if self.annotator not in ("rules", "vlm"):
            raise RigError(f"unknown annotator '{self.annotator}'", "choose --annotator rules or --annotator vlm")
        if self.workers < 1:
            raise RigError(f"--workers {self.workers} must be at least 1", "pass --workers 1 or more")
        if self.annotator == "vlm" and not (self.model and self.base_url):
            raise RigError("--annotator vlm needs --model and --base-url", "pass both, e.g. --model M --base-url URL")
        if Path(self.data).resolve() == Path(self.out).resolve():
            raise RigError("--out is the input dataset", "augment never edits its input: choose another --out")
        return self


def count_tokens(text: str) -> int:
    """Word-level tokens (words and punctuation marks)."""
    return len(_TOKEN.findall(text))


def _make_vlm(cfg: ReasonConfig):
    from rig_core.annotate.vlm import VLMAnnotator

    cache = Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.out) / ".vlm-cache"
    return VLMAnnotator(model=cfg.model, base_url=cfg.base_url, api_key_env=cfg.api_key_env, cache_dir=cache,
                        concurrency=cfg.concurrency)


def _write_shard(cfg: ReasonConfig, shard: str, vlm=None) -> int:
    """Annotate every episode of one input shard into the matching output shard; returns the steps done."""
    src_root, out_root = Path(cfg.data), Path(cfg.out)
    rules = RuleAnnotator(cfg.seed)
    steps = 0
    tmp = out_root / f".{shard}{TMP_SUFFIX}"
    link_target = os.path.relpath(src_root.resolve() / shard, out_root.resolve())
    with Dataset(src_root) as ds, h5py.File(tmp, "w") as out:
        out.attrs["schema_version"] = SCHEMA_VERSION
        eps = out.create_group("episodes")
        names, sem_names = ds.action_names, ds.manifest.get("semantic_names", {})
        for index in [r.index for r in ds.refs().values() if r.shard == shard]:
            ep = ds.episode(index)
            ctxs = episode_contexts(ep, names, sem_names, with_frames=vlm is not None)
            seed = int(ep.attrs.get("seed", 0))
            texts = [rules.annotate(c, seed) for c in ctxs]
            sources = ["rules"] * len(texts)
            if vlm is not None:
                answered = vlm.annotate(ctxs, texts)
                texts, sources = [a[0] for a in answered], [a[1] for a in answered]
            g = eps.create_group(episode_key(index))
            for name in ep.keys():
                if cfg.copy_frames or name != "frames":
                    g.create_dataset(name, data=ep.read(name), dtype=ep[name].dtype)
                    for k, v in ep[name].attrs.items():
                        g[name].attrs[k] = v
                else:
                    g[name] = h5py.ExternalLink(link_target, f"/episodes/{episode_key(index)}/{name}")
            for k, v in ep.raw_attrs().items():
                g.attrs[k] = v
            g.create_dataset("reasoning", data=text_array(texts), dtype=_STR)
            g.create_dataset("reasoning_source", data=text_array(sources), dtype=_STR)
            steps += len(texts)
    os.replace(tmp, out_root / shard)
    return steps


def _worker(args):
    cfg_doc, shard = args
    return _write_shard(ReasonConfig(**cfg_doc), shard)


def _check_input(ds: Dataset, cfg: ReasonConfig) -> None:
    if not ds.complete:
        raise RigError(f"dataset {ds.root} is incomplete", f"finish it first: rig collect --out {ds.root} --resume")
    stages = ds.manifest.get("stages", [])
    first = ds.episode(ds.indices()[0]) if len(ds) else None  # what both checks below look at
    if "reason" in stages or (first is not None and "reasoning" in first):  # review data: the policy's thoughts
        raise RigError(f"dataset {ds.root} already has reasoning texts (stages: {', '.join(stages) or 'none'})",
                       "pass the collected dataset (rig collect --out DIR) as --data")
    if cfg.annotator == "rules" and first is not None:
        missing = [k for k in REQUIRED if k not in first]
        if missing:
            raise RigError(
                f"dataset {ds.root} lacks the privileged state the rule annotator needs ({', '.join(missing)})",
                "use --annotator vlm, which needs frames only",
            )


def run_reason(cfg: ReasonConfig, *, command: str = "rig augment", resume: bool = False,
               quiet: bool = False) -> dict[str, Any]:
    cfg.validate()
    out = Path(cfg.out)
    with Dataset(Path(cfg.data)) as ds:
        _check_input(ds, cfg)
        src_manifest = ds.manifest
        shards = ds.shard_files
    if resume:
        if not (out / MANIFEST).exists():
            raise RigError(f"nothing to resume at {out} (no {MANIFEST})", "drop --resume to start a new run there")
        stored = read_manifest(out)
        source = stored.get("source", {}).get("path")  # the input, relative to the output (as written below)
        made_from = (out / source).resolve() if source else None
        if list(stored.get("stages", []))[-1:] != ["reason"] or made_from != Path(cfg.data).resolve():
            raise RigError(f"{out} is not a reasoning run on {cfg.data} (stages: "
                           f"{', '.join(stored.get('stages', [])) or 'none'}; made from {made_from or 'nothing'})",
                           "resume it with the --data it was made from, or write to a new --out")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RigError(f"output {out} already exists and is not empty",
                       "pass --resume to continue it, or choose another --out")
    vlm = _make_vlm(cfg) if cfg.annotator == "vlm" else None
    if vlm is not None:
        vlm.check_ready()  # missing key or unreachable endpoint: fail before writing anything
    ensure_writable_dir(out, "output")
    for tmp in out.glob(f".*{TMP_SUFFIX}"):  # open shards and half-written manifests of a killed run
        tmp.unlink()
    todo = [s for s in shards if not (out / s).exists()]
    for s in shards:
        if (out / s).exists():
            open_shard(out / s).close()  # a corrupt output shard is reported, not silently kept
    manifest = {k: v for k, v in src_manifest.items() if k not in ("producer", "shards", "stages", "complete")}
    manifest.update({
        "format": FORMAT, "schema_version": SCHEMA_VERSION,
        "stages": list(src_manifest.get("stages", [])) + ["reason"],
        "source": {"path": os.path.relpath(Path(cfg.data).resolve(), out.resolve()),
                   "producer": src_manifest.get("producer"), "frames": "copied" if cfg.copy_frames else "linked"},
        "producer": {"command": command, "config": asdict(cfg), "seed": cfg.seed, "versions": versions(),
                     "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
        "complete": False,
        "shards": [s for s in src_manifest["shards"]],
    })
    atomic_write_json(out / MANIFEST, manifest)
    start = time.perf_counter()
    with progress("augment reason", len(shards), done=len(shards) - len(todo), quiet=quiet,
                  rate_field="steps", rate_unit="texts/s") as rep:
        def done(steps: int) -> None:
            rep.add("steps", steps)
            rep.advance(1)

        if cfg.workers == 1 or vlm is not None or len(todo) <= 1:
            for s in todo:
                done(_write_shard(cfg, s, vlm))
        else:
            with mp.get_context("spawn").Pool(min(cfg.workers, len(todo))) as pool:
                for steps in pool.imap_unordered(_worker, [(asdict(cfg), s) for s in todo]):
                    done(steps)
    manifest["complete"] = True
    atomic_write_json(out / MANIFEST, manifest)
    return summarize_reasoning(out, elapsed=time.perf_counter() - start, vlm=vlm)


def summarize_reasoning(root: Path, elapsed: float | None = None, vlm=None) -> dict[str, Any]:
    """Steps annotated, tokens per text, distinct share, and the consistency check over the whole dataset."""
    steps = action_ok = grounded_ok = 0
    tokens: list[int] = []
    texts: set[str] = set()
    sources = dict.fromkeys(SOURCES, 0)
    with Dataset(root) as ds:
        for ep in ds:
            reasoning = ep.texts("reasoning")
            for text, ctx, src in zip(reasoning, episode_contexts(ep, ds.action_names, ds.manifest.get("semantic_names", {})),
                                      ep.texts("reasoning_source")):
                res = check(text, ctx)
                steps += 1
                action_ok += res.action_ok
                grounded_ok += res.grounded_ok
                tokens.append(count_tokens(text))
                texts.add(text)
                sources[src] = sources.get(src, 0) + 1
    out = {
        "path": str(root), "steps_annotated": steps,
        "tokens_mean": float(np.mean(tokens)) if tokens else 0.0, "tokens_max": max(tokens, default=0),
        "distinct_share": len(texts) / steps if steps else 0.0,
        "action_consistency": action_ok / steps if steps else 0.0,
        "grounded": grounded_ok / steps if steps else 0.0,
        "sources": sources,
    }
    if elapsed is not None:
        out["elapsed_s"] = round(elapsed, 3)
    if vlm is not None:
        out["vlm"] = asdict(vlm.stats)
    return out
