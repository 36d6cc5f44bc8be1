"""Corpus statistics: the numbers a user checks before trusting a benchmark.

Entity lengths are bucketed 1, 2 and >=3 tokens, the buckets of the reference study; an
entity is a maximal B-/I- run of one type as decoded by :func:`tags_to_spans` (repairs counted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bioner.corpus.bio import BioRepairs, tags_to_spans
from bioner.corpus.conll import read_conll
from bioner.corpus.labels import LENGTH_BUCKETS, length_bucket
from bioner.corpus.types import Sentence


@dataclass(slots=True)
class SplitStats:
    sentences: int = 0
    tokens: int = 0
    entities: int = 0
    types: Counter[str] = field(default_factory=Counter)
    lengths: Counter[str] = field(default_factory=Counter)  # "1", "2", "3+"
    max_length: int = 0
    max_sentence_tokens: int = 0
    repairs: BioRepairs = field(default_factory=BioRepairs)

    def share(self, bucket: str) -> float:
        return self.lengths[bucket] / self.entities if self.entities else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "sentences": self.sentences,
            "tokens": self.tokens,
            "entities": self.entities,
            "types": dict(self.types.most_common()),
            "length_counts": {b: self.lengths[b] for b in LENGTH_BUCKETS},
            "length_shares": {b: round(self.share(b), 6) for b in LENGTH_BUCKETS},
            "share_3plus": round(self.share("3+"), 6),
            "max_entity_length": self.max_length,
            "max_sentence_tokens": self.max_sentence_tokens,
            "bio_repairs": self.repairs.to_dict(),
        }


def split_stats(sentences: Iterable[Sentence]) -> SplitStats:
    stats = SplitStats()
    for sent in sentences:
        stats.sentences += 1
        stats.tokens += len(sent.tokens)
        stats.max_sentence_tokens = max(stats.max_sentence_tokens, len(sent.tokens))
        if sent.tags is None:
            continue
        for span in tags_to_spans(sent.tags, repairs=stats.repairs):
            stats.entities += 1
            stats.types[span.label] += 1
            stats.lengths[length_bucket(span.length)] += 1
            stats.max_length = max(stats.max_length, span.length)
    return stats


def file_stats(path: Path) -> SplitStats:
    return split_stats(read_conll(path))


def stats_markdown(name: str, per_split: dict[str, SplitStats]) -> str:
    """A table in the layout of the shared datasets' STATS.md, plus the repair column."""
    lines = [
        "| dataset | split | sentences | tokens | entities | entity types (count) "
        "| len 1 | len 2 | len >=3 | max len | BIO repairs |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for split, s in per_split.items():
        types = ", ".join(f"{t} ({n})" for t, n in sorted(s.types.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"| {name} | {split} | {s.sentences} | {s.tokens} | {s.entities} | {types} "
            f"| {100 * s.share('1'):.1f}% | {100 * s.share('2'):.1f}% | {100 * s.share('3+'):.1f}% "
            f"| {s.max_length} | {s.repairs.total} |"
        )
    return "\n".join(lines)
