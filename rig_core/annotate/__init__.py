"""Annotators: reasoning text (rules or a VLM) and review traces."""
