"""Span and token metrics from gold and predicted tag sequences.

Each sentence is decoded once (:func:`tags_to_spans`), its spans are paired once
(:func:`match_spans`), and every span becomes one record ``(sentence, side, type, length
bucket, pair code)``.  All sections of the report (overall, per type, by length, the
reference study's length method, and the bootstrap) are sums over these records, so they
cannot disagree with each other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bioner.corpus.bio import OUTSIDE, BioRepairs, tags_to_spans
from bioner.corpus.labels import LENGTH_BUCKETS, entity_type, length_bucket_index
from bioner.corpus.types import Span
from bioner.evaluate.matching import (
    CORRECT,
    INCORRECT,
    MODES,
    OUTCOME,
    PARTIAL,
    UNMATCHED,
    UNPAIRED,
    match_spans,
)

BUCKETS = LENGTH_BUCKETS
GOLD, PRED = 0, 1
MAIN, PAPER = 0, 1
_OUTCOME = {mode: np.array(codes, dtype=np.int64) for mode, codes in OUTCOME.items()}
_CREDIT = np.array([1.0, 0.0, 0.5, 0.0])  # indexed by outcome: COR, INC, PAR, MIS/SPU


@dataclass(frozen=True, slots=True)
class Metrics:
    """One SemEval mode's figures.

    ``correct``, ``incorrect``, ``partial`` and ``missed`` count gold spans; ``spurious`` counts
    predicted spans that pair with nothing; precision is computed over predicted spans and
    recall over gold spans, partial matches earning half credit.  For the overall figures both
    sides pair up one-to-one, so ``possible = correct + incorrect + partial + missed`` and
    ``actual = correct + incorrect + partial + spurious``.  In a slice (one type, one length)
    a pair can straddle the slice, and the two sides are counted separately.
    """

    precision: float
    recall: float
    f1: float
    correct: int
    incorrect: int
    partial: int
    missed: int
    spurious: int
    possible: int
    actual: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def f1_score(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def metrics_from_outcomes(gold_outcomes: np.ndarray, pred_outcomes: np.ndarray) -> Metrics:
    g = np.bincount(gold_outcomes, minlength=4)
    p = np.bincount(pred_outcomes, minlength=4)
    possible, actual = int(g.sum()), int(p.sum())
    recall = float(g @ _CREDIT) / possible if possible else 0.0
    precision = float(p @ _CREDIT) / actual if actual else 0.0
    return Metrics(
        precision=precision, recall=recall, f1=f1_score(precision, recall),
        correct=int(g[CORRECT]), incorrect=int(g[INCORRECT]), partial=int(g[PARTIAL]),
        missed=int(g[UNPAIRED]), spurious=int(p[UNPAIRED]), possible=possible, actual=actual,
    )


@dataclass(frozen=True, slots=True)
class TokenMetrics:
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, float | int]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "support": self.support}


@dataclass(slots=True)
class SpanRecords:
    """Columnar records of every span met, filled sentence by sentence."""

    sentence: list[int] = field(default_factory=list)
    side: list[int] = field(default_factory=list)
    family: list[int] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    bucket: list[int] = field(default_factory=list)
    code: list[int] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    token_pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    repairs_gold: BioRepairs = field(default_factory=BioRepairs)
    repairs_pred: BioRepairs = field(default_factory=BioRepairs)
    n_sentences: int = 0

    def _add(self, sent: int, side: int, family: int, spans: Sequence[Span],
             codes: Sequence[int], bucket_of: Sequence[int] | None = None) -> None:
        for k, (span, code) in enumerate(zip(spans, codes)):
            label = self.labels.setdefault(span.label, len(self.labels))
            bucket = bucket_of[k] if bucket_of is not None else length_bucket_index(span.length)
            self.sentence.append(sent)
            self.side.append(side)
            self.family.append(family)
            self.label.append(label)
            self.bucket.append(bucket)
            self.code.append(code)

    def add_sentence(self, gold_tags: Sequence[str], pred_tags: Sequence[str],
                     where: str = "", strict_bio: bool = False) -> None:
        s = self.n_sentences
        self.n_sentences += 1
        gold = tags_to_spans(gold_tags, strict=strict_bio, repairs=self.repairs_gold, where=where)
        pred = tags_to_spans(pred_tags, strict=strict_bio, repairs=self.repairs_pred, where=where)
        gold_codes, pred_codes = match_spans(gold, pred)
        self._add(s, GOLD, MAIN, gold, gold_codes)
        self._add(s, PRED, MAIN, pred, pred_codes)
        self.token_pairs.update(zip(gold_tags, pred_tags))
        self._add_paper(s, gold, gold_tags, pred_tags)

    def _add_paper(self, s: int, gold: list[Span], gold_tags: Sequence[str],
                   pred_tags: Sequence[str]) -> None:
        """The reference study's length method: score predictions cut at gold boundaries.

        Each gold span is an item of its own length holding the predicted tags inside its
        boundaries (a prediction running past them is cut); each gold ``O`` token is an item
        of length 1 where any predicted entity is spurious.
        """
        for g in gold:
            item = Span(0, g.length, g.label)
            clipped = tags_to_spans(pred_tags[g.start:g.end])
            gc, pc = match_spans([item], clipped)
            bucket = length_bucket_index(g.length)
            self._add(s, GOLD, PAPER, [item], gc)
            self._add(s, PRED, PAPER, clipped, pc, [bucket] * len(clipped))
        for i, tag in enumerate(gold_tags):
            if tag == OUTSIDE and pred_tags[i] != OUTSIDE:
                self._add(s, PRED, PAPER, [Span(i, i + 1, entity_type(pred_tags[i]))], [UNMATCHED], [0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name), dtype=np.int64)
                for name in ("sentence", "side", "family", "label", "bucket", "code")}


@dataclass(slots=True)
class Selection:
    """Which records form one slice of the report: family plus optional type / bucket."""

    family: int = MAIN
    label: int | None = None
    bucket: int | None = None

    def masks(self, a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        base = a["family"] == self.family
        if self.label is not None:
            base &= a["label"] == self.label
        if self.bucket is not None:
            base &= a["bucket"] == self.bucket
        return base & (a["side"] == GOLD), base & (a["side"] == PRED)


def slice_metrics(a: dict[str, np.ndarray], sel: Selection, mode: str) -> Metrics:
    gmask, pmask = sel.masks(a)
    table = _OUTCOME[mode]
    return metrics_from_outcomes(table[a["code"][gmask]], table[a["code"][pmask]])


def per_sentence_counts(a: dict[str, np.ndarray], sel: Selection, mode: str,
                        n_sentences: int) -> np.ndarray:
    """Per-sentence (gold credit, possible, pred credit, actual) as an (n, 4) array."""
    gmask, pmask = sel.masks(a)
    credit = _CREDIT[_OUTCOME[mode]]
    cols = [
        np.bincount(a["sentence"][gmask], weights=credit[a["code"][gmask]], minlength=n_sentences),
        np.bincount(a["sentence"][gmask], minlength=n_sentences).astype(float),
        np.bincount(a["sentence"][pmask], weights=credit[a["code"][pmask]], minlength=n_sentences),
        np.bincount(a["sentence"][pmask], minlength=n_sentences).astype(float),
    ]
    return np.stack(cols, axis=1)


def f1_from_sums(sums: np.ndarray) -> np.ndarray:
    """F1 from summed (gold credit, possible, pred credit, actual) along the last axis."""
    g, possible, p, actual = (sums[..., k] for k in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(possible > 0, g / np.maximum(possible, 1), 0.0)
        precision = np.where(actual > 0, p / np.maximum(actual, 1), 0.0)
        f1 = np.where(precision + recall > 0,
                      2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    return f1


def token_metrics(pairs: Counter[tuple[str, str]]) -> dict[str, TokenMetrics]:
    gold_n: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    for (g, p), n in pairs.items():
        gold_n[g] += n
        pred_n[p] += n
        if g == p:
            hit[g] += n
    out: dict[str, TokenMetrics] = {}
    for tag in sorted(set(gold_n) | set(pred_n), key=lambda t: (t == OUTSIDE, entity_type(t), t)):
        precision = hit[tag] / pred_n[tag] if pred_n[tag] else 0.0
        recall = hit[tag] / gold_n[tag] if gold_n[tag] else 0.0
        out[tag] = TokenMetrics(precision, recall, f1_score(precision, recall), gold_n[tag])
    return out


__all__ = [
    "BUCKETS", "MODES", "Metrics", "Selection", "SpanRecords", "TokenMetrics",
    "f1_from_sums", "per_sentence_counts", "slice_metrics", "token_metrics",
]
