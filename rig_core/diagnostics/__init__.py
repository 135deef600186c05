"""Experiment diagnostics that explain a player's figures (does it read its frame, does its review know a
worse proposal): used by the benchmark scripts, never by a command."""
