"""The emulator of the Nova service side: what the Nova containers do with a job the embedded AWS has accepted.

It holds the fulfilment dispatcher and one module per job kind (``emulate_sft``, ``_dpo``, ``_cpt``, ``_rft``,
``_eval``) over one shared :class:`~novaflow.local.emulator.job_context.JobContext`, the job state and job log, the
job's outputs in AWS's layout, serverless jobs and their model registration, serving (answers for endpoints and
Bedrock), fault injection and the scenario helpers tests and benchmarks submit jobs with. It reaches the embedded
AWS only through boto3 clients (:mod:`~novaflow.local.emulator.aws_io`), as the real containers do.

Who may import it: :mod:`novaflow.local.aws` (which hosts it), tests and benchmarks. It may import
:mod:`novaflow.local.models` and the domain, never :mod:`novaflow.local.aws` (tests/unit/test_layers.py).
"""
