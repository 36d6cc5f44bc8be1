"""The evaluation report: typed, serializable, and printable as Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bioner.evaluate.calibration import calibration_markdown
from bioner.evaluate.metrics import MODES, Metrics, TokenMetrics

LENGTH_MODES = ("strict", "partial")


@dataclass(slots=True)
class Report:
    overall: dict[str, Metrics]
    per_type: dict[str, dict[str, Metrics]]
    by_length: dict[str, dict[str, Metrics]]
    by_length_paper: dict[str, dict[str, Metrics]]
    token: dict[str, TokenMetrics]
    n_sentences: int
    n_gold: int
    n_pred: int
    bio_repairs: dict[str, dict[str, int]]
    ci: dict[str, tuple[float, float]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def modes(d: dict[str, Metrics]) -> dict[str, Any]:
            return {m: v.to_dict() for m, v in d.items()}

        out: dict[str, Any] = {
            "overall": modes(self.overall),
            "per_type": {t: modes(d) for t, d in self.per_type.items()},
            "by_length": {b: modes(d) for b, d in self.by_length.items()},
            "by_length_paper": {b: modes(d) for b, d in self.by_length_paper.items()},
            "token": {t: v.to_dict() for t, v in self.token.items()},
            "n_sentences": self.n_sentences,
            "n_gold": self.n_gold,
            "n_pred": self.n_pred,
            "bio_repairs": self.bio_repairs,
        }
        if self.ci is not None:
            out["ci"] = {k: [lo, hi] for k, (lo, hi) in self.ci.items()}
        out.update(self.extra)
        return out

    def _ci(self, key: str) -> str:
        if not self.ci or key not in self.ci:
            return ""
        lo, hi = self.ci[key]
        return f" [{lo:.4f}, {hi:.4f}]"

    def to_markdown(self) -> str:
        lines = [
            f"{self.n_sentences} sentences, {self.n_gold} gold spans, {self.n_pred} predicted spans",
            "",
            "| mode | precision | recall | F1 | correct | incorrect | partial | missed | spurious |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for mode in MODES:
            m = self.overall[mode]
            lines.append(
                f"| {mode} | {m.precision:.4f} | {m.recall:.4f} | {m.f1:.4f}{self._ci(mode + '_f1')} "
                f"| {m.correct} | {m.incorrect} | {m.partial} | {m.missed} | {m.spurious} |"
            )
        lines += ["", "| type | gold | strict P | strict R | strict F1 | partial F1 |",
                  "|---|---:|---:|---:|---:|---:|"]
        for typ, d in self.per_type.items():
            s = d["strict"]
            lines.append(
                f"| {typ} | {s.possible} | {s.precision:.4f} | {s.recall:.4f} "
                f"| {s.f1:.4f}{self._ci(f'per_type.{typ}.strict_f1')} | {d['partial'].f1:.4f} |"
            )
        for title, section, prefix in (
            ("length (tokens) | gold | pred", self.by_length, "by_length"),
            ("length, reference method | gold | items", self.by_length_paper, "by_length_paper"),
        ):
            lines += ["", f"| {title} | strict P | strict R | strict F1 | partial F1 |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for bucket, d in section.items():
                s = d["strict"]
                lines.append(
                    f"| {bucket} | {s.possible} | {s.actual} | {s.precision:.4f} | {s.recall:.4f} "
                    f"| {s.f1:.4f}{self._ci(f'{prefix}.{bucket}.strict_f1')} | {d['partial'].f1:.4f} |"
                )
        repairs = self.bio_repairs
        if repairs["gold"]["total"] or repairs["pred"]["total"]:
            lines += ["", f"BIO repairs (I- that continued no entity, read as B-): "
                          f"gold {repairs['gold']['total']}, predictions {repairs['pred']['total']}"]
        for key, value in self.extra.items():
            if key == "calibration" and isinstance(value, dict):
                lines += ["", calibration_markdown(value)]
            elif isinstance(value, dict):
                lines += ["", f"{key}: " + ", ".join(f"{k}={v}" for k, v in value.items())]
        return "\n".join(lines)
