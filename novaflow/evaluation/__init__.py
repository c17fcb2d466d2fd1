"""Evaluation results: Nova's gen_qa metrics reproduced exactly, output parsing, classification, stage comparison.

The metric engine is the contract with AWS's numbers (lighteval 0.10 semantics, quirks included), so everything
that reports a gen_qa number - the local emulator, the parser's recomputation check, the CLI - goes through
:mod:`novaflow.evaluation.metrics`.
"""
