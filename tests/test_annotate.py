"""The rule annotator and the consistency check."""

import pytest

from rig_core.annotate.consistency import check, committed_action, ungrounded_mentions
from rig_core.annotate.context import StepContext, episode_contexts
from rig_core.annotate.rules import RuleAnnotator, where
from rig_core.data.reader import Dataset


def grid(**cells):
    """A 7x9 view of grass with the player in the centre; cells given as name=(dx, dy)."""
    view = [["grass"] * 9 for _ in range(7)]
    view[3][4] = "player"
    for name, offsets in cells.items():
        for dx, dy in offsets if isinstance(offsets, list) else [offsets]:
            view[3 + dy][4 + dx] = name
    return view


def ctx(action="move_left", subgoal="collect wood", task="make_wood_pickaxe", facing=(0, 1), inv=None, noise=False,
        vitals=None, **cells):
    return StepContext(step=3, task_id=task, instruction="Make a wood pickaxe.", view=grid(**cells),
                       inventory=inv or {}, vitals=vitals or {"health": 9, "food": 9, "drink": 9, "energy": 9},
                       action=action, noise=noise, facing=facing, intent={"subgoal": subgoal})


def test_where_in_words():
    assert where(-2, 1) == "2 cells to the left and 1 cell down"
    assert where(0, -3) == "3 cells up"


def test_committed_action_reads_the_last_sentence():
    assert committed_action("A tree is up. I need wood. So I move left toward the tree.") == "move_left"
    assert committed_action("So I chop the tree.") == "do"
    assert committed_action("I move left. So I sleep.") == "sleep"
    assert committed_action("So I craft a stone pickaxe.") == "make_stone_pickaxe"
    assert committed_action("Nothing to say.") is None


def test_grounding_flags_unseen_things():
    c = ctx(tree=(-2, 0))
    assert ungrounded_mentions("A tree is 2 cells to the left.", c) == []
    assert ungrounded_mentions("A zombie is 2 cells to the left.", c) == ["zombie"]
    assert ungrounded_mentions("No zombie is in view.", c) == []  # an absence is not a sighting
    assert ungrounded_mentions("I need stone for a furnace.", c) == []  # a need is not a sighting
    assert ungrounded_mentions("I hold stone.", ctx(inv={"stone": 2})) == []
    assert ungrounded_mentions("So I craft a stone pickaxe.", c) == []  # a tool name


def test_rule_text_uses_only_the_view():
    ann = RuleAnnotator(0)
    seen = ann.annotate(ctx(tree=(-2, -1)))
    assert "tree" in seen and "2 cells to the left" in seen and seen.endswith(".")
    hidden = ann.annotate(ctx(action="move_up", subgoal="collect wood: explore for tree"))
    assert "No tree" in hidden or "not see a tree" in hidden or "no tree" in hidden
    for text, c in ((seen, ctx(tree=(-2, -1))), (hidden, ctx(action="move_up", subgoal="collect wood: explore for tree"))):
        assert check(text, c).ok, text


@pytest.mark.parametrize("action,front,expect", [
    ("do", "tree", "tree"), ("do", "water", "drink"), ("do", "zombie", "zombie"), ("sleep", None, "sleep"),
    ("place_table", None, "table"), ("make_wood_pickaxe", None, "wood pickaxe"), ("noop", None, ""),
])
def test_every_action_has_a_consistent_phrase(action, front, expect):
    cells = {front: (0, 1)} if front else {}
    c = ctx(action=action, subgoal="collect wood", **cells)
    text = RuleAnnotator(1).annotate(c)
    assert expect in text.lower()
    assert check(text, c).action_ok, text


def test_noise_is_described_honestly():
    c = ctx(action="place_stone", noise=True, tree=(1, 0))
    text = RuleAnnotator(0).annotate(c)
    assert "random" in text and check(text, c).ok


def test_low_vital_is_the_reason():
    c = ctx(action="move_right", subgoal="drink water", task="open", vitals={"health": 9, "food": 9, "drink": 2, "energy": 9})
    text = RuleAnnotator(0).annotate(c)
    assert "drink" in text and "2" in text and check(text, c).ok


def test_phrasing_is_seeded_and_varied():
    c = ctx(tree=(-2, -1))
    a = RuleAnnotator(0)
    assert a.annotate(c, 5) == a.annotate(c, 5)
    assert len({a.annotate(c, s) for s in range(20)}) > 1


def test_all_texts_of_collected_data_pass(random_dataset):
    """On real (random-agent) data every rule text commits to the action taken and names only visible things."""
    ann = RuleAnnotator(0)
    with Dataset(random_dataset) as ds:
        n = 0
        for ep in ds:
            for c in episode_contexts(ep, ds.action_names, ds.manifest["semantic_names"]):
                text = ann.annotate(c, ep.attrs["seed"])
                res = check(text, c)
                assert res.ok, (text, res)
                n += 1
    assert n > 50


def test_sentences_are_checked_one_by_one():
    """A purpose sentence after a sighting sentence is still a purpose, not a sighting."""
    c = ctx(cow=(1, 1))
    assert ungrounded_mentions("There is a cow 1 cell to the right. To grow a plant and eat it I need food.", c) == []
    assert ungrounded_mentions("There is a cow 1 cell to the right. A plant is here.", c) == ["plant"]
