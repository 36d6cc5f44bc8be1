#!/usr/bin/env python3
"""Raw-text tagging throughput: split, tokenize, tag and map back offsets on CPU.

    python bench/tag_text_speed.py --model RUN_DIR [--sentences 1000]

The text is BC5CDR test sentences joined with spaces, as paragraphs of 10 sentences.
Prints characters/s, sentences/s and spans found; no bar (a figure for the closing note).
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import islice
from pathlib import Path

from common import use_shared_data

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--sentences", type=int, default=1000)
    args = ap.parse_args()
    use_shared_data()
    from bioner.cli import quiet_libraries
    from bioner.corpus.conll import read_conll
    from bioner.corpus.datasets import resolve_dataset
    from bioner.models import load_tagger

    quiet_libraries()
    sents = [" ".join(s.tokens) for s in islice(read_conll(resolve_dataset("BC5CDR").path("test")), args.sentences)]
    text = "\n\n".join(" ".join(sents[k:k + 10]) for k in range(0, len(sents), 10))
    tagger = load_tagger(args.model, backend="torch")
    tagger.tag_text(text[:2000])  # warm-up
    start = time.perf_counter()
    spans = tagger.tag_text(text)
    seconds = time.perf_counter() - start
    assert all(text[s.start:s.end] == s.text for s in spans)
    print("| figure | value |\n|---|---|")
    print(f"| characters | {len(text):,} |\n| seconds | {seconds:.2f} |")
    print(f"| characters/s | {len(text) / seconds:,.0f} |\n| sentences/s (input) | {len(sents) / seconds:.1f} |")
    print(f"| spans | {len(spans)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
