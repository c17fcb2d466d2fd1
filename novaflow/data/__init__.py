"""Data preparation: load, map, transform to every Nova format, validate, quarantine, split, profile, upload.

Modules: ``source`` (what to read, column map), ``loaders`` (chunked CSV/JSONL/JSON/Parquet), ``columnar``
(vectorized transforms for mapped columns), ``converse``/``openai``/``records`` (rows that already carry
messages), ``prepare`` (the one call), ``splits``, ``report``, ``io`` (S3), ``samples`` (synthetic data).
"""
