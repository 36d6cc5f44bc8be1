#!/usr/bin/env python3
"""Encoder accuracy benchmark: train the default MiniLM on a full corpus, select on dev,
report test strict F1 with a bootstrap interval, training time and epochs.

    python bench/encoder_accuracy.py --dataset BC5CDR            # bars: F1 >= 0.84 in <= 45 min,
                                                                 # an epoch <= 80 s (issue 18)
    python bench/encoder_accuracy.py --dataset NCBI-disease --bar 0

Reads $BIONER_DATA_DIR (default ../shared/datasets beside the checkout).  Prints a Markdown
table and exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import print_table, use_shared_data

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="BC5CDR")
    ap.add_argument("--bar", type=float, default=0.84, help="minimum test strict F1 (0: no bar)")
    ap.add_argument("--budget-minutes", type=float, default=45.0, help="training time budget")
    ap.add_argument("--epoch-seconds", type=float, default=None,
                    help="bar on the mean training seconds per full epoch (default: 80 on BC5CDR, else none)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("overrides", nargs="*", help="key=value run-config overrides")
    args = ap.parse_args()
    use_shared_data()

    from bioner.cli import quiet_libraries
    from bioner.config import build_config
    from bioner.recipes.train import train

    quiet_libraries()
    out = args.out or REPO / "runs" / f"bench-encoder-{args.dataset}"
    overrides = [f"data.dataset={args.dataset}", f"train.max_train_seconds={args.budget_minutes * 60}",
                 *args.overrides]
    cfg = build_config("cpu", overrides=overrides)
    started = time.perf_counter()
    result = train(cfg, out, resume=args.resume)
    wall = time.perf_counter() - started
    report = result.test_report
    if report is None:
        print(f"{args.dataset} has no test split", file=sys.stderr)
        return 1
    import torch

    from bioner.bench.cost import cpu_peak_flops
    from bioner.models.runtime import pick_device, resolve_precision

    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    full = [e for e in epochs if "stopped" not in e]  # an epoch cut by the budget is not a full one
    seconds = [b["train_seconds"] - a["train_seconds"] for a, b in zip([{"train_seconds": 0.0}, *full], full)]
    per_epoch = sum(seconds) / len(seconds) if seconds else float("nan")
    epoch_bar = args.epoch_seconds if args.epoch_seconds is not None else (80.0 if args.dataset == "BC5CDR" else 0)
    precision = resolve_precision(cfg.train.precision, pick_device())
    peak, basis = cpu_peak_flops(cfg.train.threads or torch.get_num_threads(), precision)
    flops = [e["train_flops_per_s"] for e in full if e.get("train_flops_per_s")]
    strict = report.overall["strict"]
    lo, hi = (report.ci or {}).get("strict_f1", (float("nan"), float("nan")))
    rows = [
        ("dataset", args.dataset, ""),
        ("test strict F1", f"{strict.f1:.4f} [{lo:.4f}, {hi:.4f}]", f">= {args.bar}" if args.bar else "-"),
        ("test strict P / R", f"{strict.precision:.4f} / {strict.recall:.4f}", ""),
        ("test partial F1", f"{report.overall['partial'].f1:.4f}", ""),
        ("strict F1 by length 1 / 2 / 3+", " / ".join(f"{report.by_length[b]['strict'].f1:.4f}" for b in ("1", "2", "3+")), ""),
        ("best dev strict F1", f"{result.best_dev_f1:.4f}" if result.best_dev_f1 is not None else "no dev split", ""),
        ("epochs run (best)", f"{result.epochs_run} ({result.best_epoch})", ""),
        ("training minutes (loop)", f"{result.train_seconds / 60:.1f}", f"<= {args.budget_minutes}"),
        ("seconds per full epoch (mean), precision", f"{per_epoch:.1f}, {precision}",
         f"<= {epoch_bar:.0f}" if epoch_bar else "-"),
        ("dev strict F1 by epoch", ", ".join(f"{e['dev']['strict']:.4f}" for e in epochs if "dev" in e), ""),
        ("training sub-words/s, model FLOP/s / stated peak",
         f"{sum(e['train_tokens_per_s'] for e in full) / max(1, len(full)):.0f}, "
         + (f"{sum(flops) / len(flops) / peak:.3f}" if flops and peak else "-"), basis),
        ("wall minutes (with dev evals, test)", f"{wall / 60:.1f}", ""),
    ]
    print_table(rows)
    (out / "bench.json").write_text(json.dumps({
        "dataset": args.dataset, "test_strict_f1": strict.f1, "ci": [lo, hi],
        "best_dev_f1": result.best_dev_f1, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "train_seconds": result.train_seconds, "wall_seconds": wall, "overrides": args.overrides,
    }, indent=1))
    failed = (args.bar and strict.f1 < args.bar) or result.train_seconds > args.budget_minutes * 60 \
        or bool(epoch_bar and not per_epoch <= epoch_bar)
    if failed:
        print("BAR MISSED", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
