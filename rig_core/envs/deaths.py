"""How a Crafter game ended: what took the player's last health, read off the world right after the step.

Crafter hurts the player in four ways (crafter/objects.py): walking into lava (health to 0 at once), a zombie
next to it (2, or 7 asleep, then a cooldown of 5 steps), a skeleton's arrow (2), and the slow loss of 1 health
while food, drink or energy is at 0. The cause of death is the one that took the last health:

- ``lava``     the player stands on lava;
- ``zombie``   a zombie next to the player attacked this step (its cooldown was just set);
- ``starved`` / ``thirst`` / ``tiredness``  the player had 1 health left and food / drink / energy at 0 (the first
  of those at 0, in that order): the slow loss took it;
- ``skeleton`` otherwise: only an arrow takes 2 health besides a zombie (and 1 health left with every need met
  leaves an arrow as the only cause).

A game that reaches its step limit ended by ``time``.
"""

from __future__ import annotations

from typing import Any

CAUSES = ("starved", "thirst", "zombie", "skeleton", "lava", "tiredness", "time")
NEEDS = (("food", "starved"), ("drink", "thirst"), ("energy", "tiredness"))
ZOMBIE_COOLDOWN = 5  # steps a zombie waits after an attack (crafter.objects.Zombie)


def death_cause(env: Any, health_before: int) -> str:
    """The cause of death of the player of ``env`` (a crafter.Env) after a step it began with ``health_before``."""
    player = env._player
    world = player.world
    if world[player.pos][0] == "lava":
        return "lava"
    for obj in world.objects:
        if type(obj).__name__ == "Zombie" and player.distance(obj) <= 1 and obj.cooldown == ZOMBIE_COOLDOWN:
            return "zombie"
    if health_before <= 1:
        for need, cause in NEEDS:
            if player.inventory[need] <= 0 and not (need == "energy" and player.sleeping):
                return cause
    return "skeleton"
