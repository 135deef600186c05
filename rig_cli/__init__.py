"""The rig command line: thin Typer commands over rig_core."""
