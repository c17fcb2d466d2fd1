"""Continued pre-training of the stand-in model on raw text, as a Nova CPT job reports it.

The corpus (``{"text": ...}`` rows) trains a bigram language model
(:class:`~novaflow.local.models.classifier.CorpusModel`) by next-token cross-entropy with Adam; a twentieth of the
rows is held out, and the log reports its perplexity before and after, so "the model adapted to the corpus" is a
number computed on text the model did not train on.
"""

from __future__ import annotations

import math
import time
import zlib
from typing import Any

import numpy as np

from novaflow.local.emulator import aws_io
from novaflow.local.emulator.emulate_sft import checkpoint_uri, schedule, sft_hyperparameters
from novaflow.local.emulator.job_context import JobContext, RecipeNotSupported
from novaflow.local.emulator.joblog import sft_step_line
from novaflow.local.models.classifier import Adam, CorpusModel, minibatch_steps, softmax

MAX_BIGRAMS_PER_STEP = 2048
STEP_PER_RECIPE_LR = 0.05 / 1e-5
HELD_OUT_SHARE = 20


def corpus(rows: list[dict[str, Any]]) -> list[str]:
    texts = []
    for number, row in enumerate(rows, 1):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RecipeNotSupported(f'ClientError: train row {number}: CPT rows are {{"text": "..."}}')
        texts.append(text)
    return texts


def train_cpt(
    model: CorpusModel, texts: list[str], hp: dict[str, Any], seed: int, on_step: Any = None
) -> list[tuple[int, int, float]]:
    """Optimise ``model`` in place on mini-batches of rows; (step, epoch, loss) per step."""
    rng = np.random.default_rng(seed)
    adam = Adam(model.weights.shape, lr=0.0)
    history = []
    for step, take, started in minibatch_steps(rng, len(texts), hp["batch"], hp["steps"]):
        prev, nxt = model.bigrams([texts[i] for i in take])
        if len(prev) > MAX_BIGRAMS_PER_STEP:
            pick = rng.choice(len(prev), MAX_BIGRAMS_PER_STEP, replace=False)
            prev, nxt = prev[pick], nxt[pick]
        probs = softmax(model.weights[prev])
        loss = float(-np.log(probs[np.arange(len(prev)), nxt] + 1e-12).mean()) if len(prev) else 0.0
        probs[np.arange(len(prev)), nxt] -= 1.0
        grad = np.zeros_like(model.weights)
        np.add.at(grad, prev, probs / max(1, len(prev)))
        lr = schedule(step, hp["steps"], hp["lr"], hp["warmup"], hp["min_lr"])
        adam.step(model.weights, grad, lr=lr * STEP_PER_RECIPE_LR)
        epoch = (step * hp["batch"]) // max(1, len(texts))
        history.append((step, epoch, loss))
        if on_step is not None:
            on_step(step, epoch, lr, loss, time.perf_counter() - started)
    return history


def run_cpt(ctx: JobContext, recipe: dict[str, Any]) -> None:
    texts = corpus(ctx.read_jsonl("train"))
    held_out = texts[::HELD_OUT_SHARE] if len(texts) >= HELD_OUT_SHARE else []
    training = [t for i, t in enumerate(texts) if not held_out or i % HELD_OUT_SHARE]
    hp = sft_hyperparameters(recipe.get("training_config") or {}, len(training), default_batch=256)
    model = CorpusModel.for_corpus(training)
    held_out_bigrams = model.bigrams(held_out)
    before = model.cross_entropy(*held_out_bigrams)
    ctx.line(
        f"CPT on {len(training)} documents ({len(held_out)} held out), vocabulary {len(model.vocab)}, "
        f"max_steps={hp['steps']} global_batch_size={hp['batch']}"
    )

    def on_step(step: int, epoch: int, lr: float, loss: float, seconds: float) -> None:
        ctx.line(sft_step_line(epoch, step, hp["steps"], lr, hp["batch"], loss, seconds, step * hp["batch"]))
        if step % 10 == 0:
            ctx.checkpoint()

    ctx.samples_processed = hp["steps"] * hp["batch"]
    history = train_cpt(model, training, hp, seed=zlib.crc32(ctx.name.encode()), on_step=on_step)
    after = model.cross_entropy(*held_out_bigrams)
    if held_out:
        ctx.line(f"Held-out perplexity: {math.exp(before):.2f} before, {math.exp(after):.2f} after training")
    ctx.checkpoint()
    ctx.run.enter("Uploading")
    uri = checkpoint_uri(ctx.account, ctx.name)
    model.meta.update(
        {
            "method": "cpt",
            "job": ctx.name,
            "base_model": recipe["run"].get("model_name_or_path"),
            "steps": hp["steps"],
            "held_out_perplexity": [round(math.exp(before), 4), round(math.exp(after), 4)] if held_out else None,
        }
    )
    aws_io.save_policy(ctx.url, uri, model)
    csv = "step_number,epoch_number,training_loss\n" + "".join(f"{s},{e},{loss}\n" for s, e, loss in history)
    ctx.write_training_output(uri, csv)
    ctx.line(f"Saved checkpoint to {uri}")
