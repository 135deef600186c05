import pytest

from rig_core.envs import make_env
from rig_core.errors import RigError
from rig_core.tasks import load_suite


def test_suite_covers_every_achievement_once():
    suite = load_suite("crafter")
    env = make_env("crafter")
    targets = [t.target_achievement for t in suite.resolve("all")]
    assert sorted(targets) == sorted(env.achievement_names)
    assert {g: len(ids) for g, ids in suite.groups.items()} == {"basic": 5, "tools": 4, "advanced": 8, "survival": 5}
    assert "open" in suite.tasks and suite.get("open").budget == 10000


def test_every_task_has_phrasings_and_a_budget():
    for task in load_suite().tasks.values():
        assert len(task.instructions) >= 3 and task.budget > 0


def test_predicates():
    suite = load_suite()
    wood = suite.get("collect_wood")
    assert wood.is_success({"collect_wood"}, {})
    assert not wood.is_success({"collect_sapling"}, {"wood": 3})
    assert not suite.get("open").is_success(set(make_env().achievement_names), {})


def test_item_predicate():
    from rig_core.tasks import Task

    t = Task(id="wood3", group="x", instructions=("a",), budget=10, success={"item": "wood", "count": 3})
    assert t.is_success(set(), {"wood": 3}) and not t.is_success(set(), {"wood": 2})


def test_instruction_is_reproducible_and_varied():
    task = load_suite().get("eat_cow")
    assert task.instruction(5) == task.instruction(5)
    assert len({task.instruction(s) for s in range(30)}) > 1


def test_resolve_selectors():
    suite = load_suite()
    assert [t.id for t in suite.resolve("tools")] == list(suite.groups["tools"])
    assert len(suite.resolve("all")) == 22
    assert suite.resolve("tasks") == suite.resolve("all")  # each command's word for every task works in both
    from rig_core.evaluate.runner import resolve_suite

    assert resolve_suite("all") == resolve_suite("tasks") == suite.resolve("all")
    assert [t.id for t in suite.resolve("open")] == ["open"]
    with pytest.raises(RigError, match="unknown task 'nope'"):
        suite.resolve("nope")
