"""Dataclass configs, one per command, saved as JSON beside every output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from rig_core.errors import RigError

# Options that only change how a run executes, never what it produces; a resumed run may change them.
RUNTIME_ONLY = {"workers", "quiet", "json_output", "resume", "out", "backend", "address", "device"}
# Where rollouts run: worker processes on this machine, or Ray tasks (rig[ray]) on a local Ray or a cluster.
BACKENDS = ("process", "ray")
# Which action a review rollout takes after judging a proposal.
FOLLOW = ("corrected", "policy", "expert")
EVAL_SEED = 1_000_000  # evaluation worlds; rig collect's seeds count up from 0, review rollouts from 500,000


def ray_missing() -> RigError:
    return RigError("--backend ray needs Ray, which is not installed", "pip install 'rig[ray]'")


def check_backend(backend: str, address: str | None) -> None:
    """Validate ``--backend`` and ``--address``, and that Ray is installed when it is asked for: one line
    before anything is written."""
    if backend not in BACKENDS:
        raise RigError(f"unknown --backend '{backend}'", f"choose one of: {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise RigError("--address applies to --backend ray only", "add --backend ray, or drop --address")
    if address is not None and not str(address).strip():
        raise RigError("--address is empty", "pass a Ray cluster address such as ray://head:10001, or auto")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ray_missing() from None


class ConfigBase:
    """JSON round trip and the resume check shared by the per-command dataclass configs."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def differences(self, other) -> dict[str, tuple[Any, Any]]:
        """Fields (other than runtime-only ones) whose values differ: name -> (self, other)."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if k not in RUNTIME_ONLY and a[k] != b[k]}


@dataclass
class CollectConfig(ConfigBase):
    out: str = "datasets/expert"
    env: str = "crafter"
    agent: str = "expert"
    task: str = "open"
    episodes: int = 10
    seed: int = 0
    workers: int = 1
    epsilon: float = 0.0
    max_steps: int | None = None
    oracle: bool = False
    episodes_per_shard: int = 8
    backend: str = "process"  # process or ray (a run's execution only: resume may change it)
    address: str | None = None  # an existing Ray cluster (with backend ray); None starts a local Ray

    def validate(self) -> "CollectConfig":
        check_backend(self.backend, self.address)
        if self.episodes < 1:
            raise RigError(f"--episodes {self.episodes} must be at least 1", "pass --episodes 1 or more")
        if self.workers < 1:
            raise RigError(f"--workers {self.workers} must be at least 1", "pass --workers 1 or more")
        if self.max_steps is not None and self.max_steps < 1:
            raise RigError(f"--max-steps {self.max_steps} must be at least 1", "pass a positive step limit")
        if not 0.0 <= self.epsilon <= 1.0:
            raise RigError(f"--epsilon {self.epsilon} is outside [0, 1]", "pass a probability such as 0.05")
        if self.episodes_per_shard < 1:
            raise RigError("--episodes-per-shard must be at least 1", "pass a positive number")
        if self.seed < 0:
            raise RigError(f"--seed {self.seed} is negative", "pass a seed of 0 or more")
        if self.oracle and self.agent != "expert":
            raise RigError("--oracle applies to the expert agent only", "drop --oracle or use --agent expert")
        return self


@dataclass
class ReviewConfig(ConfigBase):
    """`rig augment --stage review`: roll out a RIG-basic checkpoint, fork, judge, record review samples."""

    out: str = "datasets/review"
    data: str = ""  # the input dataset: its tasks are reviewed, its episodes are the basic data of lookahead
    checkpoint: str = ""
    env: str = "crafter"
    episodes: int = 8
    seed: int = 500_000  # review worlds: apart from collect (0..) and evaluation (1,000,000..)
    workers: int = 1
    horizon: int = 3  # imagined steps per proposal (1 + the most test-time steps a review sample covers)
    confirm_share: float = 0.5
    confirm_floor: float = 0.0  # every episode keeps at least this share of its confirmations
    follow: str = "corrected"
    batch: int = 8
    max_steps: int | None = None
    episodes_per_shard: int = 8  # set to --batch: a shard is the episodes one worker plays in lock-step
    backend: str = "process"
    address: str | None = None
    device: str = "auto"  # where the policy runs (rig_core.model.device)
    draft: bool = True  # imagined frames decoded with the last frame as the draft (False: token by token)
    candidates: int | None = None  # also candidate samples: the policy's top-K actions and the expert's, judged

    def validate(self) -> "ReviewConfig":
        check_backend(self.backend, self.address)
        if self.episodes < 1:
            raise RigError(f"--episodes {self.episodes} must be at least 1", "pass --episodes 1 or more")
        if self.workers < 1:
            raise RigError(f"--workers {self.workers} must be at least 1", "pass --workers 1 or more")
        if self.batch < 1:
            raise RigError(f"--batch {self.batch} must be at least 1", "pass --batch 1 or more")
        self.episodes_per_shard = self.batch
        if not 1 <= self.horizon <= 8:
            raise RigError(f"--horizon {self.horizon} is outside 1..8", "pass e.g. --horizon 3")
        if not 0.0 <= self.confirm_share <= 1.0:
            raise RigError(f"--confirm-share {self.confirm_share} is outside [0, 1]", "pass e.g. 0.5")
        if not 0.0 <= self.confirm_floor <= 1.0:
            raise RigError(f"--confirm-floor {self.confirm_floor} is outside [0, 1]", "pass e.g. 0.1")
        if self.follow not in FOLLOW:
            raise RigError(f"unknown --follow '{self.follow}'", f"choose one of: {', '.join(FOLLOW)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise RigError(f"--max-steps {self.max_steps} must be at least 1", "pass a positive step limit")
        if not self.checkpoint:
            raise RigError("--stage review needs --checkpoint", "pass the run directory of rig train --stage basic")
        if self.seed < 0:
            raise RigError(f"--seed {self.seed} is negative", "pass a seed of 0 or more")
        if self.candidates is not None and not 1 <= self.candidates <= 16:
            raise RigError(f"--candidates {self.candidates} is outside 1..16",
                           "pass the number of the policy's most probable actions to judge, e.g. --candidates 4")
        return self


@dataclass
class EvalConfig(ConfigBase):
    """`rig evaluate`'s settings for every player it plays (the players themselves are its arguments): built
    once by the CLI, a pipeline's evaluate stage or a benchmark, and recorded whole in eval.json."""

    suite: str = "tasks"  # tasks or all, open, a group or a task id
    episodes: int = 100  # per task, on world seeds seed_start, seed_start + 1, ...
    seed_start: int = EVAL_SEED
    test_time_steps: str = "0"  # comma-separated lookahead steps to sweep
    max_steps: int | None = None  # per episode (None: each task's budget)
    batch: int = 8  # environments per batched forward pass
    workers: int = 1
    imagination_steps: int = 3  # horizon of the imagination rollouts
    imagination_episodes: int = 10  # played episodes whose states start imagination rollouts
    gifs: int = 2
    temperature: float | None = None  # None: the model's own generation settings
    seed: int = 0  # sampling seed
    review_threshold: float | None = None
    history: int | None = None  # past steps kept in the context (None: as many as fit)
    full_prefill: bool = False  # re-encode every step instead of keeping the KV cache across steps
    draft: bool = True  # imagined frames decoded with the last frame as the draft (False: token by token)
    compare_expert: bool = True  # agreement with the expert on the states the policy visits
    candidates: int | None = None  # the policy's top-K actions, imagined N steps and scored by its review (None: off)
    candidate_margin: float = 0.0  # another candidate replaces the top one when its P(worse) is this much lower
    backend: str = "process"
    address: str | None = None
    device: str = "auto"
    command: str = ""  # the command line that asked for it (recorded, never acted on)

    def validate(self) -> "EvalConfig":
        check_backend(self.backend, self.address)
        for name in ("episodes", "workers", "batch", "imagination_steps"):
            if getattr(self, name) < 1:
                flag = name.replace("_", "-")
                raise RigError(f"--{flag} must be at least 1 (got {getattr(self, name)})", f"pass --{flag} 1 or more")
        for name in ("imagination_episodes", "gifs", "seed"):
            if getattr(self, name) < 0:
                flag = name.replace("_", "-")
                raise RigError(f"--{flag} {getattr(self, name)} is negative", f"pass --{flag} 0 or more")
        if self.seed_start < 0:
            raise RigError(f"--seed-start {self.seed_start} is negative",
                           f"pass a world seed of 0 or more (default {EVAL_SEED})")
        if self.max_steps is not None and self.max_steps < 1:
            raise RigError(f"--max-steps {self.max_steps} must be at least 1", "pass a positive step limit")
        if self.temperature is not None and not self.temperature >= 0:
            raise RigError(f"--temperature {self.temperature} is negative", "pass 0 (greedy) or more (sampling)")
        if self.history is not None and self.history < 0:
            raise RigError(f"--history {self.history} is negative", "pass 0 (the current frame only) or more")
        if self.candidates is not None and self.candidates < 1:
            raise RigError(f"--candidates {self.candidates} must be at least 1",
                           "pass --candidates 1 (the policy's top action) or more (scored by the review)")
        if not 0.0 <= self.candidate_margin < 1.0:
            raise RigError(f"--candidate-margin {self.candidate_margin} is not a probability below 1",
                           "pass a number from 0 (the candidate least likely worse) to below 1, e.g. 0.1")
        if self.candidates is not None and self.review_threshold is not None:
            raise RigError("--review-threshold decides a review that writes its verdict; --candidates reads P(worse) "
                           "of each candidate and needs none", "drop --review-threshold, or --candidates")
        return self
