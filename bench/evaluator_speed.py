#!/usr/bin/env python3
"""Evaluator speed: score 100k sentences (real BC5CDR sentences repeated, with perturbed
predictions) and check it takes under 10 s.  Prints a table; exits 1 when the bar is missed.

    python bench/evaluator_speed.py [--sentences 100000] [--bar-seconds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=100_000)
    ap.add_argument("--bar-seconds", type=float, default=10.0)
    args = ap.parse_args()
    root = Path(os.environ.get("BIONER_DATA_DIR", REPO.parent / "shared" / "datasets"))
    from bioner.corpus.conll import load_conll
    from bioner.evaluate import evaluate
    from bioner.evaluate.noise import perturb_predictions as perturb

    gold = load_conll(root / "BC5CDR" / "test.txt")
    pred = perturb(gold, 0.08, seed=1, types=["Chemical", "Disease"])
    reps = -(-args.sentences // len(gold))
    gold_all = (gold * reps)[: args.sentences]
    pred_all = (pred * reps)[: args.sentences]
    tokens = sum(len(s.tokens) for s in gold_all)
    started = time.perf_counter()
    report = evaluate(gold_all, pred_all)
    seconds = time.perf_counter() - started
    print("| figure | value | bar |\n|---|---|---|")
    print(f"| sentences | {len(gold_all)} | |")
    print(f"| tokens | {tokens} | |")
    print(f"| gold / predicted spans | {report.n_gold} / {report.n_pred} | |")
    print(f"| evaluate() seconds | {seconds:.2f} | < {args.bar_seconds} |")
    print(f"| sentences / s | {len(gold_all) / seconds:,.0f} | |")
    return 0 if seconds < args.bar_seconds else 1


if __name__ == "__main__":
    sys.exit(main())
