"""Collection: play agents in environments and write datasets."""
