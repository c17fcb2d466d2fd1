"""Thin Prefect tasks over the novaflow domain: retries, caching, logging, artifacts."""
