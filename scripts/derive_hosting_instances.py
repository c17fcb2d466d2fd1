#!/usr/bin/env python3
"""Regenerate ``novaflow/deploy/hosting_instances.json``: accelerators, vCPUs and memory of every instance type the
Nova hosting tiers (``novaflow/deploy/tiers.py``) name, from EC2's ``DescribeInstanceTypes``.

Usage:
    python scripts/derive_hosting_instances.py [--source ec2|moto] [--check]

``--source ec2`` (default) asks the EC2 API of your account (``ec2:DescribeInstanceTypes``, read-only);
``--source moto`` reads the copy of the same API's answers that moto publishes in its package
(``moto/ec2/resources/instance_types.json.gz``), so it works offline. ``--check`` writes nothing and exits 1 when
the packaged table differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from novaflow.deploy.hosting import TABLE_PATH, hosting_instance_types


def _from_ec2(names: list[str]) -> tuple[dict[str, dict[str, Any]], str]:
    from novaflow.aws import get_client
    from novaflow.settings import load_settings

    ec2 = get_client("ec2", settings=load_settings())
    found = ec2.describe_instance_types(InstanceTypes=[n.removeprefix("ml.") for n in names])["InstanceTypes"]
    return {"ml." + item["InstanceType"]: item for item in found}, "EC2 DescribeInstanceTypes"


def _from_moto(names: list[str]) -> tuple[dict[str, dict[str, Any]], str]:
    import moto
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    wanted = {n.removeprefix("ml.") for n in names}
    source = f"moto {moto.__version__} ec2/resources/instance_types.json.gz (EC2 DescribeInstanceTypes answers)"
    return {"ml." + k: v for k, v in INSTANCE_TYPES.items() if k in wanted}, source


def derive(source: str) -> dict[str, Any]:
    names = hosting_instance_types()
    items, where = (_from_moto if source == "moto" else _from_ec2)(names)
    missing = sorted(set(names) - set(items))
    if missing:
        raise SystemExit(f"no EC2 data for {', '.join(missing)}")
    instances = {
        name: {
            "accelerators": sum(int(g.get("Count", 0)) for g in (items[name].get("GpuInfo") or {}).get("Gpus", [])),
            "vcpus": int(items[name]["VCpuInfo"]["DefaultVCpus"]),
            "memory_mib": int(items[name]["MemoryInfo"]["SizeInMiB"]),
        }
        for name in names
    }
    return {"source": where, "instances": instances}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("ec2", "moto"), default="ec2")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    table = derive(args.source)
    text = json.dumps(table, indent=2, sort_keys=True) + "\n"
    if args.check:
        packaged = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
        if packaged["instances"] != table["instances"]:
            print(f"{TABLE_PATH} differs from {table['source']}", file=sys.stderr)
            return 1
        return 0
    TABLE_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE_PATH} ({len(table['instances'])} instance types, from {table['source']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
