"""`rig collect`: plan, resume, run workers, keep the manifest current, summarise."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import queue
import time
from pathlib import Path
from typing import Any, Callable

from rig_core.agents import make_agent
from rig_core.collect.worker import chunk_indices, collect_chunks, worker_main
from rig_core.config import CollectConfig
from rig_core.data.schema import FORMAT, MANIFEST, SCHEMA_VERSION, read_manifest
from rig_core.data.summary import summarize
from rig_core.data.writer import TMP_SUFFIX
from rig_core.envs import make_env
from rig_core.errors import CollectInterrupted, RigError
from rig_core.fsutil import atomic_write_json, ensure_writable_dir
from rig_core.tasks import load_suite
from rig_core.ui import progress
from rig_core.versions import versions

LOCK = ".collect.lock"


def _env_meta(env) -> dict[str, Any]:
    return {
        "env": {"id": env.env_id, "version": env.version},
        "action_names": list(env.action_names),
        "item_names": list(env.item_names),
        "achievement_names": list(env.achievement_names),
        "semantic_names": {str(k): v for k, v in getattr(env, "semantic_names", {}).items()},
        "frame_shape": list(env.frame_shape),
    }


class Collection:
    """State of one dataset directory being collected; the manifest is rewritten after every shard."""

    stages: tuple[str, ...] = ("collect",)
    lock_name = LOCK

    def __init__(self, cfg, command: str, resume: bool):
        self.root = Path(cfg.out)
        self.command = command
        self.extra: dict[str, Any] = {}  # further manifest fields a subclass adds
        self.cfg = self._prepare(cfg, resume)
        self.shards: dict[str, dict] = {}
        self._scan_closed_shards()

    # -- set-up -----------------------------------------------------------------
    def check(self, cfg) -> dict[str, Any]:
        """Everything that can be wrong with the inputs, before anything is written; returns the env metadata."""
        suite = load_suite(cfg.env)
        suite.resolve(cfg.task)  # unknown task -> clear error before anything is written
        env = make_env(cfg.env, length=None)
        make_agent(cfg.agent, env, epsilon=cfg.epsilon, oracle=cfg.oracle)
        return _env_meta(env)

    def _prepare(self, cfg, resume: bool):
        cfg.validate()  # also: Ray installed when --backend ray asks for it
        self.meta = self.check(cfg)
        exists = self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir()))
        if resume:
            if not (self.root / MANIFEST).exists():
                raise RigError(f"nothing to resume at {self.root} (no {MANIFEST})",
                               "drop --resume to start a new collection there")
            doc = read_manifest(self.root)
            if list(doc.get("stages", ["collect"])) != ["collect"]:
                raise RigError(f"{self.root} was made by rig augment ({', '.join(doc['stages'])}), not rig collect",
                               "resume it with the command that made it, or collect into a new --out")
            kind = type(cfg)
            stored = kind.from_dict(doc.get("producer", {}).get("config", {}))
            diff = {k: v for k, v in stored.differences(cfg).items() if getattr(kind(), k) != v[1]}
            if diff:
                pretty = ", ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in diff.items())
                raise RigError(f"--resume with options that differ from the stored run ({pretty})",
                               "drop those options to continue the stored run, or collect into a new --out")
            stored.workers, stored.out = cfg.workers, str(self.root)
            stored.backend, stored.address = cfg.backend, cfg.address
            cfg = stored
            self.created = doc.get("producer", {}).get("created")
        elif exists:
            raise RigError(f"output {self.root} already exists and is not empty",
                           "pass --resume to continue it, or choose another --out")
        else:
            self.created = None
        ensure_writable_dir(self.root, "output")
        self._lock()
        return cfg

    def _lock(self) -> None:
        lock = self.root / self.lock_name
        if lock.exists():
            try:
                pid = int(lock.read_text().strip() or 0)
                os.kill(pid, 0)
                alive = pid != os.getpid()
            except (ValueError, ProcessLookupError, PermissionError):
                alive = False
            if alive:
                raise RigError(f"another rig process (pid {pid}) is writing {self.root}",
                               "wait for it to finish, or stop it before resuming")
        lock.write_text(str(os.getpid()))

    def unlock(self) -> None:
        (self.root / self.lock_name).unlink(missing_ok=True)

    def _scan_closed_shards(self) -> None:
        """Closed shards on disk are the truth; temp files of killed runs are deleted."""
        for tmp in self.root.glob(f".*{TMP_SUFFIX}"):  # open shards and half-written manifests of a killed run
            tmp.unlink()
        self._register_closed_shards()

    def _register_closed_shards(self) -> None:
        """List every closed shard on disk (one renamed just before an interrupt, too)."""
        from rig_core.data.reader import open_shard

        for path in sorted(self.root.glob("shard-*.h5")):
            with open_shard(path) as f:
                eps = [int(k) for k in f["episodes"].keys()] if "episodes" in f else []
                steps = sum(int(g.attrs.get("length", 0)) for g in f["episodes"].values()) if eps else 0
            self.shards[path.name] = {"file": path.name, "episodes": eps, "steps": steps}

    # -- progress -----------------------------------------------------------------
    def done_indices(self) -> set[int]:
        return {i for s in self.shards.values() for i in s["episodes"]}

    def add_shard(self, info: dict) -> None:
        self.shards[info["file"]] = {k: info[k] for k in ("file", "episodes", "steps")}
        self.write_manifest(complete=False)

    def write_manifest(self, complete: bool) -> None:
        doc = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            **self.meta,
            "stages": list(self.stages),
            **self.extra,
            "producer": {
                "command": self.command,
                "config": self.cfg.to_dict(),
                "seed": self.cfg.seed,
                "versions": versions(),
                "created": self.created or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            },
            "episodes_planned": self.cfg.episodes,
            "complete": complete,
            "shards": [self.shards[k] for k in sorted(self.shards)],
        }
        self.created = doc["producer"]["created"]
        atomic_write_json(self.root / MANIFEST, doc)

    # -- running ------------------------------------------------------------------
    def run(self, work: Callable, worker_target: Callable, description: str, note: Callable[[dict], str],
            resume_command: str, quiet: bool) -> tuple[list[int], float]:
        """Play every episode not saved yet: ``work(cfg, chunks, emit)`` in this process, worker processes
        running ``worker_target``, or (``cfg.backend == "ray"``) one Ray task per chunk running ``work``; the
        manifest follows every closed shard. Returns (episodes played, seconds)."""
        cfg = self.cfg
        try:
            self.write_manifest(complete=False)
            todo = [i for i in range(cfg.episodes) if i not in self.done_indices()]
            chunks = chunk_indices(todo, cfg.workers, cfg.episodes_per_shard)
            start = time.perf_counter()
            with progress(description, cfg.episodes, done=cfg.episodes - len(todo), quiet=quiet) as rep:
                def on_event(event: tuple) -> None:
                    kind, payload = event
                    if kind == "steps":
                        rep.add("steps", payload)
                    elif kind == "episode":
                        rep.advance(1)
                        rep.note(note(payload))
                    elif kind == "shard":
                        self.add_shard(payload)

                try:
                    if cfg.backend == "ray":
                        from rig_core.collect.ray_backend import run_ray_chunks

                        run_ray_chunks(cfg, chunks, on_event, work)
                    elif cfg.workers == 1 or len(chunks) <= 1:
                        work(cfg, chunks, on_event)
                    else:
                        run_processes(cfg, chunks, on_event, target=worker_target)
                except KeyboardInterrupt as exc:
                    # a shard renamed into place between its close and its "shard" event is saved too
                    self._register_closed_shards()
                    self.write_manifest(complete=False)
                    raise CollectInterrupted(
                        f"interrupted: {len(self.done_indices())} of {cfg.episodes} episodes are saved; "
                        f"continue with: {resume_command}") from exc
            elapsed = time.perf_counter() - start
            self.write_manifest(complete=True)
        finally:
            self.unlock()
        return todo, elapsed


def backend_flags(cfg) -> str:
    """The options of a resume hint that keep the run on its backend."""
    if cfg.backend == "process":
        return ""
    return f" --backend {cfg.backend}" + (f" --address {cfg.address}" if cfg.address else "")


def run_collect(cfg: CollectConfig, *, command: str = "rig collect", resume: bool = False,
                quiet: bool = False) -> dict[str, Any]:
    """Collect ``cfg.episodes`` episodes into ``cfg.out`` (resuming if asked); returns the summary."""
    col = Collection(cfg, command, resume)
    cfg = col.cfg
    todo, elapsed = col.run(collect_chunks, worker_main, "collect",
                            lambda p: f"last: {p['task']} {'ok' if p['success'] else '--'}",
                            f"rig collect --out {cfg.out} --resume{backend_flags(cfg)}", quiet)
    summary = summarize(cfg.out)
    summary["elapsed_s"] = round(elapsed, 3)
    new_steps = sum(s["steps"] for s in col.shards.values() if set(s["episodes"]) & set(todo))
    summary["collected_steps"] = new_steps
    summary["steps_per_s"] = round(new_steps / elapsed, 1) if elapsed > 0 and todo else None
    return summary


def run_processes(cfg, chunks: list[list[int]], on_event, target=worker_main) -> None:
    """Run ``target(cfg_doc, chunk_queue, event_queue, parent_pid)`` in worker processes until all chunks are done."""
    ctx = mp.get_context("spawn")
    chunk_q, event_q = ctx.Queue(), ctx.Queue()
    n = min(cfg.workers, len(chunks))
    for c in chunks:
        chunk_q.put(c)
    for _ in range(n):
        chunk_q.put(None)
    procs = [ctx.Process(target=target, args=(cfg.to_dict(), chunk_q, event_q, os.getpid()), daemon=True)
             for _ in range(n)]
    for p in procs:
        p.start()
    finished = 0
    try:
        while finished < n:
            try:
                event = event_q.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise RuntimeError(f"a worker died (exit code {dead[0].exitcode})")
                continue
            if event[0] == "done":
                finished += 1
            elif event[0] == "error":
                raise RuntimeError(f"a worker failed: {event[1]}")
            else:
                on_event(event)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)
