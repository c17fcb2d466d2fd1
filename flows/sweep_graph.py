"""A sweep's variants as one merged graph: which stages they share, and where each shared stage's work lives.

Each variant is the base parameters with a patch. Its end-to-end graph is built as a run of its own would build
it; the graphs are then merged: a stage whose key, parameters and upstream stages are equal in several variants
is one node (its *signature* says so), so the data is prepared and uploaded once, the baseline evaluated once, and
a grid that varies only RFT settings trains one SFT job. The sweep plans and prices the merged graph; each variant
then runs its own stages in its own flow run (:mod:`flows.sweep_variant`), meeting the others at the shared ones.

Both the sweep and a variant's run (in another process, on a deployment) build this from the same parameters, so
they agree on every node, its name and its place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.end_to_end import RunPlan, run_plan
from flows.params import EndToEndParams, resolve_model
from flows.stages.checks import registry_group
from flows.stages.context import StageContext
from flows.stages.run_log import RunLog
from novaflow.errors import ConfigError
from novaflow.jobs.records import JobRecord
from novaflow.jobs.series import TrainingSeries
from novaflow.runs.context import RunContext
from novaflow.runs.graph import Graph, Stage
from novaflow.sweeps.variants import Variant, apply_patch


class SweepVariant(BaseModel):
    """One variant as the run form takes it: a name and a patch of dot paths in the end-to-end parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., description="Names the variant in the leaderboard, the report and MLflow.")
    patch: dict[str, Any] = Field(
        default_factory=dict,
        description="Dot path -> value, e.g. {'sft.overrides.lr': 1e-5, 'stages': ['sft']}.",
    )


def variant_params(base: EndToEndParams, variants: Sequence[Variant]) -> dict[str, EndToEndParams]:
    """Each variant's parameters: the base with its patch, the sweep's run name (one data prefix, so equal work
    has equal spec hashes), no deployment or clean-up of its own (only the winner is deployed, by the sweep)."""
    if not variants:
        raise ConfigError("sweep: no variants; give --vary PATH=V1,V2 or --variants FILE")
    raw = base.model_dump(mode="json")
    out: dict[str, EndToEndParams] = {}
    for variant in variants:
        patched = apply_patch(raw, variant)
        patched.update(run_name=base.run_name, cleanup=False)
        patched["deploy"]["enabled"] = False
        try:
            out[variant.name] = EndToEndParams.model_validate(patched)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ConfigError(f"variant {variant.name}: {where}: {first.get('msg', 'invalid')}") from None
    return out


@dataclass
class MergedGraph:
    """The variants' graphs as one: each node with the variants that share it, and where each variant's stage is."""

    graph: Graph
    node_of: dict[tuple[str, str], str] = field(default_factory=dict)
    """(variant, stage key) -> node key."""
    key_of: dict[str, str] = field(default_factory=dict)
    """Node key -> the stage key it runs."""
    shared_by: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Node key -> the variants that run it."""
    signature_of: dict[str, str] = field(default_factory=dict)
    """Node key -> its signature (its key, identity and upstream signatures, hashed): where its work lives."""

    def shared(self) -> list[str]:
        """The nodes more than one variant runs."""
        return [node for node, variants in self.shared_by.items() if len(variants) > 1]


def merge_graphs(plans: Mapping[str, RunPlan]) -> MergedGraph:
    """One node per distinct stage: equal key, identity and upstream nodes (its signature). A node every variant
    shares keeps its stage key (``data``, ``baseline``); the others are named ``<variants>/<key>``
    (``lr-1e-05/rft``)."""
    names = list(plans)
    signatures: dict[tuple[str, str], str] = {}

    def signature(variant: str, key: str) -> str:
        if (variant, key) not in signatures:
            graph = plans[variant].graph
            upstream = sorted(signature(variant, up) for up in graph.upstream(key))
            text = "|".join([key, graph.stages[key].identity, *upstream])
            signatures[(variant, key)] = hashlib.sha256(text.encode()).hexdigest()
        return signatures[(variant, key)]

    sharing: dict[str, list[str]] = {}
    for variant in names:
        for key in plans[variant].graph.order():
            sharing.setdefault(signature(variant, key), []).append(variant)
    merged = MergedGraph(Graph([]))
    first_key: dict[str, str] = {}
    for sig, variants in sharing.items():
        first = variants[0]
        key = first_key[sig] = next(k for (v, k), s in signatures.items() if v == first and s == sig)
        node = key if len(variants) == len(names) else f"{'+'.join(variants)}/{key}"
        merged.shared_by[node] = tuple(variants)
        merged.key_of[node] = key
        merged.signature_of[node] = sig
        for variant in variants:
            merged.node_of[(variant, key)] = node
    for sig, variants in sharing.items():
        first, key = variants[0], first_key[sig]
        stage = plans[first].graph.stages[key]
        mapping = {need: merged.node_of[(first, plans[first].graph.producer[need])] for need in stage.needs}
        merged.graph.add(_renamed(stage, merged.node_of[(first, key)], mapping))
    merged.graph.check()
    return merged


def _renamed(stage: Stage, node: str, mapping: Mapping[str, str]) -> Stage:
    def run(ctx: Any, inputs: Mapping[str, Any]) -> Any:
        return stage.run(ctx, {need: inputs[mapping[need]] for need in stage.needs})

    return Stage(node, tuple(mapping[need] for need in stage.needs), run, identity=stage.identity)


@dataclass
class SweepSetup:
    """What the sweep and each variant's run build alike from the sweep's parameters."""

    base: EndToEndParams
    variants: list[Variant]
    params: dict[str, EndToEndParams]
    plans: dict[str, RunPlan]
    merged: MergedGraph

    @property
    def name(self) -> str:
        return self.base.run_name

    def labels(self) -> dict[str, str]:
        return {v.name: v.label() for v in self.variants}


def sweep_setup(base: EndToEndParams, variants: Sequence[SweepVariant] | None) -> SweepSetup:
    """The variants' parameters, their graphs and the merged graph (a bad variant refused by its name)."""
    named = [Variant(v.name, dict(v.patch)) for v in (variants or [])]
    params = variant_params(base, named)
    plans = {name: run_plan(variant) for name, variant in params.items()}
    return SweepSetup(base, named, params, plans, merge_graphs(plans))


@dataclass
class NodeContexts:
    """Each node's stage context: the log of the variants that share it (their jobs, curves), and a place of its
    own named by its signature - ``runs/<sweep>/<signature>`` in S3, ``<work>/<signature>`` locally - so equal work
    lands where it landed before however many variants share it (a re-run, or a sweep with one more variant, finds
    its data and jobs). ``owner`` is the flow run whose job ledger lists the jobs (see
    :attr:`flows.stages.context.StageContext.owner`)."""

    setup: SweepSetup
    run: RunContext
    work: Path
    owner: str | None = None
    logs: dict[tuple[str, ...], StageContext] = field(default_factory=dict)

    def for_node(self, node: str) -> StageContext:
        variants = self.setup.merged.shared_by[node]
        signature = self.setup.merged.signature_of[node]
        if variants not in self.logs:
            first = self.setup.params[variants[0]]
            sweep = self.setup.name
            model = resolve_model(first.model, self.run.settings)
            group = registry_group(first.registry, model, sweep)
            every = tuple(self.setup.plans)
            name = sweep if variants == every else f"{sweep}-{'+'.join(variants)}"
            self.logs[variants] = StageContext(self.run, model, RunLog(name), first.wait, group, self.work, self.owner)
        shared = self.logs[variants]
        place = replace(self.run, run_name=f"{self.setup.name}/{signature[:12]}")
        return replace(shared, run=place, work=self.work / signature[:12])

    def jobs(self, variant: str) -> dict[str, dict[str, JobRecord]]:
        """The jobs of ``variant``'s stages (shared ones included): stage key -> {job key -> record}, from the logs
        of whoever ran them in this process (``sft``, or ``sft-<part>`` for a stage of several jobs)."""
        out: dict[str, dict[str, JobRecord]] = {}
        for key, log in self._logs_of(variant):
            out[key] = {name: rec for name, rec in log.jobs.items() if name == key or name.startswith(f"{key}-")}
        return out

    def curves(self, variant: str) -> dict[str, TrainingSeries]:
        """The training curves of ``variant``'s stages by stage key."""
        return {key: log.curves[key] for key, log in self._logs_of(variant) if key in log.curves}

    def _logs_of(self, variant: str) -> list[tuple[str, RunLog]]:
        merged = self.setup.merged
        found = []
        for key in self.setup.plans[variant].graph.stages:
            ctx = self.logs.get(merged.shared_by[merged.node_of[(variant, key)]])
            if ctx is not None:
                found.append((key, ctx.log))
        return found
