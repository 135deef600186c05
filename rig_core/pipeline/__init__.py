"""`rig pipeline`: the stages a recipe declares, each into its own folder, kept, resumed or redone."""
