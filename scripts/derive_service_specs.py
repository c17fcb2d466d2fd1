#!/usr/bin/env python3
"""Regenerate novaflow's service tables (``novaflow/recipes/published/*.json``) from the recipes repository.

Usage:
    python scripts/derive_service_specs.py [CHECKOUT] [--out DIR] [--check]

CHECKOUT is a clone (or bare mirror) of https://github.com/aws/sagemaker-hyperpod-recipes; it defaults to
``$NOVAFLOW_RECIPES_CHECKOUT`` or the mirror at /work/.mirror/aws+sagemaker-hyperpod-recipes/repo. ``--check``
writes nothing and exits 1 when the packaged tables differ from what the checkout gives (for CI or a cron job
that opens an issue when AWS publishes a new release).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from novaflow.errors import NovaflowError
from novaflow.recipes.derive import derive_tables, dump_table, open_checkout, write_tables

DEFAULT_CHECKOUT = "/work/.mirror/aws+sagemaker-hyperpod-recipes/repo"
PACKAGED = Path(__file__).resolve().parents[1] / "novaflow" / "recipes" / "published"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", nargs="?", default=os.environ.get("NOVAFLOW_RECIPES_CHECKOUT", DEFAULT_CHECKOUT))
    parser.add_argument("--out", type=Path, default=PACKAGED, help="directory to write the tables into")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the tables are stale")
    args = parser.parse_args(argv)
    try:
        checkout = open_checkout(args.checkout)
        tables = derive_tables(checkout)
    except NovaflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = [
            name
            for name, content in tables.items()
            if not (args.out / name).exists() or (args.out / name).read_text(encoding="utf-8") != dump_table(content)
        ]
        for name in stale:
            print(f"{args.out / name} differs from {args.checkout} at {checkout.commit}")
        return 1 if stale else 0
    for path in write_tables(tables, args.out):
        print(f"wrote {path} (from {checkout.commit})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
