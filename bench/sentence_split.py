#!/usr/bin/env python3
"""Sentence splitting on raw text: how many gold sentences come out whole, and at what cost.

    python bench/sentence_split.py [--sentences 1000] [--compare-pysbd]

For each corpus, the first --sentences test sentences are detokenized (no space before closing
punctuation, none after an opening bracket), joined with spaces into paragraphs of ten, and split
by ``bioner.corpus.text.split_sentences``.  A gold sentence counts as recovered when one split
sentence has exactly its character span.  The corpora's own sentence splits are the reference,
so a few disagreements are the corpora's (headings, list items).  ``--compare-pysbd`` runs the
same rules over pysbd's sentences instead of blingfire's: bioner's fallback where blingfire's
native library does not load, and its splitter before.  Bars: recovered ≥ 0.90 on average over
the corpora, and splitting (with tokenizing) ≤ 0.1 ms a sentence.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from itertools import islice

from common import print_table, use_shared_data

CORPORA = ["BC5CDR", "NCBI-disease", "BC2GM", "BioRED", "ChemProt", "JNLPBA"]
BAR_RECOVERED, BAR_MS = 0.90, 0.1


def detokenize(tokens: list[str]) -> str:
    text = re.sub(r" ([.,;:%)\]])", r"\1", " ".join(tokens))
    return re.sub(r"([(\[]) ", r"\1", text)


def paragraphs(sentences: list[str]) -> list[tuple[str, list[tuple[int, int]]]]:
    """Paragraphs of ten sentences and each gold sentence's character span in its paragraph."""
    out = []
    for k in range(0, len(sentences), 10):
        text, gold = "", []
        for sent in sentences[k:k + 10]:
            text += " " if text else ""
            gold.append((len(text), len(text) + len(sent)))
            text += sent
        out.append((text, gold))
    return out


def measure(paras: list[tuple[str, list[tuple[int, int]]]], repeats: int) -> tuple[float, float]:
    """(share of gold sentences recovered, best ms per sentence of splitting + tokenizing)."""
    from bioner.corpus.text import text_to_sentences

    n = sum(len(gold) for _, gold in paras)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        split = [text_to_sentences(text) for text, _ in paras]
        best = min(best, time.perf_counter() - start)
    found = 0
    for (_, gold), sents in zip(paras, split):
        spans = {(s.offsets[0][0], s.offsets[-1][1]) for s in sents if s.offsets}
        found += sum(1 for g in gold if g in spans)
    return found / n, best / n * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compare-pysbd", action="store_true")
    args = ap.parse_args()
    use_shared_data()
    from bioner.corpus import text as splitter
    from bioner.corpus.conll import read_conll
    from bioner.corpus.datasets import resolve_dataset
    from bioner.errors import BionerError

    splitters = ["blingfire", "pysbd"] if args.compare_pysbd else ["blingfire"]
    rows, recovered, costs = [], [], []
    for name in CORPORA:
        try:
            sents = [detokenize(s.tokens) for s in islice(read_conll(resolve_dataset(name).path("test")),
                                                          args.sentences)]
        except BionerError as err:
            rows.append((name, f"skipped: {err}", "-"))
            continue
        paras = paragraphs(sents)
        for label in splitters:
            if label == "pysbd":  # what bioner falls back to where blingfire does not load
                sys.modules["blingfire"] = None  # type: ignore[assignment]
            splitter._splitter.cache_clear()
            try:
                measure(paras[:3], 1)  # warm-up (pysbd compiles its patterns)
                share, ms = measure(paras, args.repeats)
            finally:
                if label == "pysbd":
                    del sys.modules["blingfire"]
                splitter._splitter.cache_clear()
            if label == "blingfire":
                recovered.append(share)
                costs.append(ms)
            rows.append((f"{name} ({len(sents)} sentences), {label}", f"recovered {share:.4f}, {ms:.3f} ms a sentence",
                         "-"))
    if not recovered:
        print_table(rows)
        print("no corpus found: set BIONER_DATA_DIR", file=sys.stderr)
        return 1
    mean_share, worst_ms = sum(recovered) / len(recovered), max(costs)
    ok_share, ok_ms = mean_share >= BAR_RECOVERED, worst_ms <= BAR_MS
    rows.append(("mean share recovered (blingfire)", f"{mean_share:.4f}",
                 f"≥ {BAR_RECOVERED} — {'met' if ok_share else 'MISSED'}"))
    rows.append(("slowest corpus, ms a sentence (blingfire)", f"{worst_ms:.3f}",
                 f"≤ {BAR_MS} — {'met' if ok_ms else 'MISSED'}"))
    print_table(rows)
    return 0 if ok_share and ok_ms else 1


if __name__ == "__main__":
    sys.exit(main())
