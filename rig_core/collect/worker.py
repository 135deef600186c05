"""Collection workers: play chunks of episodes, one closed shard per chunk, report events."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import traceback
from pathlib import Path
from typing import Callable, Iterable

from rig_core.agents import make_agent
from rig_core.collect.rollout import play_episode
from rig_core.config import CollectConfig
from rig_core.data.writer import ShardWriter
from rig_core.envs import make_env
from rig_core.tasks import load_suite

Emit = Callable[[tuple], None]


def plan_episode(cfg: CollectConfig, index: int) -> tuple[str, int]:
    """Task id and seed of global episode ``index``: tasks cycle, seeds count up from --seed."""
    tasks = load_suite(cfg.env).resolve(cfg.task)
    return tasks[index % len(tasks)].id, cfg.seed + index


def chunk_indices(indices: list[int], workers: int, per_shard: int) -> list[list[int]]:
    """Split the episodes still to play into shard-sized chunks that keep every worker busy."""
    if not indices:
        return []
    size = max(1, min(per_shard, -(-len(indices) // workers)))
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def collect_chunks(cfg: CollectConfig, chunks: Iterable[list[int]], emit: Emit) -> None:
    """Play every episode of every chunk; each chunk becomes one shard, closed when full."""
    env = make_env(cfg.env, length=None)
    agent = make_agent(cfg.agent, env, epsilon=cfg.epsilon, oracle=cfg.oracle, seed=cfg.seed)
    suite = load_suite(cfg.env)
    root = Path(cfg.out)
    for chunk in chunks:
        writer = ShardWriter(root, chunk[0])
        try:
            for index in chunk:
                task_id, seed = plan_episode(cfg, index)
                record = play_episode(
                    env, agent, suite.get(task_id), seed, max_steps=cfg.max_steps,
                    attrs={"epsilon": float(cfg.epsilon), "oracle": bool(cfg.oracle), "index": index},
                    on_steps=lambda n: emit(("steps", n)),
                )
                writer.write_episode(index, record)
                emit(("episode", {"index": index, "task": task_id, "steps": record.length,
                                  "success": record.attrs["success"], "died": record.attrs["died"],
                                  "unlocked": json.loads(record.attrs["unlocked"])}))
        except BaseException:
            writer.abort()
            raise
        writer.close()
        emit(("shard", writer.info()))


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the collecting process dies (e.g. kill -9)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - non-Linux
        pass


def serve_chunks(work: Callable, cfg, chunk_queue, event_queue, parent_pid: int) -> None:
    """Body of a worker process: ``work(cfg, chunks, emit)`` over chunks pulled until the ``None`` sentinel."""
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return

    def chunks():
        while True:
            chunk = chunk_queue.get()
            if chunk is None:
                return
            yield chunk

    try:
        work(cfg, chunks(), event_queue.put)
        event_queue.put(("done", os.getpid()))
    except KeyboardInterrupt:
        event_queue.put(("done", os.getpid()))
    except BaseException as exc:  # report, the parent decides
        event_queue.put(("error", f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc()}"))


def worker_main(cfg_doc: dict, chunk_queue, event_queue, parent_pid: int) -> None:
    """Entry point of a collect worker process."""
    serve_chunks(collect_chunks, CollectConfig.from_dict(cfg_doc), chunk_queue, event_queue, parent_pid)
