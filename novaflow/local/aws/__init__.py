"""The embedded AWS: moto's server with our patches, so boto3 clients get AWS's answers in AWS's formats and words.

It holds the server wrapper (:mod:`~novaflow.local.aws.server`), the moto pin and the guards on moto internals our
patches rely on, the patches per service (``moto_*``: SageMaker training jobs and endpoints, the public hub, the model
registry, SageMaker and Bedrock runtimes, Bedrock), Lambda execution with its bootstrap program, the emulator's
control API (``/_novaflow/...`` routes and :class:`~novaflow.local.aws.control.EmulatorControl`).

Who may import it: ``novaflow.local`` (which re-exports :class:`~novaflow.local.aws.server.LocalAws`), the CLI, tests
and benchmarks. It hosts the emulator, so it may import :mod:`novaflow.local.emulator` and :mod:`novaflow.local.models`;
neither of them imports this room (tests/unit/test_layers.py).
"""
