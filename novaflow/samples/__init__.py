"""Committed sample data shipped with the package (see :mod:`novaflow.data.samples` for how it is made)."""
