"""Does the policy's thought stay on its task? Which tasks' goals (in the reasoning text's words) a thought names.

The rule annotator writes every task as one goal phrase (``goals`` in ``resources/reasoning.yaml``:
"collect wood", "collect a sapling", ...), so a thought of a policy trained on its text names the goal it
is pursuing. A thought that names another task's goal and not its own has drifted off task (e.g.
RIG-basic on ``collect_wood`` wrote "The goal is to collect a sapling" at about half of its steps once
its episode ran longer than the expert's). Survival detours that share a task's words ("drink water") count
as another goal too.
"""

from __future__ import annotations

from functools import lru_cache

from rig_core.tasks import OPEN


@lru_cache(maxsize=1)
def _goal_phrases() -> tuple[tuple[str, str], ...]:
    from rig_core.annotate.rules import phrasebook

    return tuple((task, phrase.lower()) for task, phrase in phrasebook().goals.items() if task != OPEN)


def goals_named(thought: str, task_id: str) -> tuple[bool, bool]:
    """(names its own task's goal, names another task's goal but not its own); (False, False) for ``open``."""
    if task_id == OPEN or not thought:
        return False, False
    text = thought.lower()
    named = {task for task, phrase in _goal_phrases() if phrase in text}
    own = task_id in named
    return own, bool(named - {task_id}) and not own
