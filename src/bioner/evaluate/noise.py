"""Synthetic predictions: gold spans with controlled errors, for checking the evaluator against
its oracles and for timing it on realistic inputs (never for reporting a system's score)."""

from __future__ import annotations

import random

from bioner.corpus.bio import spans_to_tags, tags_to_spans
from bioner.corpus.types import Sentence, Span


def perturb_predictions(sentences: list[Sentence], rate: float, seed: int, types: list[str]) -> list[Sentence]:
    """Valid-IOB2 predictions with boundary shifts, type swaps, misses and spurious spans."""
    rng = random.Random(seed)
    out = []
    for s in sentences:
        if s.tags is None:
            raise ValueError(f"{s.where} has no tags to perturb")
        n = len(s.tokens)
        spans: list[Span] = []
        for sp in tags_to_spans(s.tags):
            r = rng.random()
            if r < rate:
                continue  # missed
            if r < 2 * rate:
                sp = Span(sp.start, sp.end, rng.choice([t for t in types if t != sp.label] or types))
            elif r < 3 * rate:
                start = max(0, min(sp.start + rng.choice([-1, 1]), sp.end - 1))
                end = max(start + 1, min(n, sp.end + rng.choice([-1, 0, 1])))
                sp = Span(start, end, sp.label)
            spans.append(sp)
        if n > 2 and rng.random() < rate:
            i = rng.randrange(n - 1)
            spans.append(Span(i, i + rng.choice([1, 2]), rng.choice(types)))
        kept: list[Span] = []
        for sp in sorted(spans):
            if not kept or sp.start >= kept[-1].end:
                kept.append(sp)
        out.append(Sentence(s.id, s.tokens, spans_to_tags(kept, n), source=s.source))
    return out
