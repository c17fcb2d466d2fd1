"""Sweep variants: --vary grids, --variants files, names, and patches applied to the end-to-end parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.params import EndToEndParams
from novaflow.errors import ConfigError
from novaflow.sweeps.variants import Variant, apply_patch, grid, load_variants, parse_vary, split_values, typed


def test_values_are_typed_as_yaml_types_them() -> None:
    assert [typed(v) for v in ("1e-5", "64", "0.5", "true", "SMTJ", "[sft, rft]", "-3")] == [
        1e-5,
        64,
        0.5,
        True,
        "SMTJ",
        ["sft", "rft"],
        -3,
    ]
    assert split_values("[sft],[sft,rft], 'a,b'") == ["[sft]", "[sft,rft]", "'a,b'"]


def test_several_varies_make_a_grid_with_readable_deterministic_names() -> None:
    variants = grid(parse_vary(["sft.overrides.lr=1e-5,2e-5", "rft.overrides.lora_alpha=32,64"]))
    assert [(v.name, v.patch) for v in variants] == [
        ("lr-1e-05-lora-alpha-32", {"sft.overrides.lr": 1e-5, "rft.overrides.lora_alpha": 32}),
        ("lr-1e-05-lora-alpha-64", {"sft.overrides.lr": 1e-5, "rft.overrides.lora_alpha": 64}),
        ("lr-2e-05-lora-alpha-32", {"sft.overrides.lr": 2e-5, "rft.overrides.lora_alpha": 32}),
        ("lr-2e-05-lora-alpha-64", {"sft.overrides.lr": 2e-5, "rft.overrides.lora_alpha": 64}),
    ]
    assert variants[0].label() == "sft.overrides.lr=1e-05, rft.overrides.lora_alpha=32"
    # Paths ending alike are named by their stage; stage lists and decimals get names that jobs accept.
    alike = grid(parse_vary(["sft.overrides.lr=0.0001", "rft.overrides.lr=3e-6", "stages=[sft],[sft,rft]"]))
    assert [v.name for v in alike] == [
        "sft-lr-0p0001-rft-lr-3e-06-stages-sft",
        "sft-lr-0p0001-rft-lr-3e-06-stages-sft-rft",
    ]


def test_bad_varies_are_one_line_each() -> None:
    with pytest.raises(ConfigError, match=r"^--vary 'sft.overrides.lr': expected PATH=V1,V2,\.\.\. such as"):
        parse_vary(["sft.overrides.lr"])
    with pytest.raises(ConfigError, match=r"^--vary data.sft_rows: given twice; put all its values in one --vary$"):
        parse_vary(["data.sft_rows=100", "data.sft_rows=200"])
    with pytest.raises(ConfigError, match="an empty value"):
        parse_vary(["data.sft_rows=100,,200"])


def test_a_variants_file_of_named_patches(tmp_path: Path) -> None:
    path = tmp_path / "variants.yaml"
    path.write_text(
        "- name: small-data\n  patch: {data.sft_rows: 1000}\n"
        "- patch: {sft: {overrides: {lr: 2.0e-5}}, stages: [sft]}\n",
        encoding="utf-8",
    )
    assert load_variants(path) == [
        Variant("small-data", {"data.sft_rows": 1000}),
        Variant("lr-2e-05-stages-sft", {"sft.overrides.lr": 2e-5, "stages": ["sft"]}),
    ]
    path.write_text("- name: Big Data\n  patch: {data.sft_rows: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"variants.yaml: item 1: name 'Big Data' must be lowercase letters"):
        load_variants(path)
    path.write_text(
        "- name: a\n  patch: {data.sft_rows: 1}\n- name: a\n  patch: {data.sft_rows: 2}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"two variants are named 'a' \(data.sft_rows=1 and data.sft_rows=2\)"):
        load_variants(path)
    path.write_text("- name: a\n  set: {data.sft_rows: 1}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"item 1: expected \{name: \.\.\., patch: \{PATH: VALUE\}\}$"):
        load_variants(path)


def test_a_patch_sets_known_parameters_and_refuses_unknown_paths_by_variant() -> None:
    base = EndToEndParams().model_dump(mode="json")
    variant = Variant(
        "v1", {"sft.overrides.lr": 2e-5, "data.sft_rows": 1000, "stages": ["sft"], "sft.platform": "SERVERLESS"}
    )
    patched = apply_patch(base, variant)
    assert patched["sft"]["overrides"] == {"lr": 2e-5}
    assert (patched["data"]["sft_rows"], patched["stages"], patched["sft"]["platform"]) == (1000, ["sft"], "SERVERLESS")
    assert base["sft"]["overrides"] == {} and base["data"]["sft_rows"] == 3500  # the base is not touched
    EndToEndParams.model_validate(patched)  # still valid parameters
    with pytest.raises(ConfigError) as info:
        apply_patch(base, Variant("v2", {"data.sft_row": 10}))
    assert str(info.value).startswith("variant v2: data.sft_row: no parameter 'sft_row' in data (known: ")
    with pytest.raises(ConfigError, match=r"^variant v3: data.sft_rows.x: data.sft_rows is a value, not a group"):
        apply_patch(base, Variant("v3", {"data.sft_rows.x": 1}))
