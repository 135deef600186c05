"""Tokenizers: image codes, actions, text, and the step sequence."""
