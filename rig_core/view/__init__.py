"""`rig view`: datasets, evaluations and pipelines as a static web page."""
