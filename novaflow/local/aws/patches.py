"""Entry point for the patch layer that closes moto's gaps and runs the Nova emulator.

``install`` is called by :class:`novaflow.local.aws.server.LocalAws` before the server serves its first request
(moto builds its per-service apps and URL maps lazily, so routes added later would be missed); ``reset`` after
``/moto-api/reset``, which is also wrapped so a reset from another process forgets emulator state too. Both are
idempotent. Everything is server side, so Prefect workers in other processes see the same behaviour.
"""

from __future__ import annotations

import threading

from novaflow.local.aws import moto_pin

_INSTALLED = False
_LOCK = threading.Lock()


def install() -> None:
    """Install every patch into this process (idempotent)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        moto_pin.check_version()  # every patch below relies on internals of exactly this moto
        # Imported after the pin check, not at the top: these modules import moto internals that another moto
        # version may lack, and the check's one clear line must come before an ImportError from deep inside.
        from novaflow.local.aws import (
            agent_jobs,
            events,
            lambda_exec,
            moto_bedrock,
            moto_components,
            moto_hub,
            moto_hyperpod,
            moto_iam,
            moto_invocation_jobs,
            moto_registry,
            moto_runtime,
            moto_sagemaker,
            quotas,
            routes,
        )
        from novaflow.local.emulator import agent_rft, faults, fulfilment, processing

        moto_sagemaker.install()
        moto_hyperpod.install()
        quotas.install()  # after moto_sagemaker: its name check runs inside the quota check's lock
        agent_jobs.install()
        if agent_rft.on_agent_job_created not in agent_jobs.ON_AGENT_JOB_CREATED:
            agent_jobs.ON_AGENT_JOB_CREATED.append(agent_rft.on_agent_job_created)
        moto_hub.install()
        moto_iam.install()
        moto_registry.install()
        moto_runtime.install()
        moto_bedrock.install()
        moto_invocation_jobs.install()
        moto_components.install()
        faults.install()
        if fulfilment.on_training_job_created not in moto_sagemaker.ON_TRAINING_JOB_CREATED:
            moto_sagemaker.ON_TRAINING_JOB_CREATED.append(fulfilment.on_training_job_created)
        if processing.on_processing_job_created not in moto_sagemaker.ON_PROCESSING_JOB_CREATED:
            moto_sagemaker.ON_PROCESSING_JOB_CREATED.append(processing.on_processing_job_created)
        routes.install(on_reset=reset)
        lambda_exec.install()
        events.install()
        _INSTALLED = True


def reset() -> None:
    """Forget emulator state that moto's reset does not wipe (queues, fault injections, transitions)."""
    # After install() has checked the moto pin (see there), so imported here rather than at the top.
    from moto.moto_api import state_manager

    from novaflow.local.aws import (
        agent_jobs,
        events,
        lambda_exec,
        moto_bedrock,
        moto_components,
        moto_hub,
        moto_hyperpod,
        moto_invocation_jobs,
        moto_sagemaker,
        quotas,
    )
    from novaflow.local.aws.control import MANAGED_MODELS
    from novaflow.local.emulator import aws_io, faults

    moto_sagemaker.reset()
    moto_hyperpod.reset()
    quotas.clear()
    agent_jobs.reset()
    moto_hub.reset()
    moto_bedrock.reset()
    moto_invocation_jobs.reset()
    moto_components.reset()
    faults.reset()
    aws_io.clear_cache()
    for model_name in MANAGED_MODELS:
        state_manager.unset_transition(model_name)
    lambda_exec.reset()
    events.reset()
