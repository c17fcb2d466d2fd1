"""Deployment of trained Nova checkpoints: SageMaker endpoints and Bedrock, invocation, the gate, teardown.

One module per concern: ``tiers`` (what the container supports), ``endpoint_spec`` (exact requests, offline),
``endpoint`` / ``bedrock`` (create and wait), ``invoke`` + ``stream`` (ask the model, time the first token),
``gate`` (promote or not), ``smoke`` (does it answer), ``teardown`` (remove only what novaflow made).

Import from the modules (``from novaflow.deploy.gate import decide_gate``): this package re-exports nothing, so
importing one submodule (the CLI's help does) loads only that one.
"""
