"""Direct preference optimisation of the stand-in model on preference pairs, as a Nova DPO job reports it.

Each row's last message holds the candidates with their ``preferenceLabel``; the policy learns to raise the
log-probability of the preferred candidate over the non-preferred one, relative to the frozen policy it started
from, by the DPO loss ``-log sigmoid(beta * ((log pi(w) - log ref(w)) - (log pi(l) - log ref(l))))``. For the
softmax-linear stand-in the gradient of that margin with respect to the logits is ``onehot(w) - onehot(l)``, so
the step is exact. The step lines report the real batch loss and the share of pairs already ranked right.
"""

from __future__ import annotations

import math
import time
import zlib
from typing import Any

import numpy as np

from novaflow.local.emulator import aws_io
from novaflow.local.emulator.emulate_sft import checkpoint_uri, schedule
from novaflow.local.emulator.job_context import JobContext, RecipeNotSupported
from novaflow.local.emulator.joblog import sft_step_line
from novaflow.local.models.classifier import Adam, Batch, LinearPolicy, is_base_model, minibatch_steps

STEP_PER_RECIPE_LR = 0.005 / 1e-5


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


def preference_pairs(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(prompt, preferred, non-preferred) of each DPO row (its first candidate of each label)."""
    pairs = []
    for number, row in enumerate(rows, 1):
        messages = row.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        last = messages[-1] if messages else {}
        candidates = last.get("candidates") if isinstance(last, dict) else None
        if not users or not isinstance(candidates, list):
            raise RecipeNotSupported(
                f"ClientError: train row {number}: DPO needs a user message and a final assistant message "
                "with candidates"
            )
        by_label: dict[str, str] = {}
        for candidate in candidates:
            label = str(candidate.get("preferenceLabel", "")).lower()
            by_label.setdefault(label, _text(candidate.get("content")))
        if "preferred" not in by_label or "non-preferred" not in by_label:
            raise RecipeNotSupported(
                f"ClientError: train row {number}: candidates need one preferred and one non-preferred answer"
            )
        pairs.append((_text(users[-1].get("content")), by_label["preferred"], by_label["non-preferred"]))
    return pairs


def dpo_settings(config: dict[str, Any], n_pairs: int) -> dict[str, Any]:
    model = config.get("model") or {}
    optim = config.get("optim_config") or model.get("optim") or {}
    sched = config.get("lr_scheduler") or optim.get("sched") or {}
    batch = int(config.get("global_batch_size") or 64)
    steps = config.get("max_steps")
    if not isinstance(steps, int):
        epochs = int((config.get("trainer") or {}).get("max_epochs") or 1)
        steps = max(1, math.ceil(epochs * n_pairs / batch))
    return {
        "steps": int(steps),
        "batch": batch,
        "beta": float((model.get("dpo_cfg") or {}).get("beta") or 0.1),
        "lr": float(optim.get("lr") or 1e-5),
        "warmup": int(sched.get("warmup_steps") or 0),
        "min_lr": float(sched.get("min_lr") or 0.0),
    }


def starting_policy(url: str, start: str, answers: list[str]) -> LinearPolicy:
    """The policy to optimise: the checkpoint's classifier widened to every answer, else (a base model, a CPT or a
    free-form checkpoint) a fresh one over the candidates."""
    loaded = None if is_base_model(start) else aws_io.load_policy(url, start)
    if not isinstance(loaded, LinearPolicy):
        return LinearPolicy.empty(sorted(set(answers)))
    extra = sorted(set(answers) - set(loaded.classes))
    weights = np.concatenate([loaded.weights, np.zeros((loaded.weights.shape[0], len(extra)))], axis=1)
    return LinearPolicy(list(loaded.classes) + extra, weights, dict(loaded.meta))


def train_dpo(
    policy: LinearPolicy, pairs: list[tuple[str, str, str]], hp: dict[str, Any], seed: int, on_step: Any = None
) -> list[tuple[int, int, float, float]]:
    """Optimise ``policy`` in place; (step, epoch, loss, accuracy) per step."""
    index = {c: i for i, c in enumerate(policy.classes)}
    chosen = np.array([index[w] for _, w, _ in pairs])
    rejected = np.array([index[lose] for _, _, lose in pairs])
    data = Batch.from_texts([p for p, _, _ in pairs])
    reference = policy.weights.copy()
    adam = Adam(policy.weights.shape, lr=0.0)
    rng = np.random.default_rng(seed)
    history = []
    for step, take, started in minibatch_steps(rng, len(pairs), hp["batch"], hp["steps"]):
        batch = data.take(take)
        logits = policy.logits(batch)
        ref = np.add.reduceat(reference[batch.cols], batch.starts, axis=0)
        rows = np.arange(len(take))
        w, lose = chosen[take], rejected[take]
        margin = hp["beta"] * ((logits[rows, w] - logits[rows, lose]) - (ref[rows, w] - ref[rows, lose]))
        loss = float(np.logaddexp(0.0, -margin).mean())
        accuracy = float((margin > 0).mean())
        weight = -hp["beta"] / (1.0 + np.exp(margin))  # d loss / d margin, times beta
        grad_rows = np.zeros_like(logits)
        grad_rows[rows, w] += weight
        grad_rows[rows, lose] -= weight
        lr = schedule(step, hp["steps"], hp["lr"], hp["warmup"], hp["min_lr"])
        adam.step(policy.weights, policy.gradient(batch, grad_rows / len(take)), lr=lr * STEP_PER_RECIPE_LR)
        epoch = (step * hp["batch"]) // max(1, len(pairs))
        history.append((step, epoch, loss, accuracy))
        if on_step is not None:
            on_step(step, epoch, lr, loss, accuracy, time.perf_counter() - started)
    return history


def run_dpo(ctx: JobContext, recipe: dict[str, Any]) -> None:
    pairs = preference_pairs(ctx.read_jsonl("train"))
    hp = dpo_settings(recipe.get("training_config") or {}, len(pairs))
    start = str(recipe["run"].get("model_name_or_path") or "")
    policy = starting_policy(ctx.url, start, [a for _, w, lose in pairs for a in (w, lose)])
    ctx.line(
        f"DPO from {start}: {len(pairs)} preference pairs, beta={hp['beta']}, max_steps={hp['steps']} "
        f"global_batch_size={hp['batch']}"
    )

    def on_step(step: int, epoch: int, lr: float, loss: float, accuracy: float, seconds: float) -> None:
        line = sft_step_line(epoch, step, hp["steps"], lr, hp["batch"], loss, seconds, step * hp["batch"])
        ctx.line(f"{line} | rewards/accuracies: {accuracy:.4f}")
        if step % 10 == 0:
            ctx.checkpoint()

    ctx.samples_processed = hp["steps"] * hp["batch"]
    history = train_dpo(policy, pairs, hp, seed=zlib.crc32(ctx.name.encode()), on_step=on_step)
    ctx.checkpoint()
    ctx.run.enter("Uploading")
    uri = checkpoint_uri(ctx.account, ctx.name)
    policy.meta.update({"method": "dpo", "job": ctx.name, "start": start, "steps": hp["steps"], "beta": hp["beta"]})
    aws_io.save_policy(ctx.url, uri, policy)
    csv = "step_number,epoch_number,training_loss,rewards_accuracy\n" + "".join(
        f"{s},{e},{loss},{acc}\n" for s, e, loss, acc in history
    )
    ctx.write_training_output(uri, csv)
    ctx.line(f"Saved checkpoint to {uri}")
