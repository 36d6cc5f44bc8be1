"""The label set and tag scheme, defined once.

What a BIO tag looks like, which entity types a tag list names, the order of the model's
labels (``O`` then ``B-``/``I-`` per sorted type), the types a generative prompt lists, and the
entity-length buckets of the reference study (1, 2, >=3 tokens) all live here, so training,
inference, statistics and the evaluator cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bioner.errors import ModelError

OUTSIDE = "O"
TAG_PATTERNS = {
    "iob2": re.compile(r"^(O|[BI]-\S.*)$"),
    "iobes": re.compile(r"^(O|[BIES]-\S.*)$"),
    "bilou": re.compile(r"^(O|[BILU]-\S.*)$"),
}
LENGTH_BUCKETS = ("1", "2", "3+")


def is_valid_tag(tag: str, scheme: str = "iob2") -> bool:
    return TAG_PATTERNS[scheme].match(tag) is not None


def entity_type(tag: str) -> str:
    """``B-Chemical`` → ``Chemical``; ``O`` → ``""``."""
    return "" if tag == OUTSIDE else tag[2:]


def types_of(tags: Iterable[str]) -> set[str]:
    """Entity types named by a tag sequence (without the ``B-``/``I-`` prefixes)."""
    return {t[2:] for t in tags if t != OUTSIDE}


def length_bucket_index(length: int) -> int:
    """0, 1, 2 for entities of 1, 2, >=3 tokens."""
    return min(length, 3) - 1


def length_bucket(length: int) -> str:
    return LENGTH_BUCKETS[length_bucket_index(length)]


@dataclass(frozen=True, slots=True)
class LabelSet:
    """The model's label list: ``O`` first, then ``B-T``, ``I-T`` for each type in sorted order."""

    types: tuple[str, ...]

    @classmethod
    def from_types(cls, types: Iterable[str]) -> "LabelSet":
        return cls(tuple(sorted(set(types))))

    @classmethod
    def from_tags(cls, tags: Iterable[str]) -> "LabelSet":
        return cls.from_types(types_of(tags))

    @property
    def tags(self) -> list[str]:
        return [OUTSIDE] + [f"{p}-{t}" for t in self.types for p in ("B", "I")]

    def __len__(self) -> int:
        return 1 + 2 * len(self.types)

    @classmethod
    def from_saved(cls, labels: object, where: str) -> "LabelSet":
        """Read a saved label list (``labels.json``), refusing anything that is not exactly the
        canonical order: a rotated or truncated list would map ids to the wrong types."""
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ModelError(f"{where}: expected a JSON list of tags such as [\"O\", \"B-Chemical\", ...], "
                             f"got {type(labels).__name__}")
        bad = [x for x in labels if not is_valid_tag(x)]
        if bad:
            raise ModelError(f"{where}: {bad[0]!r} is not an IOB2 tag")
        made = cls.from_tags(labels)
        if made.tags != labels:
            raise ModelError(f"{where}: the labels are not in bioner's order (O, then B-/I- per sorted type); "
                             f"expected {made.tags}, got {labels}. The folder was edited or is damaged.")
        return made

    def check_id2label(self, id2label: dict[int, str] | dict[str, str], where: str) -> None:
        """The weights' own ``id2label`` must agree with ``labels.json`` position for position."""
        mapping = {int(k): v for k, v in id2label.items()}
        tags = self.tags
        if len(mapping) != len(tags):
            raise ModelError(f"{where}: the model has {len(mapping)} labels but labels.json lists {len(tags)}; "
                             "the folder is inconsistent")
        generic = all(v == f"LABEL_{k}" for k, v in mapping.items())
        if generic:  # a backbone saved without label names: nothing to compare
            return
        for i, tag in enumerate(tags):
            if mapping.get(i) != tag:
                raise ModelError(f"{where}: label {i} is {mapping.get(i)!r} in config.json but {tag!r} in "
                                 "labels.json; the folder is inconsistent (was one of them edited?)")


def label_set_of(sentences_tags: Sequence[Sequence[str]]) -> LabelSet:
    return LabelSet.from_types(set().union(*(types_of(t) for t in sentences_tags)) if sentences_tags else set())
