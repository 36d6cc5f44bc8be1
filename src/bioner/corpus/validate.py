"""Find every problem in a corpus file, with ``path:line``, instead of stopping at the first."""

from __future__ import annotations

from pathlib import Path

from bioner.corpus.conll import ConllLayout, iter_conll
from bioner.corpus.labels import OUTSIDE, entity_type
from bioner.errors import CorpusFormatError


def validate_conll(path: str | Path, layout: ConllLayout | None = None) -> list[CorpusFormatError]:
    """Format problems plus invalid IOB2 transitions (an ``I-X`` that continues no ``X``)."""
    problems: list[CorpusFormatError] = []
    for item in iter_conll(path, layout):
        if isinstance(item, CorpusFormatError):
            problems.append(item)
            continue
        if item.tags is None or item.source is None:
            continue
        first_line = int(item.source.rsplit(":", 1)[1])
        prev = OUTSIDE
        for i, tag in enumerate(item.tags):
            if tag.startswith("I-") and (prev == OUTSIDE or entity_type(prev) != entity_type(tag)):
                what = "sentence start" if i == 0 else f"'{prev}'"
                problems.append(CorpusFormatError(
                    path, first_line + i,
                    f"invalid IOB2: got '{tag}' after {what} (would be repaired to 'B-{entity_type(tag)}')",
                ))
            prev = tag
    return problems
