"""Prefect flows composing novaflow tasks: baseline, SFT, RFT, end-to-end, deploy, cleanup."""
