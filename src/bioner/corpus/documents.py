"""Documents with character-offset annotations ↔ tokenized BIO sentences.

``documents_to_sentences`` maps annotations to tokens under a stated policy and *counts and
reports* every annotation that does not fit IOB2 cleanly — a boundary inside a token (widened
to whole tokens), overlaps and nesting (``--overlap longest|first|error``), a span crossing a
sentence boundary (cut at the boundary), discontinuous brat spans (first fragment) — with the
document id and offsets.  ``sentences_to_spans`` maps predicted tags back to exact offsets.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from bioner.corpus.bio import spans_to_tags, tags_to_spans
from bioner.corpus.text import text_to_sentences
from bioner.corpus.types import Sentence, Span
from bioner.errors import CorpusFormatError

OVERLAP_POLICIES = ("longest", "first", "error")


@dataclass(slots=True)
class TextSpan:
    """An entity by character offsets into its document's text (``end`` exclusive)."""

    start: int
    end: int
    label: str
    text: str = ""
    score: float | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"start": self.start, "end": self.end, "label": self.label, "text": self.text}
        if self.score is not None:
            out["score"] = self.score
        if self.id is not None:
            out["id"] = self.id
        return out


@dataclass(slots=True)
class Document:
    id: str
    text: str
    spans: list[TextSpan] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ConversionReport:
    """Everything that did not map one-to-one, with where it happened."""

    documents: int = 0
    annotations: int = 0
    mapped: int = 0
    widened_to_tokens: int = 0
    overlapping: int = 0
    crossing_sentences: int = 0
    discontinuous: int = 0
    text_mismatches: int = 0
    details: list[str] = field(default_factory=list)

    def note(self, kind: str, doc: str, span: TextSpan, what: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.details) < 200:
            self.details.append(f"{doc} [{span.start}:{span.end}] {span.label}: {what}")

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def _resolve_overlaps(doc: Document, spans: list[TextSpan], policy: str, report: ConversionReport) -> list[TextSpan]:
    kept: list[TextSpan] = []
    order = sorted(spans, key=lambda s: (s.start, -(s.end - s.start)))
    for span in order:
        clash = [k for k in kept if k.start < span.end and span.start < k.end]
        if not clash:
            kept.append(span)
            continue
        if policy == "error":
            raise CorpusFormatError(doc.id, 0, f"annotation [{span.start}:{span.end}] {span.label} overlaps "
                                               f"[{clash[0].start}:{clash[0].end}] {clash[0].label} (use --overlap longest|first)")
        report.note("overlapping", doc.id, span, f"overlaps [{clash[0].start}:{clash[0].end}] {clash[0].label}")
        if policy == "longest" and all(span.end - span.start > c.end - c.start for c in clash):
            for c in clash:
                kept.remove(c)
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def documents_to_sentences(docs: Iterable[Document], overlap: str = "longest",
                           report: ConversionReport | None = None) -> Iterator[Sentence]:
    if overlap not in OVERLAP_POLICIES:
        raise ValueError(f"overlap policy must be one of {OVERLAP_POLICIES}")
    report = report if report is not None else ConversionReport()
    for doc in docs:
        report.documents += 1
        report.annotations += len(doc.spans)
        for span in doc.spans:
            if span.text and doc.text[span.start:span.end] != span.text:
                report.note("text_mismatches", doc.id, span,
                            f"text {span.text!r} but the document has {doc.text[span.start:span.end]!r}")
        spans = _resolve_overlaps(doc, list(doc.spans), overlap, report)
        sentences = text_to_sentences(doc.text, doc.id)
        starts = [s.offsets[0][0] for s in sentences if s.offsets]
        per_sentence: dict[int, list[Span]] = {}
        for span in spans:
            k = bisect.bisect_right(starts, span.start) - 1
            if k < 0:
                k = 0
            sent = sentences[k] if sentences else None
            if sent is None or sent.offsets is None:
                continue
            offs = sent.offsets
            if span.end > offs[-1][1]:
                report.note("crossing_sentences", doc.id, span, "crosses a sentence boundary: cut at it")
            first = next((i for i, (a, b) in enumerate(offs) if b > span.start), None)
            last = next((i for i in range(len(offs) - 1, -1, -1) if offs[i][0] < span.end), None)
            if first is None or last is None or last < first:
                report.note("widened_to_tokens", doc.id, span, "covers no token")
                continue
            if offs[first][0] != span.start or offs[last][1] != min(span.end, offs[-1][1]):
                report.note("widened_to_tokens", doc.id, span, "boundary inside a token: widened to whole tokens")
            new = Span(first, last + 1, span.label)
            existing = per_sentence.setdefault(k, [])
            if any(e.overlaps(new) for e in existing):
                report.note("overlapping", doc.id, span, "overlaps another span once widened to tokens; dropped")
                continue
            existing.append(new)
            report.mapped += 1
        for k, sent in enumerate(sentences):
            sent.tags = spans_to_tags(per_sentence.get(k, []), len(sent.tokens))
            yield sent


def sentence_spans(sentence: Sentence, text: str, tags: Sequence[str] | None = None,
                   span_scores: dict[tuple[int, int], float] | None = None) -> list[TextSpan]:
    """Predicted (or gold) tags of a sentence with offsets → character spans into ``text``;
    ``span_scores`` gives each span's probability by its token ``(start, end)``."""
    if sentence.offsets is None:
        raise ValueError(f"{sentence.where} has no character offsets")
    out = []
    for span in tags_to_spans(tags if tags is not None else sentence.tags or []):
        a, b = sentence.offsets[span.start][0], sentence.offsets[span.end - 1][1]
        score = span_scores.get((span.start, span.end)) if span_scores is not None else None
        out.append(TextSpan(a, b, span.label, text[a:b], score))
    return out
