#!/usr/bin/env python3
"""Do span scores mean what they say?  Calibration of trained taggers on BC5CDR test.

For each run: expected calibration error over ten score bins (a span is right when a gold span
has its bounds and type), the reliability table, and — for encoder runs — the largest difference
between torch and ONNX scores for the same spans.  Bars:
  * ECE <= 0.05 for every run;
  * the share of right spans rises with the score (bins with >= 30 spans, allowing 0.02 noise);
  * torch and ONNX give the same spans the same score within 0.01.

    python bench/calibration.py --run runs/bench-encoder-BC5CDR --run runs/bc5cdr-softmax [--limit N]

Prints tables and exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import print_table, use_shared_data

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, action="append", required=True)
    ap.add_argument("--dataset", default="BC5CDR")
    ap.add_argument("--limit", type=int, default=None, help="first N test sentences")
    ap.add_argument("--no-onnx", action="store_true", help="skip the torch/ONNX comparison")
    args = ap.parse_args()
    use_shared_data()
    from bioner.cli import quiet_libraries
    from bioner.corpus.conll import read_conll
    from bioner.corpus.datasets import resolve_dataset
    from bioner.evaluate.calibration import calibration, scored_outcomes
    from bioner.models import load_tagger
    from bioner.models.encoder_tagger import EncoderTagger
    from bioner.models.folder import model_folder
    from bioner.models.onnx_backend import ONNX_FILE, export_onnx

    quiet_libraries()
    gold = list(read_conll(resolve_dataset(args.dataset).path("test")))[: args.limit]
    tokens = [s.tokens for s in gold]
    missed = []
    for run in args.run:
        tagger = load_tagger(run, backend="torch")
        tags, scores = tagger.predict_with_scores(tokens)
        if scores is None:
            print(f"{run}: this tagger gives no span scores", file=sys.stderr)
            missed.append(f"{run.name}: no scores")
            continue
        cal = calibration(scored_outcomes([s.tags or [] for s in gold], tags, scores))
        temperature = getattr(tagger, "temperature", 1.0)
        print(f"\n## {run} ({tagger.kind}, {'CRF' if getattr(tagger.model, 'crf', None) is not None else 'softmax'},"
              f" temperature {temperature:g})\n")
        print(cal.to_markdown())
        bins = [b for b in cal.bins if b.n >= 30]
        rising = all(b.accuracy >= a.accuracy - 0.02 for a, b in zip(bins, bins[1:]))
        rows = [("ECE (10 bins)", f"{cal.ece:.4f}", "<= 0.05"),
                ("accuracy rises with the score", "yes" if rising else "no", "yes")]
        if cal.ece > 0.05:
            missed.append(f"{run.name}: ECE")
        if not rising:
            missed.append(f"{run.name}: reliability not rising")
        if isinstance(tagger, EncoderTagger) and not args.no_onnx:
            folder = model_folder(run)
            if not (folder / ONNX_FILE).is_file():
                export_onnx(tagger.model.backbone, folder, token_types=tagger.shapes)
            onnx = load_tagger(run, backend="onnx-fp32")
            o_tags, o_scores = onnx.predict_with_scores(tokens)
            same = [(scores[k][key], o_scores[k][key]) for k in range(len(tokens)) if o_tags[k] == tags[k]
                    for key in scores[k]]
            worst = max((abs(a - b) for a, b in same), default=0.0)
            rows.append(("torch vs ONNX fp32: largest score difference", f"{worst:.5f} over {len(same)} spans",
                         "<= 0.01"))
            if worst > 0.01:
                missed.append(f"{run.name}: torch/ONNX scores")
        print()
        print_table(rows)
    if missed:
        print("BARS MISSED: " + ", ".join(missed), file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
