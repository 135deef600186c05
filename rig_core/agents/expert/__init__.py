"""Building blocks of the scripted Crafter expert (assembled in rig_core.agents.crafter_expert)."""
