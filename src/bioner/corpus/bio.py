"""The one BIO (IOB2) decoder and encoder, plus IOBES/BILOU conversion.

Everything in bioner that turns tags into entities goes through :func:`tags_to_spans`, so the
statistics, the evaluator and the taggers can never disagree about where an entity starts
or ends.  An ``I-X`` that does not continue an ``X`` entity (after ``O``, at sentence start
or after another type) is invalid IOB2: by default it is repaired to ``B-X`` (the convention
of conlleval and of the datasets' ``stats.py``) and counted; with ``strict=True`` it raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bioner.corpus.labels import OUTSIDE, TAG_PATTERNS, is_valid_tag
from bioner.corpus.types import Span
from bioner.errors import BioSchemeError

__all__ = ["OUTSIDE", "TAG_PATTERNS", "BioRepairs", "is_valid_tag", "tags_to_spans", "spans_to_tags",
           "repair_bio", "iob_to_iobes", "iob_to_bilou", "iobes_to_iob", "bilou_to_iob"]


@dataclass(slots=True)
class BioRepairs:
    """Counts of invalid IOB2 transitions met (and repaired to ``B-``) while decoding."""

    i_after_o: int = 0
    i_after_other_type: int = 0

    @property
    def total(self) -> int:
        return self.i_after_o + self.i_after_other_type

    def add(self, other: "BioRepairs") -> None:
        self.i_after_o += other.i_after_o
        self.i_after_other_type += other.i_after_other_type

    def to_dict(self) -> dict[str, int]:
        return {"I_after_O": self.i_after_o, "I_after_other_type": self.i_after_other_type,
                "total": self.total}


def tags_to_spans(
    tags: Sequence[str],
    *,
    strict: bool = False,
    repairs: BioRepairs | None = None,
    where: str = "",
) -> list[Span]:
    """Decode IOB2 tags into spans (``end`` exclusive).

    ``repairs`` (if given) is incremented for every ``I-`` that had to start an entity.
    ``where`` names the sentence in the error raised under ``strict``.
    """
    spans: list[Span] = []
    start = -1
    label = ""
    for i, tag in enumerate(tags):
        if tag == OUTSIDE:
            if start >= 0:
                spans.append(Span(start, i, label))
                start = -1
            continue
        prefix, typ = tag[0], tag[2:]
        if prefix == "I" and start >= 0 and typ == label:
            continue
        if prefix == "I":
            if strict:
                prev = tags[i - 1] if i else "sentence start"
                raise BioSchemeError(
                    f"{where + ': ' if where else ''}invalid IOB2 at token {i}: "
                    f"got '{tag}' after '{prev}'"
                )
            if repairs is not None:
                if start >= 0:
                    repairs.i_after_other_type += 1
                else:
                    repairs.i_after_o += 1
        elif prefix != "B":
            raise BioSchemeError(
                f"{where + ': ' if where else ''}tag '{tag}' at token {i} is not IOB2 "
                "(convert IOBES/BILOU first with iobes_to_iob / bilou_to_iob)"
            )
        if start >= 0:
            spans.append(Span(start, i, label))
        start, label = i, typ
    if start >= 0:
        spans.append(Span(start, len(tags), label))
    return spans


def spans_to_tags(spans: Sequence[Span], length: int) -> list[str]:
    """Encode non-overlapping spans as IOB2 tags for a sentence of ``length`` tokens."""
    tags = [OUTSIDE] * length
    for span in sorted(spans):
        if span.end > length:
            raise ValueError(f"span {span} runs past the sentence end ({length} tokens)")
        if any(t != OUTSIDE for t in tags[span.start:span.end]):
            raise ValueError(f"span {span} overlaps another span; IOB2 cannot encode overlaps")
        tags[span.start] = "B-" + span.label
        for i in range(span.start + 1, span.end):
            tags[i] = "I-" + span.label
    return tags


def repair_bio(tags: Sequence[str]) -> tuple[list[str], BioRepairs]:
    """Return valid IOB2 tags (invalid ``I-`` turned into ``B-``) and what was repaired."""
    repairs = BioRepairs()
    return spans_to_tags(tags_to_spans(tags, repairs=repairs), len(tags)), repairs


def iob_to_iobes(tags: Sequence[str]) -> list[str]:
    out = [OUTSIDE] * len(tags)
    for s in tags_to_spans(tags):
        if s.length == 1:
            out[s.start] = "S-" + s.label
            continue
        out[s.start] = "B-" + s.label
        for i in range(s.start + 1, s.end - 1):
            out[i] = "I-" + s.label
        out[s.end - 1] = "E-" + s.label
    return out


def iob_to_bilou(tags: Sequence[str]) -> list[str]:
    return [
        {"S": "U", "E": "L"}.get(t[0], t[0]) + t[1:] if t != OUTSIDE else t
        for t in iob_to_iobes(tags)
    ]


def iobes_to_iob(tags: Sequence[str]) -> list[str]:
    """IOBES to IOB2: ``S-`` becomes ``B-``, ``E-`` becomes ``I-``."""
    out = []
    for tag in tags:
        if tag == OUTSIDE:
            out.append(tag)
        elif tag[0] in "SU":
            out.append("B" + tag[1:])
        elif tag[0] in "EL":
            out.append("I" + tag[1:])
        elif tag[0] in "BI":
            out.append(tag)
        else:
            raise BioSchemeError(f"tag '{tag}' is neither IOBES nor BILOU")
    return out


bilou_to_iob = iobes_to_iob

