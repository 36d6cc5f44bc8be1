"""Do span scores mean what they say?  Expected calibration error and a reliability table.

A predicted span is *right* when a gold span has the same bounds and type (strict).  Scored
spans are put in ``n_bins`` equal-width bins by score; in a calibrated tagger the share of right
spans in each bin equals the bin's mean score.  ECE is the count-weighted mean gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bioner.corpus.bio import tags_to_spans


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    low: float
    high: float
    n: int
    mean_score: float
    accuracy: float


@dataclass(frozen=True, slots=True)
class Calibration:
    ece: float
    n_scored: int
    bins: tuple[ReliabilityBin, ...]

    def to_dict(self) -> dict[str, object]:
        return {"ece": self.ece, "n_scored": self.n_scored, "bins": [asdict(b) for b in self.bins]}

    def to_markdown(self) -> str:
        return calibration_markdown(self.to_dict())


def scored_outcomes(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]],
                    span_scores: Sequence[dict[tuple[int, int], float] | None]) -> list[tuple[float, bool]]:
    """(score, exactly right) for every predicted span that has a score."""
    out = []
    for g, p, scores in zip(gold_tags, pred_tags, span_scores):
        if not scores:
            continue
        gold = set(tags_to_spans(g))
        for span in tags_to_spans(p):
            score = scores.get((span.start, span.end))
            if score is not None:
                out.append((score, span in gold))
    return out


def calibration(outcomes: Sequence[tuple[float, bool]], n_bins: int = 10) -> Calibration:
    bins = []
    ece = 0.0
    total = len(outcomes)
    for k in range(n_bins):
        low, high = k / n_bins, (k + 1) / n_bins
        inside = [(s, r) for s, r in outcomes if low <= s < high or (k == n_bins - 1 and s == 1.0)]
        if inside:
            mean = sum(s for s, _ in inside) / len(inside)
            acc = sum(r for _, r in inside) / len(inside)
            ece += len(inside) / total * abs(acc - mean)
        else:
            mean = acc = 0.0
        bins.append(ReliabilityBin(low, high, len(inside), mean, acc))
    return Calibration(ece, total, tuple(bins))


def calibration_markdown(cal: dict) -> str:  # type: ignore[type-arg]
    """The reliability table, from :meth:`Calibration.to_dict` (as saved in ``eval_test.json``)."""
    lines = [f"calibration: ECE {cal['ece']:.4f} over {cal['n_scored']} scored spans (strict correctness)", "",
             "| score bin | spans | mean score | share right |", "|---|---:|---:|---:|"]
    lines += [f"| {b['low']:.1f}–{b['high']:.1f} | {b['n']} | {b['mean_score']:.3f} | {b['accuracy']:.3f} |"
              for b in cal["bins"] if b["n"]]
    return "\n".join(lines)
