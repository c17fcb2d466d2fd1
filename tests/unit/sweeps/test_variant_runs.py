"""How a sweep's variants run: the idempotency key of a variant's deployment run, the launches the sweep plans, and
the in-process meeting point where subflows share a stage (one run, its output to all, never two at once)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from flows.params import EndToEndParams
from flows.sweep_graph import SweepVariant, sweep_setup
from novaflow.sweeps.runs import SingleFlight, idempotency_key, params_hash, plan_launches

BASE = EndToEndParams(run_name="lr-sweep")
VARIANTS = [
    SweepVariant(name="lr-1e-05", patch={"rft.overrides.lr": 1e-5}),
    SweepVariant(name="lr-2e-05", patch={"rft.overrides.lr": 2e-5}),
]


def _resolved() -> dict[str, dict[str, object]]:
    setup = sweep_setup(BASE, VARIANTS)
    return {name: params.model_dump(mode="json") for name, params in setup.params.items()}


def test_the_key_is_the_sweep_the_variant_and_the_hash_of_its_parameters() -> None:
    params = _resolved()
    key = idempotency_key("lr-sweep", "lr-1e-05", params["lr-1e-05"])
    assert key == f"novaflow-sweep/lr-sweep/lr-1e-05/{params_hash(params['lr-1e-05'])}"
    assert len(key.rsplit("/", 1)[1]) == 16
    # the same sweep again (a retry, a re-run, the parameters in another key order): the same key
    reordered = dict(reversed(list(params["lr-1e-05"].items())))
    assert idempotency_key("lr-sweep", "lr-1e-05", reordered) == key
    assert idempotency_key("lr-sweep", "lr-1e-05", _resolved()["lr-1e-05"]) == key
    # other work is another key: another variant, another sweep, one parameter changed
    assert idempotency_key("lr-sweep", "lr-2e-05", params["lr-2e-05"]) != key
    assert idempotency_key("other-sweep", "lr-1e-05", params["lr-1e-05"]) != key
    changed = sweep_setup(BASE.model_copy(update={"data": BASE.data.model_copy(update={"sft_rows": 900})}), VARIANTS)
    assert idempotency_key("lr-sweep", "lr-1e-05", changed.params["lr-1e-05"].model_dump(mode="json")) != key


def test_the_plan_launches_one_run_per_variant_with_the_whole_sweep_and_unhashed_extras() -> None:
    params = _resolved()
    base = BASE.model_dump(mode="json")
    variants = [v.model_dump() for v in VARIANTS]
    launches = plan_launches("lr-sweep", base, variants, params, extra={"started_at": 1.5, "aws_credentials": "team"})
    assert [launch.variant for launch in launches] == ["lr-1e-05", "lr-2e-05"]
    assert [launch.flow_run_name for launch in launches] == ["lr-sweep-lr-1e-05", "lr-sweep-lr-2e-05"]
    first = launches[0]
    assert first.idempotency_key == idempotency_key("lr-sweep", "lr-1e-05", params["lr-1e-05"])
    assert first.parameters == {
        "base": base,
        "variants": variants,
        "variant": "lr-1e-05",
        "started_at": 1.5,
        "aws_credentials": "team",
    }
    # the sweep's clock and credentials are not work: a sweep re-run later with them changed has the same keys
    again = plan_launches("lr-sweep", base, variants, params, extra={"started_at": 99.0, "aws_credentials": None})
    assert [a.idempotency_key for a in again] == [a.idempotency_key for a in launches]
    # a variant added later leaves the others' keys alone: their runs are found again, only the new one starts
    grown = [*variants, {"name": "lr-3e-05", "patch": {"rft.overrides.lr": 3e-5}}]
    more = sweep_setup(BASE, [SweepVariant(**v) for v in grown])  # type: ignore[arg-type]
    more_params = {name: p.model_dump(mode="json") for name, p in more.params.items()}
    keys = [launch.idempotency_key for launch in plan_launches("lr-sweep", base, grown, more_params)]
    assert keys[:2] == [a.idempotency_key for a in launches] and len(set(keys)) == 3


def test_the_variants_share_the_data_the_baseline_and_sft_and_only_rft_is_their_own() -> None:
    merged = sweep_setup(BASE, VARIANTS).merged
    assert {"data", "baseline", "sft", "post-sft", "reward-check", "reward-lambda"} <= set(merged.shared())
    own = sorted(node for node, variants in merged.shared_by.items() if len(variants) == 1)
    assert own == sorted(f"{v.name}/{key}" for v in VARIANTS for key in ("compare", "post-rft", "rft"))
    # every variant's run, in whatever process, names a shared stage's place the same way
    assert merged.signature_of["sft"] == sweep_setup(BASE, VARIANTS).merged.signature_of["sft"]


def test_single_flight_runs_a_shared_stage_once_and_hands_its_output_to_everyone() -> None:
    single = SingleFlight()
    calls: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def stage() -> str:
        calls.append(threading.current_thread().name)
        inside.set()
        release.wait(5)
        return "checkpoint"

    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(single.run, "sft-signature", stage)
        assert inside.wait(5)
        others = [pool.submit(single.run, "sft-signature", stage) for _ in range(2)]
        time.sleep(0.2)
        assert not any(o.done() for o in others)  # they wait for the one run, they do not start a second
        release.set()
        assert [first.result(5), *(o.result(5) for o in others)] == ["checkpoint"] * 3
    assert len(calls) == 1
    assert single.run("sft-signature", stage) == "checkpoint" and len(calls) == 1  # a late comer too
    assert single.run("rft-signature", lambda: "other") == "other"  # another key is other work


def test_single_flight_hands_a_failure_to_every_waiter() -> None:
    single = SingleFlight()

    def broken() -> str:
        raise RuntimeError("baseline job failed: ClientError")

    with pytest.raises(RuntimeError, match="baseline job failed"):
        single.run("baseline", broken)
    with pytest.raises(RuntimeError, match="baseline job failed"):
        single.run("baseline", lambda: "never run")


def test_the_cli_refuses_a_variant_run_mode_it_cannot_honour_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from novaflow.cli import app

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    vary = ["--vary", "rft.overrides.lr=1e-5,2e-5"]
    typo = CliRunner().invoke(app, ["run", "sweep", *vary, "--variant-runs", "threads"])
    assert typo.exit_code == 2 and "'threads': use subflow or deployment" in typo.output
    # the variants' runs would wait for workers that cannot reach this process's embedded AWS (or that no
    # temporary server has): refused before anything starts
    local = CliRunner().invoke(app, ["run", "sweep", "--local", *vary, "--variant-runs", "deployment"])
    assert local.exit_code == 2 and "deployment runs the variants on the workers of a work pool" in local.output
    assert "Traceback" not in typo.output + local.output
