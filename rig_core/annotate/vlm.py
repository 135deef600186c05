"""The optional VLM annotator (S2): an OpenAI-compatible vision model writes the reason for each action.

Frame (PNG, 64->256 nearest) + a state summary in, 1-3 first-person sentences out; every answer must pass
``consistency.check`` or the rule text is used. Answers are cached by content hash (a rerun sends no
request). The API key is read only from the environment and never written anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from rig_core.annotate.consistency import check, vocabulary
from rig_core.annotate.context import StepContext
from rig_core.errors import RigError
from rig_core.fsutil import atomic_write_json

log = logging.getLogger(__name__)
CACHE_VERSION = 1
FRAME_SIZE = 256
MASS = {"water", "stone", "coal", "iron", "grass", "sand", "lava", "wood", "food", "drink"}
BACKGROUND = {"grass", "path", "none", "unknown", "player"}
PRODUCT = {"place_stone": "stone", "place_table": "table", "place_furnace": "furnace", "place_plant": "sapling",
           **{f"make_{m}_{t}": f"{m} {t}" for m in ("wood", "stone", "iron") for t in ("pickaxe", "sword")}}
SYSTEM = ("You write the inner reasoning of an agent playing Crafter, a top-down 2D survival game. The image is "
          "the agent's view: the agent stands in the middle of the 9x7 world grid, with its inventory drawn below. "
          "Write 1 to 3 short sentences in the first person: what matters in view, what is needed next toward the "
          "task and why, and a last sentence that commits to the given action. Name as present only things listed "
          "as in view or held; things you lack may be named only as needs ('I need stone'). Reply with the "
          "sentences only.")


@dataclass
class VLMStats:
    requests: int = 0  # requests sent (the client's own retries not counted again)
    cache_hits: int = 0
    fallbacks: int = 0  # answers that failed the consistency check, replaced by the rule text
    errors: int = 0  # requests that failed after retries, replaced by the rule text
    wrong_action: int = 0  # of fallbacks: the last sentence did not commit to the action taken
    ungrounded: int = 0  # of fallbacks: named something neither in view nor held


@lru_cache(maxsize=None)
def _phrasings() -> dict[str, Any]:
    return yaml.safe_load(resources.files("rig_core.resources").joinpath("reasoning.yaml").read_text())["phrasings"]


def _np(thing: str) -> str:
    return thing if thing in MASS else f"{'an' if thing[0] in 'aeiou' else 'a'} {thing}"


def _where(dx: int, dy: int) -> str:
    h = f"{abs(dx)} to the {'left' if dx < 0 else 'right'}" if dx else ""
    v = f"{abs(dy)} {'up' if dy < 0 else 'down'}" if dy else ""
    return " and ".join(p for p in (h, v) if p)


def _front(ctx: StepContext) -> str:
    return ctx.front() if ctx.view else "unknown"


def accepted_commitments(ctx: StepContext) -> list[str]:
    """Last sentences the consistency check accepts for ``ctx.action`` (verified against its patterns)."""
    ph, a, opts = _phrasings(), ctx.action, []
    if a.startswith("move_"):
        opts = [t.format(dir=a[5:]) for t in ph["act_move"]]
    elif a == "do":
        front = _front(ctx)
        opts = ph["act_do"].get(front) or [t.format(front=front) for t in ph["act_do"]["other"]]
    elif a in ("sleep", "noop"):
        opts = list(ph[f"act_{a}"])
    elif a in PRODUCT:
        key = "act_place" if a.startswith("place_") else "act_make"
        opts = [t.format(product_np=_np(PRODUCT[a])) for t in ph[key]]
    pats = vocabulary().action_patterns.get(a, ())
    return [o for o in opts if any(p.search(o) for p in pats)]


def action_words(ctx: StepContext) -> str:
    a = ctx.action
    if a.startswith("move_"):
        return f"move {a[5:]}"
    if a == "do":
        return f"interact with the cell in front ({_front(ctx)}): collect, mine, drink, eat or attack it"
    if a in PRODUCT:
        return f"{'place' if a.startswith('place_') else 'craft'} {_np(PRODUCT[a])}"
    return {"noop": "wait (do nothing)", "sleep": "sleep"}.get(a, a.replace("_", " "))


def state_summary(ctx: StepContext) -> str:
    """The user-message text: task, inventory, vitals, facing, what is in view, and the action taken."""
    held = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(ctx.inventory.items()))
    lines = [f"Task: {ctx.instruction or ctx.task_id.replace('_', ' ')}.", f"Inventory: {held or 'nothing'}."]
    if ctx.vitals:
        lines.append("Vitals (0-9): " + ", ".join(f"{k} {v}" for k, v in ctx.vitals.items()) + ".")
    if ctx.view:
        lines.append(f"Facing: {ctx.facing_word}; the cell in front of me is {_front(ctx)}.")
        seen = [f"{n} (nearest {_where(*ctx.visible(n)[0])})" for n in sorted(ctx.visible_names() - BACKGROUND)]
        lines.append("In view: " + ("; ".join(seen) if seen else "only open ground") + ".")
    if ctx.sleeping:
        lines.append("I am asleep.")
    sub = str(ctx.intent.get("subgoal") or "").strip()
    if sub and not ctx.noise:
        lines.append(f"My current sub-goal: {sub}.")
    lines.append(f"Action I take now: {action_words(ctx)}.")
    if ctx.noise:
        lines.append("This action is a random exploratory one, not part of my plan; say so.")
    opts = accepted_commitments(ctx)
    if opts:
        lines.append("End with exactly one of these sentences: " + " / ".join(f"'{o}'" for o in opts) + ".")
    lines.append("Do not name any other action in the last sentence.")
    return "\n".join(lines)


def frame_png(frame: np.ndarray, size: int = FRAME_SIZE) -> bytes:
    """The frame as PNG bytes, upscaled (nearest) so its longer side is about ``size`` pixels."""
    img = np.ascontiguousarray(frame, dtype=np.uint8)
    k = max(1, size // max(img.shape[:2]))
    img = img.repeat(k, axis=0).repeat(k, axis=1)
    Image.fromarray(img).save(buf := io.BytesIO(), format="PNG")
    return buf.getvalue()


def _clean(text: str | None) -> str:
    text = " ".join((text or "").split()).strip('" ')
    return text.split(":", 1)[1].strip(' "') if text.startswith(("Reasoning:", "Answer:")) else text


class VLMAnnotator:
    name = "vlm"

    def __init__(self, model: str, base_url: str, api_key_env: str = "RIG_VLM_API_KEY",
                 cache_dir: Path | None = None, concurrency: int = 4, max_retries: int = 4,
                 timeout: float = 60.0, temperature: float = 0.0, max_tokens: int = 160):
        try:
            import openai
        except ImportError as exc:
            raise RigError("the VLM annotator needs the openai package", "pip install 'rig[vlm]'") from exc
        if concurrency < 1:
            raise RigError(f"--concurrency must be at least 1 (got {concurrency})", "pass --concurrency 4")
        self._key_var = api_key_env if os.environ.get(api_key_env) else "OPENAI_API_KEY"
        key = os.environ.get(self._key_var)
        if not key:
            raise RigError(f"no API key for the VLM annotator: the environment variable {api_key_env} is not set",
                           f"export {api_key_env}=<your key> (any non-empty value for a local server without auth)")
        self._openai, self._key = openai, key
        self.model, self.base_url, self.api_key_env, self.concurrency = model, base_url, api_key_env, concurrency
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.timeout, self.temperature, self.max_tokens = timeout, temperature, max_tokens
        self.client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout)
        self.stats, self._lock = VLMStats(), threading.Lock()

    def _scrub(self, text: object) -> str:
        return str(text).replace(self._key, "***")

    def _unreachable(self, exc: BaseException) -> RigError:
        cause = exc.__cause__ or exc
        reason = self._scrub(f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__)
        return RigError(f"cannot reach the annotator endpoint {self.base_url} ({reason})",
                        "check --base-url, or start the server")

    def _fatal(self, exc: BaseException) -> RigError | None:
        """A RigError for errors every request would hit (bad key, unknown model), else None."""
        o = self._openai
        if isinstance(exc, (o.AuthenticationError, o.PermissionDeniedError)):
            return RigError(f"the annotator endpoint {self.base_url} rejected the API key "
                            f"(HTTP {exc.status_code}) taken from {self._key_var}",
                            f"set {self._key_var} to a valid key: export {self._key_var}=<your key>")
        if isinstance(exc, o.NotFoundError):
            return RigError(f"the annotator endpoint {self.base_url} does not serve model {self.model!r} "
                            f"(HTTP 404: {self._scrub(exc.message)[:200]})", "check --model and --base-url")
        return None

    def check_ready(self) -> None:
        """Raise a RigError unless the endpoint answers, accepts the key and serves the model."""
        o = self._openai
        quick = self.client.with_options(timeout=min(self.timeout, 10.0), max_retries=1)
        try:
            served = [m.id for m in quick.models.list()]
        except o.APIConnectionError as exc:
            raise self._unreachable(exc) from None
        except o.NotFoundError:
            return  # answers, but lists no models: some servers do not implement /models
        except o.APIStatusError as exc:
            raise self._fatal(exc) or RigError(
                f"the annotator endpoint {self.base_url} answered HTTP {exc.status_code} to /models",
                "check --base-url, or the server's logs") from None
        if served and self.model not in served:
            raise RigError(f"the annotator endpoint {self.base_url} does not serve model {self.model!r} "
                           f"(it serves: {', '.join(served[:8])}{', ...' if len(served) > 8 else ''})", "check --model")

    def cache_key(self, ctx: StepContext, prompt: str) -> str:
        frame = np.ascontiguousarray(ctx.frame, dtype=np.uint8)
        head = f"v{CACHE_VERSION}\0{self.model}\0t={self.temperature}\0{SYSTEM}\0{prompt}\0{frame.shape}\0"
        return hashlib.sha256(head.encode() + frame.tobytes()).hexdigest()

    def _cache_get(self, key: str) -> str | None:
        path = self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir is not None else None
        try:
            doc = json.loads(path.read_text(encoding="utf-8")) if path and path.is_file() else {}
        except (OSError, ValueError):
            return None  # a damaged entry is simply asked again
        return doc["text"] if doc.get("model") == self.model and isinstance(doc.get("text"), str) else None

    def _cache_put(self, key: str, text: str) -> None:
        if self.cache_dir is None:
            return
        path = self.cache_dir / key[:2] / f"{key}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, {"version": CACHE_VERSION, "model": self.model, "text": text})
        except OSError as exc:
            log.warning("could not write the VLM cache entry %s (%s)", path, exc)

    def _request(self, ctx: StepContext, prompt: str) -> str:
        url = "data:image/png;base64," + base64.b64encode(frame_png(ctx.frame)).decode("ascii")
        with self._lock:
            self.stats.requests += 1
        resp = self.client.chat.completions.create(
            model=self.model, temperature=self.temperature, max_tokens=self.max_tokens,
            messages=[{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": [{"type": "text", "text": prompt},
                                                   {"type": "image_url", "image_url": {"url": url}}]}])
        return _clean(resp.choices[0].message.content if resp.choices else "")

    def _accept(self, text: str, ctx: StepContext, source: str, fallback: str) -> tuple[str, str]:
        res = check(text, ctx)
        if res.ok:
            return text, source
        with self._lock:
            self.stats.fallbacks += 1
            self.stats.wrong_action += not res.action_ok
            self.stats.ungrounded += bool(res.ungrounded)
        log.debug("step %d: VLM text failed the check (%s): %r", ctx.step, res, text)
        return fallback, "fallback"

    def annotate(self, contexts: list[StepContext], fallbacks: list[str]) -> list[tuple[str, str]]:
        """(text, source) per step; source is 'vlm', 'cache' or 'fallback' (the rule text given)."""
        if len(contexts) != len(fallbacks):
            raise ValueError(f"{len(contexts)} contexts but {len(fallbacks)} fallback texts")
        out: list[tuple[str, str] | None] = [None] * len(contexts)
        todo: list[tuple[int, str, str]] = []
        for i, ctx in enumerate(contexts):
            if ctx.frame is None:
                raise ValueError(f"step {ctx.step} has no frame; build contexts with with_frames=True")
            prompt = state_summary(ctx)
            key = self.cache_key(ctx, prompt)
            cached = self._cache_get(key)
            if cached is None:
                todo.append((i, prompt, key))
                continue
            self.stats.cache_hits += 1
            out[i] = self._accept(cached, ctx, "cache", fallbacks[i])
        o, conn_errors = self._openai, []

        def work(item: tuple[int, str, str]) -> tuple[str, str]:
            i, prompt, key = item
            ctx = contexts[i]
            try:
                text = self._request(ctx, prompt)
            except o.APIError as exc:
                if (fatal := self._fatal(exc)) is not None:
                    raise fatal from None
                with self._lock:
                    self.stats.errors += 1
                    if isinstance(exc, o.APIConnectionError):
                        conn_errors.append(exc)
                log.warning("step %d: VLM request failed (%s); using the rule text", ctx.step, self._scrub(repr(exc)))
                return fallbacks[i], "fallback"
            if text:
                self._cache_put(key, text)
            return self._accept(text, ctx, "vlm", fallbacks[i])

        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(todo)))) as pool:
            futures = [(item[0], pool.submit(work, item)) for item in todo]
            try:
                for i, fut in futures:
                    out[i] = fut.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        if todo and len(conn_errors) == len(todo):
            raise self._unreachable(conn_errors[0])
        return out  # type: ignore[return-value]
