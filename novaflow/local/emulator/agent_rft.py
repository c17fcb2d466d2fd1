"""The service side of a multi-turn (agentic) RFT job, on a CPU: rollouts to the agent, learning from its rewards.

When an ``AgentRFT`` job is created, a worker thread reads the job config document and the task rows of its ``train``
channel, then trains the stand-in policy (a :class:`~novaflow.local.models.classifier.LinearPolicy` over the tasks'
answers) the way the service trains Nova: each step takes ``global_batch_size`` tasks, sends
``group_size`` rollouts of each to the agent through the Lambda API (``Invoke``, the rollout SDK's request as the
event), serves the agent's inference calls from the job's runtime service (:class:`~novaflow.agents.runtime.
RuntimeServer`, one per embedded AWS, its URL in ``RFT_RUNTIME_ENDPOINT`` and in every rollout's metadata), and once
the rewards are in applies the group-relative policy gradient of the RFT emulator to every turn the policy played.
Rollouts that never report a reward are dropped and logged, as the service does; a step in which none reports fails
the job with a reason naming the cause. Step lines carry the metrics sagemaker v3 reads for MTRL
(``rollout/reward/mean``, ``rollout/turns/mean``, ``training/total_tokens``, ``training/num_trajectories``) in the log
group ``/aws/sagemaker/Job/AgentRFT``; the checkpoint is registered as a version of the output model package group,
which ``DescribeJob`` then names under ``ServiceOutput`` (docs/agentic-rft.md#what-the-emulator-does).
"""

from __future__ import annotations

import json
import os
import threading
import traceback
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from novaflow.agents.runtime import RUNTIME_ENV, RuntimeServer, Trajectory, rollout_event
from novaflow.catalog import Method, get_model
from novaflow.data.multiturn import answer_text
from novaflow.jobs.agent_rft import LOG_GROUP
from novaflow.local.emulator import aws_io as storage
from novaflow.local.emulator import job_outputs as outputs
from novaflow.local.emulator.emulate_sft import MAX_LABELS, checkpoint_uri
from novaflow.local.emulator.joblog import JobLog
from novaflow.local.emulator.registration import register_output
from novaflow.local.emulator.serverless_jobs import ServerlessPlan, parse_hub_content_arn
from novaflow.local.models.classifier import Adam, Batch, LinearPolicy, minibatch_steps, softmax, tokens
from novaflow.recipes.serverless import hyperparameter_spec

STEP_PER_RECIPE_LR = 0.05 / 1e-5
"""Adam step of the stand-in per unit of the MTRL recipe's learning rate (default 1e-5): the stand-in has a few
thousand effective weights, Nova billions, so the same recipe value must move it further to learn in ten steps."""
MAX_PARALLEL_ROLLOUTS = 8
"""Rollouts in flight at once (the recipe's ``rollout_max_concurrency`` caps it too); each is a Lambda process."""


class JobFailed(Exception):
    """The job cannot go on; the message is its FailureReason."""


def step_line(step: int, metrics: dict[str, float]) -> str:
    """One training step as the MTRL trainer logs it (the keys sagemaker v3 reads for MTRL, plus the step)."""
    keys = ("rollout/reward/mean", "rollout/turns/mean", "training/total_tokens", "training/num_trajectories")
    values = " - ".join(f"{k}:{_num(metrics[k])}" for k in keys)
    return f"(RolloutTrainer) step:{step} - training/global_step:{step} - {values}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


@dataclass
class Settings:
    """The recipe's defaults overridden by the document's ``HyperParameters`` (strings, typed here)."""

    steps: int
    group_size: int
    batch: int
    learning_rate: float
    temperature: float
    top_p: float
    max_tokens: int
    concurrency: int
    save_every: int

    @classmethod
    def of(cls, hyperparameters: dict[str, Any]) -> Settings:
        spec = hyperparameter_spec(get_model("nova-lite-2"), Method.RFT_MULTITURN)
        values = spec.defaults()
        checked, problems = spec.check(hyperparameters)
        if problems:
            raise JobFailed("ClientError: " + "; ".join(problems))
        values.update(checked)
        return cls(
            steps=int(values["max_steps"]),
            group_size=int(values["group_size"]),
            batch=int(values["global_batch_size"]),
            learning_rate=float(values["learning_rate"]),
            temperature=float(values["temperature"]),
            top_p=float(values["sampling_top_p"]),
            max_tokens=int(values["sampling_max_tokens"]),
            concurrency=int(values["rollout_max_concurrency"]),
            save_every=int(values["save_every"]),
        )


@dataclass
class AgentWorker:
    """One job: its settings, its policy, and the replies it gave each trajectory (read back for the update)."""

    job: Any
    url: str
    policy: LinearPolicy | None = None
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    lock: threading.Lock = field(default_factory=threading.Lock)
    temperature: float = 1.0
    tokens_in: int = 0
    tokens_out: int = 0

    def reply(self, trajectory: Trajectory, body: dict[str, Any]) -> str:
        """Sample the policy for a chat request; the turn (input, choice, probabilities) is kept for the update."""
        text = " ".join(
            str(m.get("content") or "")
            for m in body["messages"]
            if isinstance(m, dict) and m.get("role") != "assistant"
        )
        temperature = float(body.get("temperature", self.temperature) or self.temperature)
        # Each trajectory samples from its own seed: rollouts run concurrently, the job stays reproducible.
        rng = np.random.default_rng(zlib.crc32(f"{trajectory.trajectory_id}/{len(trajectory.turns)}".encode()))
        with self.lock:
            assert self.policy is not None
            probs = softmax(self.policy.logits(Batch.from_texts([text])) / max(temperature, 1e-6))[0]
            choice = int(rng.choice(len(self.policy.classes), p=probs))
            answer = self.policy.classes[choice]
            trajectory.turns.append({"text": text, "choice": choice, "probs": probs, "temperature": temperature})
            self.tokens_in += len(tokens(text))
            self.tokens_out += len(tokens(answer))
        return answer


_RUNTIME: RuntimeServer | None = None
_WORKERS: dict[str, AgentWorker] = {}
_LOCK = threading.Lock()


def _policy(job_arn: str, trajectory_id: str, body: dict[str, Any]) -> str:
    worker = _WORKERS[job_arn]
    runtime = runtime_server()
    trajectory = runtime.ledger.get(trajectory_id)
    assert trajectory is not None  # the server checked it before asking
    return worker.reply(trajectory, body)


def runtime_server() -> RuntimeServer:
    """The embedded AWS's job runtime service, started on first use; its URL is exported as ``RFT_RUNTIME_ENDPOINT``
    so Lambda processes (which inherit it) and the rollout SDK find it."""
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is None:
            _RUNTIME = RuntimeServer(_policy).start()
            os.environ[RUNTIME_ENV] = _RUNTIME.url
        return _RUNTIME


def on_agent_job_created(job: Any, url: str) -> None:
    threading.Thread(target=_work, args=(job, url), name=f"agent-rft-{job.name}", daemon=True).start()


def _work(job: Any, url: str) -> None:
    run = job.run
    log: JobLog | None = None
    try:
        log = JobLog(url, job.name, job.region, group=LOG_GROUP)  # /aws/sagemaker/Job/AgentRFT
        log.line(f"Starting the multi-turn RFT job {job.name} (novaflow local emulator)")
        _train(job, url, log)
        run.finish()
    except JobFailed as exc:
        run.fail(str(exc))
        if log is not None:
            log.line(str(exc), level="ERROR")
    except _Stopped:
        if log is not None:
            log.line("Received a stop request; the job is stopping")
    except Exception as exc:  # an emulator bug must surface as a failed job, never a silent hang
        run.fail(f"InternalServerError: {type(exc).__name__}: {exc}")
        if log is not None:
            for text in traceback.format_exc().splitlines():
                log.line(text, level="ERROR")
    finally:
        with _LOCK:
            _WORKERS.pop(job.arn, None)
        if log is not None:
            try:
                log.flush()
            except Exception:  # noqa: S110 - the server may be shutting down; the status must still settle
                pass
        run.exited()


class _Stopped(Exception):
    pass


def _checkpoint(run: Any) -> None:
    if run.should_stop():
        raise _Stopped


def read_tasks(url: str, uri: str) -> list[dict[str, Any]]:
    """Every task row under the ``train`` channel (a file, or every ``.jsonl`` under a prefix)."""
    bucket = uri[5:].split("/", 1)[0]
    keys = (
        [uri]
        if uri.endswith(".jsonl")
        else [f"s3://{bucket}/{k}" for k in storage.list_keys(url, uri) if k.endswith(".jsonl")]
    )
    if not keys:
        raise JobFailed(f"ClientError: no .jsonl task file under {uri}")
    rows: list[dict[str, Any]] = []
    for key in sorted(keys):
        for number, line in enumerate(storage.read_bytes(url, key).decode("utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise JobFailed(f"ClientError: {key} line {number} is not JSON: {exc}") from None
    return rows


def _train(job: Any, url: str, log: JobLog) -> None:
    run, document = job.run, job.document
    agent = document["AgentConfig"].get("CustomAgentLambdaConfig", {}).get("LambdaArn")
    if not agent:
        raise JobFailed(
            "ClientError: the local emulator plays rollouts through a Lambda agent, not an AgentCore runtime"
        )
    settings = Settings.of(document["TrainingConfig"].get("HyperParameters") or {})
    channel = next(c for c in document["InputDataConfig"] if c["ChannelName"] == "train")
    run.enter("Downloading")
    tasks = read_tasks(url, channel["DataSource"]["S3DataSource"]["S3Uri"])
    classes = sorted({answer_text(t) for t in tasks if answer_text(t)})
    if not classes or len(classes) > MAX_LABELS or any(not answer_text(t) for t in tasks):
        raise JobFailed(
            f"ClientError: the local stand-in policy answers with one of the tasks' answers: give every task an "
            f"'answer' (at most {MAX_LABELS} distinct ones; these tasks have {len(classes)})"
        )
    worker = AgentWorker(job, url, LinearPolicy.empty(classes), np.random.default_rng(zlib.crc32(job.name.encode())))
    worker.temperature = settings.temperature
    runtime = runtime_server()
    with _LOCK:
        _WORKERS[job.arn] = worker
    runtime.register_job(job.arn)
    _checkpoint(run)
    run.enter("Training")
    per_step = max(1, min(len(tasks), settings.batch))  # the recipe's training_batch_size: prompts per step
    log.line(
        f"Multi-turn RFT from {job.document['TrainingConfig']['BaseModelArn']}: {len(tasks)} tasks, {per_step} tasks x "
        f"{settings.group_size} rollouts per step, max_steps={settings.steps}, agent {agent}, runtime {runtime.url}"
    )
    assert worker.policy is not None
    adam = Adam(worker.policy.weights.shape, lr=settings.learning_rate * STEP_PER_RECIPE_LR)
    lam = storage.client("lambda", url, job.region)
    history: list[tuple[int, dict[str, float]]] = []
    for step, take, _ in minibatch_steps(worker.rng, len(tasks), per_step, settings.steps):
        _checkpoint(run)
        groups = _play_step(job, lam, agent, runtime, tasks, take, step, settings, log)
        metrics = _update(worker, adam, groups, settings, step)
        log.line(step_line(step, metrics))
        history.append((step, metrics))
        job.service_output["ProgressInfo"] = {"MaxSteps": settings.steps, "CurrentStep": step}
        if settings.save_every and step % settings.save_every == 0 and step < settings.steps:
            _save_intermediate(job, url, worker, step, log)
    run.enter("Uploading")
    _finish(job, url, worker, history, log, agent)


def _play_step(
    job: Any,
    lam: Any,
    agent: str,
    runtime: RuntimeServer,
    tasks: list[dict[str, Any]],
    take: np.ndarray,
    step: int,
    settings: Settings,
    log: JobLog,
) -> list[list[Trajectory]]:
    """Send every rollout of the step to the agent; the trajectories per task, each with what the agent did."""
    planned: list[tuple[int, Trajectory, dict[str, Any]]] = []
    for slot, row in enumerate(take):
        for g in range(settings.group_size):
            trajectory_id = f"{job.name}-s{step}-p{int(row)}-g{g}"
            trajectory = runtime.ledger.open(job.arn, trajectory_id)
            event = rollout_event(
                tasks[int(row)],
                job_arn=job.arn,
                trajectory_id=trajectory_id,
                endpoint=runtime.url,
                region=job.region,
                inference_params={
                    "temperature": settings.temperature,
                    "top_p": settings.top_p,
                    "max_tokens": settings.max_tokens,
                },
                model_name=job.name,
            )
            planned.append((slot, trajectory, event))

    def invoke(event: dict[str, Any]) -> str | None:
        response = lam.invoke(FunctionName=agent, InvocationType="RequestResponse", Payload=json.dumps(event).encode())
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            return str(json.loads(payload or b"{}").get("errorMessage") or response["FunctionError"])
        return None

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_ROLLOUTS, settings.concurrency)) as pool:
        errors = list(pool.map(invoke, [event for _, _, event in planned]))
    groups: list[list[Trajectory]] = [[] for _ in take]
    dropped = 0
    for (slot, trajectory, _), error in zip(planned, errors, strict=True):
        if error is not None:
            log.line(f"Rollout {trajectory.trajectory_id} failed in the agent: {error}", level="WARNING")
        if trajectory.status == "reward-received":
            groups[slot].append(trajectory)
        else:
            dropped += 1
            log.line(
                f"Rollout {trajectory.trajectory_id} dropped: no reward reported (status {trajectory.status})",
                level="WARNING",
            )
    if dropped == len(planned):
        raise JobFailed(
            f"AlgorithmError: step {step}: none of its {len(planned)} rollouts reported a reward; the agent must "
            f"call /complete-rollout and /update-reward once per trajectory (see /aws/lambda/{agent.split(':')[6]})"
        )
    return groups


def _update(
    worker: AgentWorker, adam: Adam, groups: list[list[Trajectory]], settings: Settings, step: int
) -> dict[str, float]:
    """Group-relative policy gradient over every turn of every rewarded trajectory (the RFT emulator's update)."""
    policy = worker.policy
    assert policy is not None
    texts: list[str] = []
    rows: list[np.ndarray] = []
    returns: list[float] = []
    turns: list[int] = []
    for group in groups:
        if not group:
            continue
        totals = np.array([sum(t.rewards) for t in group])
        advantages = totals - totals.mean()
        for trajectory, advantage in zip(group, advantages, strict=True):
            returns.append(float(sum(trajectory.rewards)))
            turns.append(len(trajectory.turns))
            for turn in trajectory.turns:
                onehot = np.zeros(len(policy.classes))
                onehot[turn["choice"]] = 1.0
                texts.append(turn["text"])
                rows.append(-advantage * (onehot - turn["probs"]) / max(turn["temperature"], 1e-6))
    if texts:
        with worker.lock:
            batch = Batch.from_texts(texts)
            grad = policy.gradient(batch, np.array(rows) / len(texts))
            adam.step(policy.weights, grad)
    with worker.lock:
        total_tokens = worker.tokens_in + worker.tokens_out
    return {
        "rollout/reward/mean": float(np.mean(returns)),
        "rollout/turns/mean": float(np.mean(turns)),
        "training/total_tokens": float(total_tokens),
        "training/num_trajectories": float(len(returns)),
    }


def _register(job: Any, url: str, worker: AgentWorker, group_arn: str, name: str) -> tuple[str, str]:
    """Save the policy as checkpoint ``name`` and register it as a version of the group: (checkpoint, version)."""
    assert worker.policy is not None
    uri = checkpoint_uri(job.account, name)
    with worker.lock:
        storage.save_policy(url, uri, worker.policy)
    _, _, content, version = parse_hub_content_arn(job.document["TrainingConfig"]["BaseModelArn"], "BaseModelArn")
    group = group_arn.rsplit("/", 1)[-1]
    plan = ServerlessPlan("FineTuning", "MTRL", None, "nova-lite-2", "", (content, version or "1.0.0"), group, None)
    return uri, register_output(cast(Any, _Ctx(name, url, job.region)), plan, uri)  # it reads name, url, region


def _save_intermediate(job: Any, url: str, worker: AgentWorker, step: int, log: JobLog) -> None:
    """Every ``save_every`` steps: a checkpoint registered in the intermediate checkpoint group."""
    group = job.document["ModelPackageConfig"].get("IntermediateCheckpointModelPackageGroupArn")
    if not group:
        return
    _, arn = _register(job, url, worker, group, f"{job.name}-step{step}")
    log.line(f"Step {step}: intermediate checkpoint registered as {arn}")


def _finish(
    job: Any, url: str, worker: AgentWorker, history: list[tuple[int, dict[str, float]]], log: JobLog, agent: str
) -> None:
    """Checkpoint, outputs, the registered model package, and ``ServiceOutput``."""
    policy = worker.policy
    assert policy is not None
    document = job.document
    policy.meta.update({"method": "rft_multiturn", "job": job.name, "steps": len(history), "agent": agent})
    uri, arn = _register(job, url, worker, document["ModelPackageConfig"]["OutputModelPackageGroupArn"], job.name)
    csv = "step_number,reward_mean,turns_mean,num_trajectories\n" + "".join(
        f"{s},{m['rollout/reward/mean']},{m['rollout/turns/mean']},{int(m['training/num_trajectories'])}\n"
        for s, m in history
    )
    root = outputs.uncompressed_root(document["OutputDataConfig"]["S3OutputPath"], job.name)
    for name, body in outputs.training_files(uri, csv).items():
        storage.write_bytes(url, f"{root}/{name}", body)
    log.line(f"Saved checkpoint to {uri}; registered the trained model as {arn}")
    with worker.lock:
        sample, prefill = worker.tokens_out, worker.tokens_in
    job.service_output.update(
        {
            "OutputModelPackageArn": arn,
            "BillableTokenUsage": {
                "TrainTokenCount": sample + prefill,
                "PrefillTokenCount": prefill,
                "SampleTokenCount": sample,
            },
        }
    )
    log.line("Multi-turn RFT job completed")


@dataclass(frozen=True)
class _Ctx:
    """What :func:`register_output` reads of a job context."""

    name: str
    url: str
    region: str
