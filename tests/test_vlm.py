"""The VLM annotator against a local fake OpenAI-compatible server (never the internet)."""

from __future__ import annotations

import base64
import io
import sys

import numpy as np
import pytest

pytest.importorskip("openai")

from rig_core.annotate.consistency import check  # noqa: E402
from rig_core.annotate.context import StepContext  # noqa: E402
from rig_core.annotate.vlm import VLMAnnotator, accepted_commitments, state_summary  # noqa: E402
from rig_core.errors import RigError  # noqa: E402
from vlm_server import FakeVLM, closed_port_url, prompt_text  # noqa: E402

KEY = "sk-test-7f3a9c-secret"
GOOD = "A tree is right in front of me. I need wood to make a table. So I chop the tree."
RULE = "I am facing a tree. So I collect wood from the tree."


def make_ctx(step=0, action="do", seed=0, **cells) -> StepContext:
    view = [["grass"] * 9 for _ in range(7)]
    view[3][4] = "player"
    view[3][3] = "tree"  # in front: the player faces left
    view[1][6] = "water"
    for pos, name in cells.items():  # e.g. r5c2="cow"
        r, c = int(pos[1]), int(pos[3])
        view[r][c] = name
    frame = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return StepContext(step=step, task_id="place_table", instruction="place a table", view=view,
                       inventory={"wood": 1}, vitals={"health": 9, "food": 8, "drink": 6, "energy": 9},
                       action=action, noise=False, facing=(-1, 0), intent={"subgoal": "collect wood"}, frame=frame)


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("RIG_VLM_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def annotator(url, tmp_path, **kw) -> VLMAnnotator:
    kw.setdefault("max_retries", 2)
    kw.setdefault("timeout", 5.0)
    return VLMAnnotator("fake-vlm", url, cache_dir=tmp_path / "cache", **kw)


def cache_bytes(tmp_path) -> list[bytes]:
    return [p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_consistent_answer_used_then_served_from_cache(key_env, tmp_path):
    from PIL import Image

    ctxs = [make_ctx(0, seed=0), make_ctx(1, seed=1)]
    with FakeVLM(lambda req: GOOD, key=KEY) as srv:
        vlm = annotator(srv.url, tmp_path)
        vlm.check_ready()
        assert vlm.annotate(ctxs, [RULE, RULE]) == [(GOOD, "vlm"), (GOOD, "vlm")]
        assert (vlm.stats.requests, vlm.stats.cache_hits, vlm.stats.fallbacks, vlm.stats.errors) == (2, 0, 0, 0)
        req = srv.requests[0]
        assert req["model"] == "fake-vlm" and req["temperature"] == 0
        text = prompt_text(req)
        assert "Action I take now: interact with the cell in front (tree)" in text
        assert "'So I chop the tree.'" in text and "Inventory: wood 1." in text and "place a table" in text
        url = next(p for p in req["messages"][-1]["content"] if p["type"] == "image_url")["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
        assert img.shape == (256, 256, 3)  # 64x64 upscaled x4, nearest (requests may arrive in any order)
        assert any((img[::4, ::4] == c.frame).all() and (img[3::4, 3::4] == c.frame).all() for c in ctxs)

        again = annotator(srv.url, tmp_path)  # a rerun: same prompts and frames, fresh process state
        assert again.annotate(ctxs, [RULE, RULE]) == [(GOOD, "cache"), (GOOD, "cache")]
        assert len(srv.requests) == 2 and again.stats.requests == 0 and again.stats.cache_hits == 2
    files = cache_bytes(tmp_path)
    assert len(files) == 2 and all(KEY.encode() not in b for b in files)


@pytest.mark.parametrize("answer,counter", [
    ("A tree is right in front of me. So I move left.", "wrong_action"),  # commits to another action
    ("A zombie is right behind me. So I chop the tree.", "ungrounded"),  # no zombie in view
])
def test_inconsistent_answer_falls_back(key_env, tmp_path, answer, counter):
    with FakeVLM(lambda req: answer, key=KEY) as srv:
        vlm = annotator(srv.url, tmp_path)
        assert vlm.annotate([make_ctx()], [RULE]) == [(RULE, "fallback")]
        assert vlm.stats.fallbacks == 1 and getattr(vlm.stats, counter) == 1 and vlm.stats.errors == 0
        # the raw answer is cached: a rerun asks nothing and falls back again after re-checking
        again = annotator(srv.url, tmp_path)
        assert again.annotate([make_ctx()], [RULE]) == [(RULE, "fallback")]
        assert len(srv.requests) == 1 and again.stats.cache_hits == 1 and again.stats.fallbacks == 1


def test_server_error_is_retried_then_succeeds(key_env, tmp_path):
    with FakeVLM(lambda req: GOOD, key=KEY) as srv:
        srv.script = [500]
        vlm = annotator(srv.url, tmp_path)
        assert vlm.annotate([make_ctx()], [RULE]) == [(GOOD, "vlm")]
        assert len(srv.requests) == 2 and vlm.stats.requests == 1 and vlm.stats.errors == 0


def test_persistent_failure_falls_back_and_counts_an_error(key_env, tmp_path):
    with FakeVLM(lambda req: 500 if "interact" in prompt_text(req) else "I see water. So I move up.",
                 key=KEY) as srv:
        vlm = annotator(srv.url, tmp_path, max_retries=1)
        out = vlm.annotate([make_ctx(0), make_ctx(1, action="move_up")], [RULE, "So I move up."])
        assert out == [(RULE, "fallback"), ("I see water. So I move up.", "vlm")]
        assert vlm.stats.errors == 1 and vlm.stats.fallbacks == 0
        assert len(cache_bytes(tmp_path)) == 1  # failures are not cached


def test_missing_key_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("MY_VLM_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RigError, match="MY_VLM_KEY") as exc:
        VLMAnnotator("fake-vlm", "http://127.0.0.1:1/v1", api_key_env="MY_VLM_KEY", cache_dir=tmp_path / "c")
    assert exc.value.exit_code == 2 and "export MY_VLM_KEY=" in str(exc.value)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # the fallback variable
    VLMAnnotator("fake-vlm", "http://127.0.0.1:1/v1", api_key_env="MY_VLM_KEY", cache_dir=tmp_path / "c")


def test_wrong_key_names_the_variable_never_the_key(key_env, tmp_path):
    with FakeVLM(key="sk-the-right-one") as srv:
        vlm = annotator(srv.url, tmp_path)
        with pytest.raises(RigError, match="RIG_VLM_API_KEY") as exc:
            vlm.check_ready()
        assert KEY not in str(exc.value) and "rejected the API key" in str(exc.value)
        with pytest.raises(RigError, match="RIG_VLM_API_KEY") as exc:
            vlm.annotate([make_ctx()], [RULE])
        assert KEY not in str(exc.value) and KEY not in repr(vlm)
    assert all(KEY.encode() not in b for b in cache_bytes(tmp_path))


def test_unknown_model_is_reported(key_env, tmp_path):
    with FakeVLM(models=("other-model",), key=KEY) as srv:
        with pytest.raises(RigError, match="other-model"):
            annotator(srv.url, tmp_path).check_ready()


def test_unreachable_endpoint_names_the_url(key_env, tmp_path):
    url = closed_port_url()
    vlm = annotator(url, tmp_path, max_retries=0)
    with pytest.raises(RigError, match="cannot reach the annotator endpoint") as exc:
        vlm.check_ready()
    assert url in str(exc.value) and "--base-url" in str(exc.value)
    with pytest.raises(RigError, match="cannot reach") as exc:
        vlm.annotate([make_ctx(0), make_ctx(1)], [RULE, RULE])
    assert url in str(exc.value) and vlm.stats.errors == 2


def test_missing_openai_package(monkeypatch, key_env, tmp_path):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(RigError, match=r"rig\[vlm\]"):
        annotator("http://127.0.0.1:1/v1", tmp_path)


@pytest.mark.parametrize("action", ["noop", "move_left", "move_right", "move_up", "move_down", "do", "sleep",
                                    "place_stone", "place_table", "place_furnace", "place_plant",
                                    "make_wood_pickaxe", "make_stone_pickaxe", "make_iron_pickaxe",
                                    "make_wood_sword", "make_stone_sword", "make_iron_sword"])
def test_offered_commitments_pass_the_check(action):
    ctx = make_ctx(action=action)
    offered = accepted_commitments(ctx)
    assert offered and all(check(s, ctx).action_ok for s in offered)
    assert offered[0] in state_summary(ctx)


def test_summary_names_only_what_is_in_view():
    text = state_summary(make_ctx(r5c2="cow"))
    assert "In view: cow (nearest 2 to the left and 2 down); tree (nearest 1 to the left); water" in text
    assert "zombie" not in text and "Facing: left; the cell in front of me is tree." in text
