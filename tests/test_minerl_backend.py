"""The MineRL backend against a stand-in for MineRL 1.0 (tests/minerl_standin.py): the real game is not installed
here, so these tests check the adapter's side of the contract, not Minecraft."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest

import minerl_standin
from cli_helpers import one_line_error, rig
from minerl_standin import StandInHumanSurvival, check_action
from rig_core.envs import Env, make_env
from rig_core.envs.minerl import FACTORY_VAR, MineRLEnv, load_spec, minerl_counts, resize_frame
from rig_core.errors import RigError
from rig_core.tasks import load_suite

STANDIN = "minerl_standin:make_env"


def _env(length=None, **standin) -> tuple[MineRLEnv, StandInHumanSurvival]:
    made: list[StandInHumanSurvival] = []

    def factory(gym_id):
        made.append(StandInHumanSurvival(gym_id, **standin))
        return made[-1]

    env = make_env("minerl", length=length, factory=factory)
    env.reset(0)
    return env, made[0]


def _act(env, name):
    return env.step(env.action_names.index(name))


def _face_tree(env, game):
    """Turn with the 10-degree camera actions until the crosshair is on the stand-in's tree."""
    for _ in range(40):
        if game.target() and game.target().endswith("_log"):
            return
        _act(env, "look_right_10")
    raise AssertionError("never faced the tree")


def test_the_env_has_the_protocol_and_the_models_frames():
    env, _ = _env()
    assert isinstance(env, Env) and env.env_id == "minerl"
    assert env.frame_shape == make_env("crafter").frame_shape == (64, 64, 3)
    obs = env.reset(1)
    assert obs.frame.shape == env.frame_shape and obs.frame.dtype == np.uint8
    obs, reward, terminated, truncated, info = _act(env, "forward")
    assert obs.frame.shape == (64, 64, 3) and obs.frame.dtype == np.uint8
    assert isinstance(reward, float) and (terminated, truncated) == (False, False)
    assert info == {"achievements": []}
    assert set(obs.inventory) == set(env.item_names) and all(isinstance(v, int) for v in obs.inventory.values())
    assert obs.privileged["vitals"] == {"life": 20, "food": 20}
    assert len(obs.privileged["location"]) == 5
    assert obs.state["pov"].shape == (360, 640, 3)  # the full-resolution MineRL observation, never stored


def test_frames_are_resized_with_pil_keeping_the_picture():
    pov = np.zeros((360, 640, 3), np.uint8)
    pov[:180] = (200, 10, 10)  # red sky over blue ground
    pov[180:] = (10, 10, 200)
    small = resize_frame(pov, (64, 64))
    assert small.shape == (64, 64, 3) and small.dtype == np.uint8
    assert tuple(small[5, 30]) == (200, 10, 10) and tuple(small[60, 30]) == (10, 10, 200)
    with pytest.raises(RuntimeError, match="HxWx3"):
        resize_frame(np.zeros((360, 640), np.uint8), (64, 64))


def test_every_discrete_action_is_a_valid_minerl_action():
    env, game = _env()
    spec = load_spec()
    assert env.action_names == list(spec["actions"]) and len(set(env.action_names)) == len(env.action_names)
    for i, name in enumerate(env.action_names):
        _, _, terminated, truncated, _ = env.step(i)
        sent = game.actions[-1]
        check_action(sent)  # exact keys, 0/1 ints, float32 camera of shape (2,)
        pressed = sorted(k for k in minerl_standin.KEYS if sent[k])
        assert pressed == sorted(spec["actions"][name][0]), name
        assert tuple(sent["camera"]) == pytest.approx(spec["actions"][name][1], abs=1e-6)
    assert not any(a["ESC"] or a["swapHands"] or a["pickItem"] for a in game.actions)
    pressed = {k for a in game.actions for k in minerl_standin.KEYS if a[k]}
    assert {"forward", "back", "left", "right", "jump", "sneak", "sprint", "attack", "use", "drop",
            "inventory"} | {f"hotbar.{i}" for i in range(1, 10)} <= pressed
    with pytest.raises(ValueError):
        env.step(len(env.action_names))


def test_the_action_dicts_sent_are_fresh_copies():
    env, game = _env()
    _act(env, "look_left_10")
    game.actions[-1]["camera"][:] = 99  # a simulator that mutates its input must not change the table
    _act(env, "look_left_10")
    assert tuple(game.actions[-1]["camera"]) == (0.0, -10.0)


def test_camera_moves_lie_on_vpts_mu_law_bins():
    """11 bins per axis, mu-law (mu=10) over +-10 degrees, as VPT (Baker et al. 2022) quantises the camera."""
    x = (np.arange(11) * 2 - 10) / 10
    grid = np.sign(x) * ((1 + 10) ** np.abs(x) - 1) / 10 * 10
    moves = {n: cam for n, (_, cam) in load_spec()["actions"].items() if any(cam)}
    assert {"look_up_10", "look_down_10", "look_left_10", "look_right_10"} <= set(moves)
    for name, (pitch, yaw) in moves.items():
        assert (pitch == 0) != (yaw == 0), name  # one axis per move
        assert np.min(np.abs(grid - pitch)) < 1e-3 and np.min(np.abs(grid - yaw)) < 1e-3, name
        direction = name.split("_")[1]
        assert {"up": pitch < 0, "down": pitch > 0, "left": yaw < 0, "right": yaw > 0}[direction], name
    env, game = _env()
    before = game.yaw
    _act(env, "look_right_10")
    assert (game.yaw - before) % 360 == pytest.approx(10.0)
    _act(env, "look_down_3")
    assert game.pitch == pytest.approx(3.215)


def test_chopping_a_tree_succeeds_from_the_inventory():
    env, game = _env(ticks_per_log=3)
    task = load_suite("minerl").get("chop_tree")
    _face_tree(env, game)
    unlocked: set[str] = set()
    for t in range(3):
        obs, _, _, _, info = _act(env, "attack")
        unlocked |= set(info["achievements"])
        assert task.is_success(unlocked, obs.inventory) == (t == 2)
    assert info["achievements"] == ["collect_log"] and obs.privileged["achievements"] == ["collect_log"]
    assert obs.inventory["log"] == 1 and env.unlocked == {"collect_log"}
    for _ in range(3):
        obs, _, _, _, info = _act(env, "attack")
    assert obs.inventory["log"] == 2 and info["achievements"] == []  # unlocked once per episode


def test_inventory_sums_wood_kinds_and_reads_slot_inventories():
    assert minerl_counts({"oak_log": np.array(2, np.int32), "birch_log": np.array(1, np.int32)}) == {
        "oak_log": 2, "birch_log": 1}
    slots = {0: {"type": "minecraft:oak_log", "quantity": 3}, 1: {"type": "oak_log", "quantity": 2},
             2: {"type": "air", "quantity": 0}}
    assert minerl_counts(slots)["oak_log"] == 5
    env, _ = _env()
    inv = env._inventory({"inventory": {"oak_log": 2, "dark_oak_log": 1, "dirt": 4}}, {})
    assert inv["log"] == 3 and inv["dirt"] == 4 and inv["planks"] == 0


class GymnasiumStyle:
    """A MineStudio-like simulator around the stand-in: reset(seed=) -> (obs, info), step -> 5-tuple, the frame
    as obs["image"], the inventory as slots in info, a gymnasium-style Dict action space, no seed()."""

    def __init__(self, gym_id):
        self.game = StandInHumanSurvival(gym_id, ticks_per_log=1)
        self.action_space = type("DictSpace", (), {"spaces": dict.fromkeys((*minerl_standin.KEYS, "camera"))})()

    def reset(self, seed=None):
        self.game.seed(seed)
        return self._split(self.game.reset())

    def step(self, action):
        obs, reward, done, _ = self.game.step(action)
        return (*self._split(obs)[:1], reward, done, False, self._split(obs)[1])

    def _split(self, obs):
        slots = {i: {"type": f"minecraft:{k}", "quantity": int(v)} for i, (k, v) in enumerate(obs["inventory"].items())
                 if v}
        return {"image": obs["pov"]}, {"inventory": slots}


def test_a_gymnasium_style_simulator_plays_too():
    made = []
    env = make_env("minerl", factory=lambda gym_id: made.append(GymnasiumStyle(gym_id)) or made[-1])
    obs = env.reset(4)
    assert obs.frame.shape == (64, 64, 3) and obs.inventory["log"] == 0 and made[0].game.seeds == [4]
    _face_tree(env, made[0].game)
    obs, _, terminated, truncated, info = _act(env, "attack")
    assert obs.inventory["log"] == 1 and info["achievements"] == ["collect_log"]
    assert (terminated, truncated) == (False, False) and "vitals" not in obs.privileged


def test_achievements_and_tasks_come_from_the_same_data():
    env, _ = _env()
    suite = load_suite("minerl")
    assert suite.env == "minerl" and set(suite.groups) == {"basic", "crafting", "advanced"}
    assert env.achievement_names == list(load_spec()["achievements"]) and len(env.achievement_names) <= 32
    for task in suite.resolve("all"):
        assert task.target_achievement in env.achievement_names, task.id
    for item, _ in load_spec()["achievements"].values():
        assert item in env.item_names
    assert suite.get("craft_crafting_table").target_achievement == "craft_crafting_table"


def test_reset_seeds_the_world_before_every_reset():
    env, game = _env()
    a = env.reset(5).frame
    _act(env, "look_left_10")
    b = env.reset(5).frame
    c = env.reset(6).frame
    assert game.seeds == [0, 5, 5, 6]  # the first reset is _env's
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_episodes_truncate_at_the_length_limit_and_end_on_death():
    env, _ = _env(length=3)
    env.reset(0)
    assert [_act(env, "noop")[2:4] for _ in range(3)] == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError, match="reset"):
        _act(env, "noop")
    env, _ = _env(length=10, die_after=2)
    assert [_act(env, "noop")[2:4] for _ in range(2)] == [(False, False), (True, False)]


def test_the_game_starts_at_the_first_reset_and_closes():
    made = []
    env = make_env("minerl", factory=lambda gym_id: made.append(StandInHumanSurvival(gym_id)) or made[-1])
    assert made == [] and env.action_names  # metadata without starting Minecraft
    env.reset(0)
    env.reset(1)
    assert len(made) == 1
    env.close()
    assert made[0].closed


def test_the_factory_comes_from_the_environment_variable(monkeypatch):
    monkeypatch.setenv(FACTORY_VAR, STANDIN)
    env = make_env("minerl")
    assert env.version == STANDIN
    assert env.reset(0).frame.shape == (64, 64, 3)
    for bad, match in [("nocolon", "module:function"), ("no_such_module_xyz:f", "cannot load"),
                       ("minerl_standin:nothing", "cannot load"), ("minerl_standin:GYM_ID", "not callable")]:
        monkeypatch.setenv(FACTORY_VAR, bad)
        with pytest.raises(RigError, match=match):
            make_env("minerl")


def test_a_game_that_fails_to_start_is_a_clear_error():
    def broken(gym_id):
        raise OSError("java: not found")

    env = make_env("minerl", factory=broken)
    with pytest.raises(RigError, match="Java 8") as err:
        env.reset(0)
    assert "java: not found" in err.value.line() and "\n" not in err.value.line()


def test_an_env_without_minerl_1_0_keys_is_refused():
    class OldSpace(minerl_standin.ActionSpace):
        def noop(self):
            act = super().noop()
            del act["hotbar.9"]
            return act

    def old(gym_id):
        game = StandInHumanSurvival(gym_id)
        game.action_space = OldSpace()
        return game

    with pytest.raises(RigError, match="hotbar.9"):
        make_env("minerl", factory=old).reset(0)


def test_without_minerl_the_error_says_what_to_install(monkeypatch):
    monkeypatch.delenv(FACTORY_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "minerl", None)  # import minerl -> ImportError, even where installed
    with pytest.raises(RigError) as err:
        make_env("minerl")
    line = err.value.line()
    assert "pip install git+https://github.com/minerllabs/minerl@v1.0.2" in line and "Java 8" in line and "minerl.readthedocs.io" in line
    r = rig("collect", "--out", "unused-out", "--env", "minerl", "--agent", "random", "--episodes", "1")
    line = one_line_error(r)
    assert "pip install git+https://github.com/minerllabs/minerl@v1.0.2" in line and "Java 8" in line


def test_the_scripted_expert_refuses_minerl(monkeypatch, tmp_path):
    monkeypatch.setenv(FACTORY_VAR, STANDIN)
    r = rig("collect", "--out", tmp_path / "d", "--env", "minerl", "--agent", "expert", "--episodes", "1")
    assert "Crafter only" in one_line_error(r)
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_rig_collect_with_the_random_agent_end_to_end(monkeypatch, tmp_path):
    monkeypatch.setenv(FACTORY_VAR, "minerl_standin:make_quick_env")
    out = tmp_path / "mc"
    r = rig("collect", "--out", out, "--env", "minerl", "--agent", "random", "--task", "basic",
            "--episodes", "3", "--seed", "2", "--max-steps", "40", "--episodes-per-shard", "2", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["episodes"] == 3 and summary["env"]["id"] == "minerl"
    assert summary["env"]["version"] == "minerl_standin:make_quick_env"
    manifest = json.loads((out / "dataset.json").read_text())
    env = make_env("minerl", factory=minerl_standin.make_env)
    assert manifest["action_names"] == env.action_names and manifest["item_names"] == env.item_names
    assert manifest["achievement_names"] == env.achievement_names and manifest["frame_shape"] == [64, 64, 3]
    shards = sorted(out.glob("shard-*.h5"))
    assert len(shards) == 2
    with h5py.File(shards[0]) as f:
        ep = f["episodes"][sorted(f["episodes"])[0]]
        n = int(ep.attrs["length"])
        assert ep["frames"].shape == (n + 1, 64, 64, 3) and ep["frames"].dtype == np.uint8
        assert ep["inventory"].shape == (n + 1, len(env.item_names))
        assert ep["actions"][:].max() < len(env.action_names)
        assert ep["privileged/vitals"].shape == (n + 1, 2) and ep["privileged/location"].shape == (n + 1, 5)
        assert ep.attrs["task"] in ("chop_tree", "collect_dirt", "collect_sapling")
