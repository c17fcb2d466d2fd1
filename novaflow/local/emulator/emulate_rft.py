"""Reinforcement fine-tuning of the stand-in model, scored by the user's reward Lambda through the Lambda API.

Each step samples ``number_generation`` responses per prompt at the recipe temperature, sends them in batches to
the reward Lambda named in the recipe (one synchronous Invoke per batch of samples, in the shape of
docs/reward-contract.md#what-the-service-sends: the dataset row with the rollout appended as the last message and
a unique ``id``), and applies a group-relative policy gradient with a KL penalty (``kl_loss_coef``) towards the
starting policy. The verl-style step lines (docs/training-jobs.md#log-lines) report the rewards the Lambda really
returned.
"""

from __future__ import annotations

import copy
import json
import math
import time
import zlib
from typing import Any

import numpy as np

from novaflow.local.emulator import aws_io
from novaflow.local.emulator.emulate_sft import MAX_LABELS, checkpoint_uri
from novaflow.local.emulator.job_context import JobContext, RecipeNotSupported
from novaflow.local.models.classifier import Adam, Batch, LinearPolicy, is_base_model, minibatch_steps, softmax, tokens
from novaflow.local.models.generative import Candidates, GenerativePolicy

LAMBDA_BATCH = 32
STEP_PER_RECIPE_LR = 0.002 / 1e-4
GENERATIVE_STEP_PER_RECIPE_LR = 0.1 / 1e-4
"""Adam step of the generative model's scorer per unit of the recipe's RFT lr (it has few effective weights)."""


def _reference(row: dict[str, Any]) -> str:
    ref = row.get("reference_answer")
    if ref is None:
        ref = (row.get("metadata") or {}).get("reference_answer") if isinstance(row.get("metadata"), dict) else None
    return ref if isinstance(ref, str) else json.dumps(ref, sort_keys=True)


def user_text(row: dict[str, Any]) -> str:
    users = [m for m in row.get("messages") or [] if m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


def rft_settings(recipe: dict[str, Any], hyperparameters: dict[str, str]) -> dict[str, Any]:
    config = recipe.get("training_config") or {}
    rollout = config.get("rollout") or {}
    trainer = config.get("trainer") or {}
    endpoint = (rollout.get("rewards") or {}).get("api_endpoint") or {}
    arn = (
        recipe["run"].get("reward_lambda_arn") or hyperparameters.get("reward_lambda_arn") or endpoint.get("lambda_arn")
    )
    return {
        "lambda_arn": arn,
        "generations": int((rollout.get("advantage_strategy") or {}).get("number_generation") or 2),
        "temperature": float((rollout.get("generator") or {}).get("temperature", 1.0)),
        "kl_coef": float(trainer.get("kl_loss_coef", 0.001)),
        "steps": int(trainer.get("max_steps") or 5) if isinstance(trainer.get("max_steps", 5), int) else 5,
        "batch": int(config.get("global_batch_size") or 64),
        "lr": float((trainer.get("optim_config") or {}).get("lr") or 1e-4),
    }


class RewardClient:
    """Invokes the reward Lambda synchronously, one batch of samples per call, and checks its answer."""

    def __init__(self, ctx: JobContext, arn: str) -> None:
        self.ctx, self.arn = ctx, arn
        self.client = aws_io.client("lambda", ctx.url, ctx.region)
        self.invocations = 0

    def score(self, samples: list[dict[str, Any]]) -> dict[Any, float]:
        return {item["id"]: float(item["aggregate_reward_score"]) for item in self.outputs(samples)}

    def outputs(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The Lambda's answer for every sample, in order (a function error or a wrong shape fails the job)."""
        results: list[dict[str, Any]] = []
        for start in range(0, len(samples), LAMBDA_BATCH):
            chunk = samples[start : start + LAMBDA_BATCH]
            self.ctx.line(f"Invoking reward Lambda {self.arn} with {len(chunk)} samples")
            response = self.client.invoke(
                FunctionName=self.arn, InvocationType="RequestResponse", Payload=json.dumps(chunk).encode()
            )
            self.invocations += 1
            payload = json.loads(response["Payload"].read() or b"null")
            if response.get("FunctionError") or (isinstance(payload, dict) and "errorMessage" in payload):
                message = payload.get("errorMessage") if isinstance(payload, dict) else payload
                raise RecipeNotSupported(f"AlgorithmError: reward Lambda {self.arn} failed: {message}")
            if isinstance(payload, dict) and "body" in payload:  # open-weights wrapping
                payload = json.loads(payload["body"])
            if not isinstance(payload, list) or len(payload) != len(chunk):
                raise RecipeNotSupported(
                    f"AlgorithmError: reward Lambda {self.arn} returned "
                    f"{type(payload).__name__} instead of a list of {len(chunk)} results"
                )
            bad = next((item for item in payload if not _readable(item)), None)
            if bad is not None:
                raise RecipeNotSupported(
                    f"AlgorithmError: reward Lambda {self.arn} returned {str(bad)[:120]} - each result needs an "
                    "'id' and a numeric 'aggregate_reward_score'"
                )
            results.extend(payload)
        return results


def _readable(item: object) -> bool:
    if not isinstance(item, dict) or "id" not in item:
        return False
    score = item.get("aggregate_reward_score")
    return isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)


def run_rft(ctx: JobContext, recipe: dict[str, Any]) -> None:
    settings = rft_settings(recipe, ctx.hyperparameters)
    if not settings["lambda_arn"]:
        raise RecipeNotSupported(
            "ClientError: RFT needs run.reward_lambda_arn or training_config.rollout.rewards.api_endpoint.lambda_arn"
        )
    rows = ctx.read_jsonl("train")
    start = str(recipe["run"].get("model_name_or_path") or "")
    policy: LinearPolicy | GenerativePolicy
    loaded = None if is_base_model(start) else aws_io.load_policy(ctx.url, start)
    if loaded is None:  # the base model, or a CPT checkpoint (it learnt the corpus, not the task)
        references = [_reference(r) for r in rows]
        if len(set(references)) > MAX_LABELS:
            policy = GenerativePolicy.untrained([user_text(r) for r in rows], references)
        else:
            policy = LinearPolicy.empty(sorted(set(references)))
    elif isinstance(loaded, GenerativePolicy):
        policy = GenerativePolicy(
            loaded.prompts, loaded.responses, loaded.weights.copy(), loaded.classifier, dict(loaded.meta)
        )
    else:
        policy = LinearPolicy(list(loaded.classes), loaded.weights.copy(), dict(loaded.meta))
    rng = np.random.default_rng(zlib.crc32(ctx.name.encode()))
    reward = RewardClient(ctx, settings["lambda_arn"])
    g = settings["generations"]
    prompts_per_step = max(1, min(len(rows), settings["batch"] // g))
    ctx.line(
        f"RFT from {start}: {len(rows)} prompts, {prompts_per_step} prompts x {g} generations per step, "
        f"temperature={settings['temperature']}, kl_loss_coef={settings['kl_coef']}, max_steps={settings['steps']}, "
        f"reward Lambda {settings['lambda_arn']}"
    )
    ctx.samples_processed = settings["steps"] * prompts_per_step * g
    if isinstance(policy, GenerativePolicy):
        history = _rft_generative(ctx, policy, rows, settings, reward, rng, prompts_per_step)
    else:
        history = _rft_classifier(ctx, policy, rows, settings, reward, rng, prompts_per_step)
    ctx.run.enter("Uploading")
    uri = checkpoint_uri(ctx.account, ctx.name)
    policy.meta.update(
        {
            "method": "rft",
            "job": ctx.name,
            "start": start,
            "steps": settings["steps"],
            "reward_lambda_arn": settings["lambda_arn"],
            "lambda_invocations": reward.invocations,
        }
    )
    aws_io.save_policy(ctx.url, uri, policy)
    csv = "step_number,epoch_number,train_reward_mean,policy_entropy,kl\n" + "".join(
        f"{s},{e},{m['critic/rewards/mean']},{m['actor/entropy']},{m['actor/reward_kl_penalty']}\n"
        for s, e, m in history
    )
    ctx.write_training_output(uri, csv)
    ctx.line(f"Saved checkpoint to {uri}")


History = list[tuple[int, int, dict[str, float]]]


def _rft_classifier(
    ctx: JobContext,
    policy: LinearPolicy,
    rows: list[dict[str, Any]],
    settings: dict[str, Any],
    reward: RewardClient,
    rng: np.random.Generator,
    prompts_per_step: int,
) -> History:
    reference = policy.weights.copy()
    data = Batch.from_texts([user_text(r) for r in rows])
    adam = Adam(policy.weights.shape, lr=settings["lr"] * STEP_PER_RECIPE_LR)
    g, temp, kl_coef = settings["generations"], settings["temperature"], settings["kl_coef"]
    history: History = []
    for step, take, started in minibatch_steps(rng, len(rows), prompts_per_step, settings["steps"]):
        batch = data.take(take)
        logits = policy.logits(batch)
        probs = softmax(logits / max(temp, 1e-6))
        choices = np.array([[rng.choice(len(policy.classes), p=probs[i]) for _ in range(g)] for i in range(len(take))])
        texts = [[policy.classes[c] for c in row] for row in choices]
        samples, ids = rollout_samples(ctx.name, step, rows, take, texts)
        scores = reward.score(samples)
        rewards = np.array([scores[i] for i in ids]).reshape(len(take), g)
        advantages = rewards - rewards.mean(axis=1, keepdims=True)
        # Policy gradient of -sum(adv * log pi(a)) through the temperature, plus the KL(pi || pi_ref) penalty.
        grad_rows = np.zeros_like(logits)
        for j in range(g):
            onehot = np.eye(len(policy.classes))[choices[:, j]]
            grad_rows -= advantages[:, [j]] * (onehot - probs) / max(temp, 1e-6)
        p1 = softmax(logits)
        ref_logits = np.add.reduceat(reference[batch.cols], batch.starts, axis=0)
        q1 = softmax(ref_logits)
        log_ratio = np.log(p1 + 1e-12) - np.log(q1 + 1e-12)
        kl = (p1 * log_ratio).sum(axis=1)
        grad_rows += kl_coef * p1 * (log_ratio - kl[:, None]) * g
        grad = policy.gradient(batch, grad_rows / (len(take) * g))
        adam.step(policy.weights, grad)
        entropy = float(-(probs * np.log(probs + 1e-12)).sum(axis=1).mean())
        chosen_logp = np.log(probs[np.arange(len(take))[:, None], choices] + 1e-12)
        metrics = step_metrics(
            rows,
            take,
            texts,
            rewards,
            advantages,
            entropy=entropy,
            kl=float(kl.mean()),
            kl_coef=kl_coef,
            pg_loss=float(-(advantages * chosen_logp).mean()),
            grad_norm=float(np.linalg.norm(grad)),
            lr=settings["lr"],
            started=started,
        )
        _log_step(ctx, history, step, len(take), len(rows), metrics)
    return history


def _rft_generative(
    ctx: JobContext,
    policy: GenerativePolicy,
    rows: list[dict[str, Any]],
    settings: dict[str, Any],
    reward: RewardClient,
    rng: np.random.Generator,
    prompts_per_step: int,
) -> History:
    """The same group-relative update on the generative model's scorer; each prompt has its own candidates."""
    reference = policy.weights.copy()
    prompts = [user_text(r) for r in rows]
    cache: dict[int, Candidates] = {}
    adam = Adam(policy.weights.shape, lr=settings["lr"] * GENERATIVE_STEP_PER_RECIPE_LR)
    g, temp, kl_coef = settings["generations"], max(settings["temperature"], 1e-6), settings["kl_coef"]
    history: History = []
    for step, take, started in minibatch_steps(rng, len(rows), prompts_per_step, settings["steps"]):
        cands = []
        for r in take:
            if int(r) not in cache:
                cache[int(r)] = policy.candidates(prompts[int(r)])
            cands.append(cache[int(r)])
        logits = [c.logits(policy.weights) for c in cands]
        probs = [softmax(x[None, :] / temp)[0] for x in logits]
        choices = [[int(rng.choice(len(p), p=p)) for _ in range(g)] for p in probs]
        texts = [[c.texts[k] for k in row] for c, row in zip(cands, choices, strict=True)]
        samples, ids = rollout_samples(ctx.name, step, rows, take, texts)
        scores = reward.score(samples)
        rewards = np.array([scores[i] for i in ids]).reshape(len(take), g)
        advantages = rewards - rewards.mean(axis=1, keepdims=True)
        grad = np.zeros_like(policy.weights)
        kls, entropies, chosen = [], [], []
        for i, (c, x, p) in enumerate(zip(cands, logits, probs, strict=True)):
            row_grad = np.zeros_like(x)
            for j, k in enumerate(choices[i]):
                onehot = np.zeros_like(x)
                onehot[k] = 1.0
                row_grad -= advantages[i, j] * (onehot - p) / temp
                chosen.append(math.log(float(p[k]) + 1e-12) * advantages[i, j])
            p1 = softmax(x[None, :])[0]
            q1 = softmax(c.logits(reference)[None, :])[0]
            log_ratio = np.log(p1 + 1e-12) - np.log(q1 + 1e-12)
            kl = float((p1 * log_ratio).sum())
            row_grad += kl_coef * p1 * (log_ratio - kl) * g
            c.gradient(row_grad / (len(take) * g), grad)
            kls.append(kl)
            entropies.append(float(-(p * np.log(p + 1e-12)).sum()))
        adam.step(policy.weights, grad)
        metrics = step_metrics(
            rows,
            take,
            texts,
            rewards,
            advantages,
            entropy=float(np.mean(entropies)),
            kl=float(np.mean(kls)),
            kl_coef=kl_coef,
            pg_loss=-float(np.mean(chosen)),
            grad_norm=float(np.linalg.norm(grad)),
            lr=settings["lr"],
            started=started,
        )
        _log_step(ctx, history, step, len(take), len(rows), metrics)
    return history


def _log_step(ctx: JobContext, history: History, step: int, taken: int, rows: int, metrics: dict[str, float]) -> None:
    epoch = (step * taken) // max(1, rows)
    ctx.line(ctx.rft_step_line(step, epoch, metrics))
    history.append((step, epoch, metrics))
    ctx.checkpoint()


def rollout_samples(
    job: str, step: int, rows: list[dict[str, Any]], take: np.ndarray, texts: list[list[str]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The samples sent to the reward Lambda: each row with a generation appended and a unique id."""
    samples, ids = [], []
    for i, row_index in enumerate(take):
        for j, text in enumerate(texts[i]):
            sample = copy.deepcopy(rows[row_index])
            sample_id = f"{job}-s{step}-p{int(row_index)}-g{j}"
            sample["id"] = sample_id
            sample["messages"] = [*list(sample.get("messages") or []), {"role": "assistant", "content": text}]
            samples.append(sample)
            ids.append(sample_id)
    return samples, ids


def step_metrics(
    rows: list[dict[str, Any]],
    take: np.ndarray,
    texts: list[list[str]],
    rewards: np.ndarray,
    advantages: np.ndarray,
    *,
    entropy: float,
    kl: float,
    kl_coef: float,
    pg_loss: float,
    grad_norm: float,
    lr: float,
    started: float,
) -> dict[str, float]:
    """One step's verl-style metrics from what the step really did."""
    lengths = [len(tokens(t)) for row in texts for t in row]
    return {
        "global_seqlen/mean": float(np.mean([len(tokens(user_text(rows[r]))) for r in take]) + np.mean(lengths)),
        "actor/entropy": entropy,
        "actor/reward_kl_penalty": kl,
        "actor/reward_kl_penalty_coeff": kl_coef,
        "actor/pg_loss": pg_loss,
        "actor/grad_norm": grad_norm,
        "actor/lr": lr,
        "critic/score/mean": float(rewards.mean()),
        "critic/score/max": float(rewards.max()),
        "critic/score/min": float(rewards.min()),
        "critic/rewards/mean": float(rewards.mean()),
        "critic/rewards/max": float(rewards.max()),
        "critic/rewards/min": float(rewards.min()),
        "critic/advantages/mean": float(advantages.mean()),
        "response_length/mean": float(np.mean(lengths)),
        "response_length/clip_ratio": 0.0,
        "perf/throughput": rewards.size / max(time.perf_counter() - started, 1e-6),
    }
