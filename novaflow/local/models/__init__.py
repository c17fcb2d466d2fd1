"""The stand-in models: small, real models that train and answer on a CPU in milliseconds, so every number a local
run shows comes from computation on the data.

It holds the label classifier and the corpus language model (:mod:`~novaflow.local.models.classifier`), the
generative model (:mod:`~novaflow.local.models.generative`), the LLM judge (:mod:`~novaflow.local.models.judge`) and
the public benchmarks' stand-ins (:mod:`~novaflow.local.models.benchmarks`).

Who may import it: the emulator, the embedded AWS, tests and benchmarks. It imports no other room of
:mod:`novaflow.local` and nothing of moto (tests/unit/test_layers.py).
"""
