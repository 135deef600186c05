"""rig: build, train and run RIG policies (reasoning + imagination in one transformer)."""

__version__ = "0.1.0"
