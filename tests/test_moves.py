"""Reading whether a move went through from a frame's codes (rig_core/review/moves.py)."""

import json
import shutil

import numpy as np

from rig_core.envs.view import content_shifts
from rig_core.review.moves import HELD, MOVED, hold_score, move_outcome, move_reading, shifted_match, view_cells

NAMES = ["noop", "move_left", "move_right", "move_up", "move_down", "do"]


def _shift(grid: np.ndarray, shift: tuple[int, int], fill: np.ndarray) -> np.ndarray:
    """``grid``'s content moved by ``shift`` (rows, columns), new cells taken from ``fill``."""
    out = fill.copy()
    dr, dc = shift
    rows, cols = grid.shape
    for r in range(rows):
        for c in range(cols):
            if 0 <= r + dr < rows and 0 <= c + dc < cols:
                out[r + dr, c + dc] = grid[r, c]
    return out


PATCHES = np.random.default_rng(1).integers(0, 256, (100, 7, 7, 3)).astype(np.uint8)


def _frame(grid: np.ndarray, noise: int = 0) -> np.ndarray:
    """A 64x64 frame whose 7x9 view shows patch ``grid[r, c]`` in each 7-pixel cell (inventory rows black)."""
    frame = np.zeros((64, 64, 3), np.uint8)
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            frame[7 * r:7 * r + 7, 7 * c:7 * c + 7] = PATCHES[grid[r, c]]
    if noise:  # a codebook's near-copy of each texture: a few levels off everywhere
        frame = np.clip(frame.astype(int) + noise, 0, 255).astype(np.uint8)
    return frame


def test_content_shifts_follow_the_env_directions():
    shifts = content_shifts(NAMES)
    assert shifts == {1: (0, 1), 2: (0, -1), 3: (1, 0), 4: (-1, 0)}  # walking left moves the world right
    assert content_shifts(["noop", "do"]) == {}


def test_a_shifted_view_reads_as_moved_and_a_kept_one_as_held():
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 50, (7, 9))
    fill = rng.integers(50, 100, (7, 9))
    before = view_cells(_frame(grid))
    assert before.shape == (7, 9, 7 * 7 * 3)
    for action, shift in content_shifts(NAMES).items():
        moved = view_cells(_frame(_shift(grid, shift, fill), noise=3))  # near-copies of the textures still match
        assert shifted_match(before, moved, shift) == 1.0
        assert move_outcome(before, moved, shift) == MOVED and hold_score(before, moved, shift) < 0
        turned = grid.copy()
        turned[3, 4] = 99  # the player only turned: its own cell changed, nothing else
        turned = view_cells(_frame(turned))
        assert shifted_match(before, turned, (0, 0)) == 1.0
        assert move_outcome(before, turned, shift) == HELD and hold_score(before, turned, shift) > 0
    field = view_cells(_frame(np.full((7, 9), 7)))  # a field of grass looks the same one cell over
    assert move_outcome(field, field, (0, 1)) is None


def test_move_reading_scores_an_imagination_that_knows_and_one_that_does_not():
    knows = move_reading([(HELD, 0.5), (HELD, 0.2), (MOVED, -0.4), (MOVED, -0.1), (None, 0.3)])
    assert (knows["moves"], knows["blocked"], knows["through"], knows["unclear"]) == (5, 2, 2, 1)
    assert knows["imagined_held_when_blocked"] == 1.0 and knows["imagined_held_when_through"] == 0.0
    assert knows["auc"] == 1.0
    blind = move_reading([(HELD, -0.5), (MOVED, -0.5), (HELD, 0.5), (MOVED, 0.5)])
    assert blind["auc"] == 0.5 and blind["imagined_held_when_blocked"] == blind["imagined_held_when_through"]
    assert move_reading([])["auc"] is None


def test_crafter_moves_shift_the_view_as_the_reading_expects():
    from rig_core.envs import make_env

    env = make_env("crafter", length=None)
    obs = env.reset(seed=3)
    names = list(env.action_names)
    shifts = content_shifts(names)
    rng = np.random.default_rng(0)
    seen = {HELD: 0, MOVED: 0}
    for _ in range(300):
        action = int(rng.choice(list(shifts)))
        after, _, term, _, _ = env.step(action)
        if term:
            break
        went = after.privileged["position"] != obs.privileged["position"]
        outcome = move_outcome(view_cells(obs.frame), view_cells(after.frame), shifts[action])
        if outcome is not None:  # whenever the view tells, it tells what happened
            assert outcome == (MOVED if went else HELD)
            seen[outcome] += 1
        obs = after
    assert seen[HELD] > 5 and seen[MOVED] > 5


def test_review_summary_reads_the_imagined_moves(review_dataset, tmp_path):
    import h5py

    from rig_core.review.summary import review_summary

    copy = tmp_path / "rev"
    shutil.copytree(review_dataset, copy)
    states = 0
    for shard in copy.glob("shard-*.h5"):  # the tiny policy proposes no moves: make every proposal move_left
        with h5py.File(shard, "r+") as f:
            for ep in f["episodes"].values():
                if "review" in ep:
                    ep["review/proposed"][:, 0] = 1
                    states += int((ep["review/real_steps"][()] >= 1).sum())
    assert states > 0
    moves = review_summary(copy)["imagined_moves"]
    assert moves["moves"] == states
    assert moves["blocked"] + moves["through"] + moves["unclear"] == states
    assert moves["imagined_held_when_blocked"] is None or 0 <= moves["imagined_held_when_blocked"] <= 1
    manifest = json.loads((copy / "dataset.json").read_text())
    manifest["env"]["id"] = "minerl"  # no Crafter view grid to read moves on
    (copy / "dataset.json").write_text(json.dumps(manifest))
    assert review_summary(copy)["imagined_moves"] is None


def test_dataset_info_shows_the_review_summary_of_review_data(review_dataset, reasoned_dataset):
    from cli_helpers import rig

    r = rig("dataset", "info", review_dataset, "--json")
    assert r.exit_code == 0, r.output
    review = json.loads(r.stdout)["review"]
    assert review["states"] > 0 and "imagined_moves" in review and review["horizon"] == 2
    assert review["dataset"] == str(review_dataset)  # both summaries read one open dataset, named by its path
    assert f"review data: {review_dataset}" in rig("dataset", "info", review_dataset).stdout.replace("\n", "")
    r = rig("dataset", "info", reasoned_dataset, "--json")
    assert r.exit_code == 0 and "review" not in json.loads(r.stdout)


def test_step_outcome_splits_imagination_windows_by_what_the_real_step_did():
    from rig_core.evaluate.imagination import step_outcome

    rng = np.random.default_rng(2)
    grid, fill = rng.integers(0, 50, (7, 9)), rng.integers(50, 100, (7, 9))
    shifts = content_shifts(NAMES)
    before = _frame(grid)
    left = NAMES.index("move_left")
    assert step_outcome(before, _frame(_shift(grid, shifts[left], fill)), left, shifts) == "moved"
    assert step_outcome(before, before, left, shifts) == "blocked"
    field = _frame(np.full((7, 9), 7))
    assert step_outcome(field, field, left, shifts) == "unclear"
    assert step_outcome(before, before, NAMES.index("do"), shifts) == "other"  # not a move: never "blocked"


def test_imagined_held_says_whether_the_imagined_view_kept_its_place():
    from rig_core.evaluate.imagination import imagined_held

    rng = np.random.default_rng(3)
    grid, fill = rng.integers(0, 50, (7, 9)), rng.integers(50, 100, (7, 9))
    shifts = content_shifts(NAMES)
    before, up = _frame(grid), NAMES.index("move_up")
    assert imagined_held(before, before, up, shifts) is True
    assert imagined_held(before, _frame(_shift(grid, shifts[up], fill)), up, shifts) is False
    assert imagined_held(before, before, NAMES.index("do"), shifts) is None  # not a move


class _ReviewEpisode:
    """The arrays of a review episode that ``blocked_states`` reads."""

    def __init__(self, arrays):
        self.arrays = arrays

    def read(self, name):
        return self.arrays[name]


def test_blocked_states_are_the_proposed_moves_whose_real_view_held():
    from rig_core.train.lookahead_data import blocked_states

    rng = np.random.default_rng(4)
    grid, fill = rng.integers(0, 50, (7, 9)), rng.integers(50, 100, (7, 9))
    shifts = content_shifts(NAMES)
    left, do, up = NAMES.index("move_left"), NAMES.index("do"), NAMES.index("move_up")
    now = _frame(grid)
    walked = _frame(_shift(grid, shifts[left], fill))
    # a blocked move, a move that went through, a held view after "do", a fork that never ran
    ep = _ReviewEpisode({"review/proposed": np.array([[left], [left], [do], [up]]),
                         "review/real_steps": np.array([1, 1, 1, 0]), "review/step": np.zeros(4, int),
                         "frames": now[None], "review/real": np.stack([now, walked, now, now])[:, None]})
    assert blocked_states(ep, shifts) == {0}
    assert blocked_states(ep, {}) == set()  # no move actions: nothing is a blocked move
