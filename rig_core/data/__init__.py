"""Datasets: HDF5 schema, atomic shard writer, reader, summaries."""
