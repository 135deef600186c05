"""`--backend ray`: rollouts as Ray tasks, on a local Ray started here or on an existing cluster (``--address``).

Ray is an optional extra (``pip install 'rig[ray]'``). Each unit of work (a chunk of episodes, one shard; or
an evaluation share) is one Ray task, so the shard layout, seeds and results are those of the process backend.
A task whose worker dies is retried by Ray (``max_retries``); a shard is written under a temp name and renamed
on close, so a retried chunk simply writes its shard again. Progress events go through a small actor while a
task runs; a retried attempt's events are only forwarded past what the failed attempt already reported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from typing import Any, Callable, Iterator

from rig_core.errors import RigError

MAX_RETRIES = 3  # attempts after a worker dies (a Python exception in the task is not retried)
FAULT_ONCE = "RIG_RAY_FAULT_ONCE"  # tests: a marker file; the first episode to see it removes it and the worker dies
POLL_S = 0.25


def require_ray():
    """The ``ray`` module, or a one-line error naming the extra to install."""
    from rig_core.config import ray_missing

    try:
        import ray
    except ImportError:
        raise ray_missing() from None
    return ray


@contextlib.contextmanager
def ray_session(workers: int, address: str | None = None) -> Iterator[Any]:
    """Connect to Ray for the duration: the cluster at ``address``, else a local Ray with ``workers`` CPUs
    (shut down after). A Ray already initialised in this process (a notebook, the tests) is used as it is."""
    ray = require_ray()
    if ray.is_initialized():
        with _quiet_raylet():
            yield ray
        return
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
    try:
        if address:
            _check_reachable(address)
            ray.init(address=address, **quiet)
        else:  # "local": a new Ray even where `ray start` runs one; --address auto joins that instead
            ray.init(address="local", num_cpus=workers, include_dashboard=False, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        if address:
            raise RigError(f"could not connect to the Ray cluster at {address}: {first}",
                           "check --address (ray://HEAD:10001, HEAD:6379, or auto for a `ray start` on this "
                           "machine); a cluster with token authentication needs RAY_AUTH_MODE=token") from exc
        raise RigError(f"could not start a local Ray: {first}", "use --backend process") from exc
    try:
        with _quiet_raylet():
            yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at a HOST:PORT address (``auto`` is Ray's to find)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port} ({exc.strerror or exc})") from exc


@contextlib.contextmanager
def _quiet_raylet() -> Iterator[None]:
    """Keep the raylet's messages (a worker died, a task is retried) off stdout, where --json goes: they go to
    the ``rig.ray`` logger instead; a task that fails for good is still reported, as one line."""
    try:
        from ray._private import worker as ray_worker

        original = ray_worker.print_to_stdstream
    except (ImportError, AttributeError):  # another Ray layout: its messages stay as they are
        yield
        return

    def filtered(data, *args, **kwargs):
        if data.get("pid") == "raylet":
            for line in data.get("lines", []):
                logging.getLogger("rig.ray").debug("%s", line)
            return None
        return original(data, *args, **kwargs)

    ray_worker.print_to_stdstream = filtered
    try:
        yield
    finally:
        ray_worker.print_to_stdstream = original


def session_for(backend: str, workers: int, address: str | None = None) -> contextlib.AbstractContextManager:
    """One Ray session around several runs (an evaluation sweep, several players) with ``--backend ray``;
    nothing otherwise."""
    return ray_session(workers, address) if backend == "ray" else contextlib.nullcontext()


# -- inside a task ------------------------------------------------------------------------------------------------
class _Emitter:
    """``emit(event)`` inside a task: events go to the sink actor tagged (task, attempt); ``put(n)`` is an
    evaluation share's per-episode tick. ``flush()`` waits until the sink holds them all."""

    def __init__(self, sink, task: int):
        self.sink, self.task, self.attempt = sink, task, uuid.uuid4().hex
        self.buffer: list[tuple] = []
        self.last = time.monotonic()

    def __call__(self, event: tuple) -> None:
        if event[0] == "episode":
            _maybe_fault()
        self.buffer.append(event)
        if time.monotonic() - self.last >= POLL_S or event[0] != "steps":
            self.sink.push.remote(self.task, self.attempt, self.buffer)
            self.buffer, self.last = [], time.monotonic()

    def put(self, n: int) -> None:
        self(("episode", n))

    def flush(self) -> None:
        import ray

        ray.get(self.sink.push.remote(self.task, self.attempt, self.buffer))
        self.buffer = []


def _maybe_fault() -> None:
    """Tests only: with ``RIG_RAY_FAULT_ONCE`` naming an existing file, the first worker to remove it dies."""
    marker = os.environ.get(FAULT_ONCE)
    if marker:
        try:
            os.unlink(marker)
        except FileNotFoundError:
            return
        os._exit(1)


def _run_chunk(work: Callable, cfg, chunk: list[int], emit: _Emitter) -> list[dict]:
    """One chunk of episodes (one shard) with ``work(cfg, chunks, emit)``; returns its closed shards' infos."""
    shards: list[dict] = []
    work(cfg, [chunk], lambda e: shards.append(e[1]) if e[0] == "shard" else emit(e))
    return shards


def _task_body(fn: Callable, args: tuple, sink, index: int):
    emit = _Emitter(sink, index)
    try:
        return fn(*args, emit)
    finally:
        emit.flush()


class _Sink:
    """Collects the tasks' events until the driver drains them."""

    def __init__(self):
        self.events: list[tuple] = []

    def push(self, task: int, attempt: str, events: list[tuple]) -> None:
        self.events.extend((task, attempt, e) for e in events)

    def drain(self) -> list[tuple]:
        out, self.events = self.events, []
        return out


# -- the driver -----------------------------------------------------------------------------------------------------
class _Replays:
    """Forward each task's events once: a retried attempt replays the same episodes (same seeds), so its k-th
    event of a kind is forwarded only when no earlier attempt of that task reported a k-th one."""

    def __init__(self):
        self.delivered: dict[tuple[int, str], int] = {}
        self.seen: dict[tuple[int, str, str], int] = {}

    def fresh(self, task: int, attempt: str, kind: str) -> bool:
        k = self.seen[(task, attempt, kind)] = self.seen.get((task, attempt, kind), 0) + 1
        if k > self.delivered.get((task, kind), 0):
            self.delivered[(task, kind)] = k
            return True
        return False


def _failure(exc: BaseException, what: str) -> Exception:
    """One clear line for a task that failed for good (a RigError raised in the task stays itself)."""
    import ray

    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, RigError):
            return cause
        if cause is not None:
            text = str(cause).strip().splitlines()
            return RigError(f"a Ray task ({what}) failed: {cause.__class__.__name__}: {text[0] if text else ''}",
                            "the worker's traceback is in the Ray logs (/tmp/ray/session_latest/logs); "
                            "--backend process shows it here")
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return RigError(f"the Ray worker running {what} died {MAX_RETRIES + 1} times",
                        "see the Ray logs (/tmp/ray/session_latest/logs); an interrupted collection continues "
                        "with --resume")
    text = str(exc).strip().splitlines()
    return RigError(f"a Ray task ({what}) failed: {exc.__class__.__name__}: {text[0] if text else ''}",
                    "see the Ray logs (/tmp/ray/session_latest/logs)")


def run_tasks(fn: Callable, arglist: list[tuple], on_event: Callable[[tuple], None], *, workers: int,
              address: str | None = None, describe: Callable[[int], str] = lambda i: f"task {i}",
              on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Run ``fn(*args, emit)`` for each ``args`` as a Ray task, at most ``workers`` at a time; returns the results
    in the order of ``arglist``. ``emit(event)`` inside a task reaches ``on_event`` in this process (once, even
    when the task is retried); ``on_result(i, result)`` follows each task that finishes."""
    if not arglist:
        return []
    with ray_session(workers, address) as ray:
        sink = ray.remote(num_cpus=0)(_Sink).remote()
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_task_body)
        replays = _Replays()
        results: list[Any] = [None] * len(arglist)
        pending: dict[Any, int] = {}
        queued = iter(range(len(arglist)))

        def deliver() -> None:
            for index, attempt, event in ray.get(sink.drain.remote()):
                if replays.fresh(index, attempt, event[0]):
                    on_event(event)

        try:
            for i in queued:
                pending[task.remote(fn, arglist[i], sink, i)] = i
                if len(pending) >= workers:
                    break
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                deliver()
                for ref in done:
                    i = pending.pop(ref)
                    try:
                        results[i] = ray.get(ref)
                    except (ray.exceptions.RayError, ray.exceptions.RaySystemError) as exc:
                        raise _failure(exc, describe(i)) from exc
                    if on_result is not None:
                        on_result(i, results[i])
                    nxt = next(queued, None)
                    if nxt is not None:
                        pending[task.remote(fn, arglist[nxt], sink, nxt)] = nxt
        finally:
            for ref in pending:  # an error or Ctrl-C: stop what still runs (its open shard stays a temp file)
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        return results


def run_ray_chunks(cfg, chunks: list[list[int]], on_event: Callable[[tuple], None], work: Callable) -> None:
    """The Ray counterpart of ``run_processes``: each chunk is a task ``work(cfg, [chunk], emit)``; every closed
    shard reaches ``on_event`` as ``("shard", info)`` once its task has finished."""

    def shards_done(_: int, infos: list[dict]) -> None:
        for info in infos:
            on_event(("shard", info))

    run_tasks(_run_chunk, [(work, cfg, chunk) for chunk in chunks], on_event, workers=cfg.workers,
              address=cfg.address, describe=lambda i: f"episodes {chunks[i][0]}-{chunks[i][-1]}",
              on_result=shards_done)
