"""Supervised fine-tuning of the stand-in model on Converse rows, as an SMTJ SFT job reports it.

Writes the checkpoint to the emulated escrow bucket, ``output.tar.gz`` with ``manifest.json`` and
``step_wise_training_metrics.csv`` (docs/training-jobs.md#output-layout), and one Megatron-style log line per step
(docs/training-jobs.md#log-lines) whose loss is the real cross-entropy of the step's batch.
"""

from __future__ import annotations

import math
import time
import zlib
from typing import Any

import numpy as np

from novaflow.local.emulator import aws_io
from novaflow.local.emulator.job_context import JobContext, RecipeNotSupported
from novaflow.local.emulator.joblog import sft_step_line
from novaflow.local.models.classifier import Adam, Batch, LinearPolicy, minibatch_steps
from novaflow.local.models.generative import GenerativePolicy, sft_examples, train_scorer

MAX_LABELS = 50
"""Up to this many distinct responses the data is treated as labels (the classifier); above, as free-form answers."""
# Recipes are tuned for billions of LoRA weights; this converts their lr into an Adam step for ~16k x C weights.
STEP_PER_RECIPE_LR = 0.005 / 1e-5
GENERATIVE_STEP_PER_RECIPE_LR = 0.05 / 1e-5
"""The same for the generative model's scorer (a few thousand weights, most of them zero for any one answer)."""


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(block["text"]) for block in content if isinstance(block, dict) and "text" in block)
    return str(content or "")


def converse_pairs(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(last user text, final assistant text) of each Converse row."""
    users, answers = [], []
    for number, row in enumerate(rows, 1):
        messages = row.get("messages") or []
        user = [m for m in messages if m.get("role") == "user"]
        assistant = [m for m in messages if m.get("role") == "assistant"]
        if not user or not assistant or "content" not in assistant[-1]:
            raise RecipeNotSupported(
                f"ClientError: train row {number}: needs a user and a final assistant message with content (Converse)"
            )
        users.append(_text(user[-1].get("content")))
        answers.append(_text(assistant[-1]["content"]))
    return users, answers


def schedule(step: int, total: int, lr: float, warmup: int, min_lr: float) -> float:
    """Linear warm-up then cosine decay to ``min_lr`` (the Nova recipes' scheduler)."""
    if warmup and step <= warmup:
        return lr * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def sft_hyperparameters(config: dict[str, Any], n_rows: int, *, default_batch: int = 32) -> dict[str, Any]:
    """Steps, batch and learning-rate schedule from a Nova 1 or Nova 2 recipe (CPT's too: Nova 2 CPT keeps its
    optimiser at ``training_config.optim``)."""
    trainer = config.get("trainer") or {}
    optim = config.get("optim_config") or config.get("optim") or (config.get("model") or {}).get("optim") or {}
    sched = config.get("lr_scheduler") or optim.get("sched") or {}
    batch = int(config.get("global_batch_size") or default_batch)
    steps = config.get("max_steps") or trainer.get("max_steps")
    if not isinstance(steps, int):
        epochs = int(trainer.get("max_epochs") or 1)
        steps = max(1, math.ceil(epochs * n_rows / batch))
    return {
        "steps": int(steps),
        "batch": batch,
        "lr": float(optim.get("lr") or 1e-5),
        "warmup": int(sched.get("warmup_steps") or 0),
        "min_lr": float(sched.get("min_lr") or 0.0),
        "beta1": float(optim.get("adam_beta1") or 0.9),
        "beta2": float(optim.get("adam_beta2") or 0.95),
    }


def train_sft(
    users: list[str], answers: list[str], hp: dict[str, Any], seed: int, on_step: Any = None
) -> tuple[LinearPolicy, list[tuple[int, int, float]]]:
    """Mini-batch cross-entropy training; returns the policy and (step, epoch, loss) per step."""
    classes = sorted(set(answers))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[a] for a in answers])
    data = Batch.from_texts(users)
    policy = LinearPolicy.empty(classes)
    adam = Adam(policy.weights.shape, lr=0.0, beta1=hp["beta1"], beta2=hp["beta2"])
    rng = np.random.default_rng(seed)
    history = []
    for step, take, started in minibatch_steps(rng, len(users), hp["batch"], hp["steps"]):
        batch = data.take(take)
        probs = policy.probs(batch)
        loss = float(-np.log(probs[np.arange(len(take)), y[take]] + 1e-12).mean())
        grad_rows = probs.copy()
        grad_rows[np.arange(len(take)), y[take]] -= 1.0
        lr = schedule(step, hp["steps"], hp["lr"], hp["warmup"], hp["min_lr"])
        adam.step(policy.weights, policy.gradient(batch, grad_rows / len(take)), lr=lr * STEP_PER_RECIPE_LR)
        epoch = (step * hp["batch"]) // max(1, len(users))
        history.append((step, epoch, loss))
        if on_step is not None:
            on_step(step, epoch, lr, loss, time.perf_counter() - started)
    return policy, history


def checkpoint_uri(account: str, job_name: str) -> str:
    return f"s3://{aws_io.escrow_bucket(account)}/{job_name}/outputs/checkpoints"


def run_sft(ctx: JobContext, recipe: dict[str, Any]) -> None:
    users, answers = converse_pairs(ctx.read_jsonl("train"))
    classes = set(answers)
    hp = sft_hyperparameters(recipe.get("training_config") or {}, len(users))
    generative = len(classes) > MAX_LABELS
    ctx.line(
        f"Loaded {len(users)} training samples; {len(classes)} distinct responses; "
        f"max_steps={hp['steps']} global_batch_size={hp['batch']}; "
        + ("retrieval-and-programs model (free-form answers)" if generative else "label classifier")
    )

    def on_step(step: int, epoch: int, lr: float, loss: float, seconds: float) -> None:

        ctx.line(sft_step_line(epoch, step, hp["steps"], lr, hp["batch"], loss, seconds, step * hp["batch"]))
        if step % 10 == 0:
            ctx.checkpoint()

    ctx.samples_processed = hp["steps"] * hp["batch"]
    seed = zlib.crc32(ctx.name.encode())
    policy: LinearPolicy | GenerativePolicy
    if generative:
        policy, history = train_generative(ctx, users, answers, hp, seed, on_step)
    else:
        policy, history = train_sft(users, answers, hp, seed=seed, on_step=on_step)
    ctx.checkpoint()
    ctx.run.enter("Uploading")
    uri = checkpoint_uri(ctx.account, ctx.name)
    policy.meta.update(
        {"method": "sft", "job": ctx.name, "base_model": recipe["run"].get("model_name_or_path"), "steps": hp["steps"]}
    )
    aws_io.save_policy(ctx.url, uri, policy)
    csv = "step_number,epoch_number,training_loss\n" + "".join(
        f"{step},{epoch},{loss}\n" for step, epoch, loss in history
    )
    ctx.write_training_output(uri, csv)
    ctx.line(f"Saved checkpoint to {uri}")


def train_generative(
    ctx: JobContext, users: list[str], answers: list[str], hp: dict[str, Any], seed: int, on_step: Any
) -> tuple[GenerativePolicy, list[tuple[int, int, float]]]:
    """Index the pairs, add the classifier for label-like answer sets, fit the scorer by cross-entropy."""
    policy = GenerativePolicy.untrained(users, answers)
    if policy.wants_classifier():
        policy.classifier, _ = train_sft(users, [a.strip() for a in answers], hp, seed=seed)
    examples, unreachable = sft_examples(policy)
    ctx.line(
        f"Programs reproduce {policy.explained_share():.1%} of the answers from their prompts; "
        f"{len(examples)} of {len(users)} answers are among the candidates of their neighbours "
        f"({unreachable} unreachable); classifier {'on' if policy.classifier is not None else 'off'}"
    )
    if not examples:
        return policy, []

    def lr_at(step: int) -> float:
        return schedule(step, hp["steps"], hp["lr"], hp["warmup"], hp["min_lr"]) * GENERATIVE_STEP_PER_RECIPE_LR

    history = train_scorer(
        policy,
        examples,
        steps=hp["steps"],
        batch=hp["batch"],
        lr_at=lr_at,
        seed=seed,
        beta1=hp["beta1"],
        beta2=hp["beta2"],
        on_step=lambda step, epoch, lr, loss, seconds: on_step(
            step, epoch, lr / GENERATIVE_STEP_PER_RECIPE_LR, loss, seconds
        ),
    )
    return policy, history
