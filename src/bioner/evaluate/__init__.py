"""Spans → SemEval-2013 metrics: ``evaluate(gold, pred) -> Report``.

Four modes as nervaluate defines them (strict, exact, partial with half credit, type), per
entity type, per entity length (1, 2, >=3 tokens) both as real precision/recall over spans
of that length and by the reference study's method, token-level figures, and optional
bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bioner.corpus.types import Sentence
from bioner.errors import EvaluationError
from bioner.evaluate.bootstrap import PairedResult, bootstrap_f1_intervals, paired_test
from bioner.evaluate.calibration import calibration, scored_outcomes
from bioner.evaluate.metrics import (
    BUCKETS,
    MAIN,
    MODES,
    PAPER,
    Metrics,
    Selection,
    SpanRecords,
    per_sentence_counts,
    slice_metrics,
    token_metrics,
)
from bioner.evaluate.report import LENGTH_MODES, Report

TagSeqs = Sequence[Sequence[str]]


def _tag_lists(gold: Sequence[Sentence] | TagSeqs, pred: Sequence[Sentence] | TagSeqs
               ) -> tuple[list[Sequence[str]], list[Sequence[str]], list[str]]:
    if len(gold) != len(pred):
        raise EvaluationError(
            f"gold has {len(gold)} sentences but predictions have {len(pred)}; "
            "predictions must cover the gold sentences one for one, in order"
        )
    gold_tags, pred_tags, where = [], [], []
    for k, (g, p) in enumerate(zip(gold, pred)):
        if isinstance(g, Sentence):
            if not isinstance(p, Sentence):
                raise EvaluationError("pass gold and predictions both as Sentence or both as tag lists")
            if g.tags is None or p.tags is None:
                side = "gold" if g.tags is None else "prediction"
                raise EvaluationError(f"{(g if g.tags is None else p).where}: {side} sentence has no tags")
            if g.tokens != p.tokens:
                i = next((i for i, (a, b) in enumerate(zip(g.tokens, p.tokens)) if a != b),
                         min(len(g.tokens), len(p.tokens)))
                got = p.tokens[i] if i < len(p.tokens) else "<end of sentence>"
                want = g.tokens[i] if i < len(g.tokens) else "<end of sentence>"
                raise EvaluationError(
                    f"sentence {k + 1}: tokens differ at token {i + 1} (gold {g.where}: {want!r}; "
                    f"prediction {p.where}: {got!r}); both files must hold the same tokens"
                )
            gold_tags.append(g.tags)
            pred_tags.append(p.tags)
            where.append(g.where)
        else:
            if len(g) != len(p):
                raise EvaluationError(
                    f"sentence {k + 1}: {len(g)} gold tags but {len(p)} predicted tags"
                )
            gold_tags.append(g)
            pred_tags.append(p)  # type: ignore[arg-type]
            where.append(f"sentence {k + 1}")
    return gold_tags, pred_tags, where


def score(gold: Sequence[Sentence] | TagSeqs, pred: Sequence[Sentence] | TagSeqs,
          strict_bio: bool = False) -> SpanRecords:
    """Decode and pair every sentence once; all report sections are sums over this."""
    gold_tags, pred_tags, where = _tag_lists(gold, pred)
    records = SpanRecords()
    for g, p, w in zip(gold_tags, pred_tags, where):
        records.add_sentence(g, p, w, strict_bio)
    return records


def _f1_slices(records: SpanRecords) -> dict[str, tuple[Selection, str]]:
    """Every F1 the bootstrap gives an interval for, by its key in ``Report.ci``."""
    slices: dict[str, tuple[Selection, str]] = {}
    for mode in MODES:
        slices[f"{mode}_f1"] = (Selection(), mode)
    for label, idx in sorted(records.labels.items()):
        for mode in MODES:
            slices[f"per_type.{label}.{mode}_f1"] = (Selection(label=idx), mode)
    for b, bucket in enumerate(BUCKETS):
        for mode in LENGTH_MODES:
            slices[f"by_length.{bucket}.{mode}_f1"] = (Selection(bucket=b), mode)
            slices[f"by_length_paper.{bucket}.{mode}_f1"] = (Selection(PAPER, bucket=b), mode)
    return slices


def report_from_records(records: SpanRecords, bootstrap: int = 0, seed: int = 42,
                        confidence: float = 0.95) -> Report:
    a = records.arrays()
    overall = {m: slice_metrics(a, Selection(), m) for m in MODES}
    per_type = {
        label: {m: slice_metrics(a, Selection(label=idx), m) for m in MODES}
        for label, idx in sorted(records.labels.items())
    }
    by_length = {b: {m: slice_metrics(a, Selection(MAIN, bucket=i), m) for m in LENGTH_MODES}
                 for i, b in enumerate(BUCKETS)}
    by_length_paper = {b: {m: slice_metrics(a, Selection(PAPER, bucket=i), m) for m in LENGTH_MODES}
                       for i, b in enumerate(BUCKETS)}
    ci = None
    if bootstrap > 0:
        counts = {key: per_sentence_counts(a, sel, mode, records.n_sentences)
                  for key, (sel, mode) in _f1_slices(records).items()}
        ci = bootstrap_f1_intervals(counts, bootstrap, seed, confidence)
    return Report(
        overall=overall, per_type=per_type, by_length=by_length, by_length_paper=by_length_paper,
        token=token_metrics(records.token_pairs), n_sentences=records.n_sentences,
        n_gold=overall["strict"].possible, n_pred=overall["strict"].actual,
        bio_repairs={"gold": records.repairs_gold.to_dict(), "pred": records.repairs_pred.to_dict()},
        ci=ci,
    )


class ScoringTagger(Protocol):
    """What :func:`evaluate_tagger` needs of a tagger (``bioner.models.Tagger`` has it)."""

    def predict_with_scores(self, token_lists: Sequence[Sequence[str]]
                            ) -> tuple[list[list[str]], list[dict[tuple[int, int], float]] | None]: ...

    def report_extra(self) -> dict[str, Any]: ...


def evaluate(gold: Sequence[Sentence] | TagSeqs, pred: Sequence[Sentence] | TagSeqs, *,
             bootstrap: int = 0, seed: int = 42, confidence: float = 0.95,
             strict_bio: bool = False) -> Report:
    """Score predictions against gold; sentences must match one for one, token for token."""
    return report_from_records(score(gold, pred, strict_bio), bootstrap, seed, confidence)


def evaluate_tagger(tagger: ScoringTagger, gold: Sequence[Sentence], *, bootstrap: int = 0, seed: int = 42,
                    strict_bio: bool = False) -> Report:
    """Tag the gold sentences' tokens and score them; the report carries the tagger's own
    figures and, where it scores its spans, their calibration (ECE and reliability table)."""
    tags, span_scores = tagger.predict_with_scores([s.tokens for s in gold])
    pred = [Sentence(s.id, s.tokens, t, s.offsets, s.source, dict(s.meta)) for s, t in zip(gold, tags)]
    report = evaluate(gold, pred, bootstrap=bootstrap, seed=seed, strict_bio=strict_bio)
    report.extra.update(tagger.report_extra())
    if span_scores is not None:
        report.extra["calibration"] = calibration(scored_outcomes([s.tags or [] for s in gold], tags,
                                                                  span_scores)).to_dict()
    return report


def compare(gold: Sequence[Sentence] | TagSeqs, pred_a: Sequence[Sentence] | TagSeqs,
            pred_b: Sequence[Sentence] | TagSeqs, *, mode: str = "strict",
            method: str = "permutation", n_resamples: int = 10_000, seed: int = 42) -> PairedResult:
    """One-sided paired test that system A's overall F1 (in ``mode``) beats system B's."""
    counts = []
    for pred in (pred_a, pred_b):
        records = score(gold, pred)
        counts.append(per_sentence_counts(records.arrays(), Selection(), mode, records.n_sentences))
    return paired_test(counts[0], counts[1], metric=f"{mode}_f1", method=method,
                       n_resamples=n_resamples, seed=seed)


__all__ = ["Metrics", "PairedResult", "Report", "compare", "evaluate", "evaluate_tagger", "score"]
