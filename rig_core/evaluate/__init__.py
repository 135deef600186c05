"""Evaluation: metrics, task suites, reports."""
