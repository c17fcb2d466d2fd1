"""Time the issue's own-task run: 1,200 arithmetic questions (qid, prompt, answer) and a team's reward file.

Generates the dataset, then runs, in a fresh process with a fresh PREFECT_HOME as a new user would,

    novaflow run end-to-end --local --data qa.jsonl --map query=prompt --map response=answer --map id=qid \\
        --sizes 800,200,200 --reward examples/rewards/numeric_tolerance.py \\
        --eval-task rft_eval --gate-metric rft_eval:aggregate_reward_score

and prints the wall time, the stage times and em / reward per stage (baseline, post-sft, post-rft).

    python bench/own_task.py [--runs 1] [--eval-task rft_eval]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from end_to_end import one_run  # the same fresh-process runner as the case-study benchmark

REWARD = Path(__file__).resolve().parents[1] / "examples" / "rewards" / "numeric_tolerance.py"
"""The team's reward: the example numeric-answer grader (a ``grade`` function novaflow wraps)."""


def write_task(folder: Path, n: int = 1200, seed: int = 13) -> None:
    rng = random.Random(seed)
    forms = ["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Calculate {a} {op} {b} and give the number."]
    with (folder / "qa.jsonl").open("w", encoding="utf-8") as out:
        for i in range(n):
            a, b, op = rng.randint(2, 99), rng.randint(2, 99), rng.choice("+-*")
            answer = {"+": a + b, "-": a - b, "*": a * b}[op]
            row = {"qid": f"q{i:04d}", "prompt": rng.choice(forms).format(a=a, op=op, b=b), "answer": str(answer)}
            out.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--eval-task", default="rft_eval")
    args = parser.parse_args()
    extra = ("--data", "qa.jsonl", "--map", "query=prompt", "--map", "response=answer", "--map", "id=qid")
    extra += ("--sizes", "800,200,200", "--reward", str(REWARD), "--run-name", "arithmetic")
    if args.eval_task != "gen_qa":
        extra += ("--eval-task", args.eval_task)
    if args.eval_task == "rft_eval":
        extra += ("--gate-metric", "rft_eval:aggregate_reward_score")
    print(f"novaflow run end-to-end --local {' '.join(extra)}  ({os.cpu_count()} cores)")
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="novaflow-own-task-") as tmp:
            write_task(Path(tmp))
            wall, stages, _, output = one_run(Path(tmp), extra)
        print(f"run {i + 1}: wall {wall:.1f} s (flow stages {sum(stages.values()):.1f} s)")
        print("  " + "  ".join(f"{k} {v:.1f}" for k, v in stages.items()))
        for line in output.splitlines():
            if line.startswith(("metric ", "em ", "rft_eval:", "judge:winrate", f"{args.eval_task}:", "gate:")):
                print("  " + line.rstrip())


if __name__ == "__main__":
    main()
