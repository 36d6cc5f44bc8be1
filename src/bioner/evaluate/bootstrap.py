"""Uncertainty: sentence-level bootstrap intervals and paired significance tests.

Both resample *sentences*, the unit that is drawn from a corpus, and recompute F1 from summed
counts (never by averaging per-sentence F1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bioner.evaluate.metrics import f1_from_sums

_CHUNK = 256


def bootstrap_f1_intervals(
    per_sentence: dict[str, np.ndarray], n_resamples: int, seed: int, confidence: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals for every F1 named in ``per_sentence`` (each an (n, 4) array)."""
    if n_resamples <= 0 or not per_sentence:
        return {}
    keys = list(per_sentence)
    stacked = np.stack([per_sentence[k] for k in keys], axis=1)  # (n, K, 4)
    n = stacked.shape[0]
    if n == 0:
        return {k: (0.0, 0.0) for k in keys}
    flat = stacked.reshape(n, -1)
    rng = np.random.default_rng(seed)
    f1s = np.empty((n_resamples, len(keys)))
    for lo in range(0, n_resamples, _CHUNK):
        hi = min(lo + _CHUNK, n_resamples)
        weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                            for _ in range(hi - lo)]).astype(float)
        sums = (weights @ flat).reshape(hi - lo, len(keys), 4)
        f1s[lo:hi] = f1_from_sums(sums)
    alpha = (1 - confidence) / 2
    lower = np.quantile(f1s, alpha, axis=0)
    upper = np.quantile(f1s, 1 - alpha, axis=0)
    return {k: (float(lower[i]), float(upper[i])) for i, k in enumerate(keys)}


@dataclass(frozen=True, slots=True)
class PairedResult:
    """Is system A better than system B on the same sentences?

    ``p_value`` is one-sided (H1: A's F1 > B's).  ``permutation`` is approximate
    randomization (swap A's and B's output per sentence); ``bootstrap`` is the paired
    bootstrap with the Berg-Kirkpatrick et al. (2012) null shift (count resamples where the
    difference is at least twice the observed one).
    """

    metric: str
    f1_a: float
    f1_b: float
    delta: float
    p_value: float
    method: str
    n_resamples: int
    n_sentences: int

    def to_dict(self) -> dict[str, float | int | str]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def paired_test(
    counts_a: np.ndarray, counts_b: np.ndarray, *, metric: str, method: str = "permutation",
    n_resamples: int = 10_000, seed: int = 42,
) -> PairedResult:
    """Compare two systems from their per-sentence (n, 4) count arrays."""
    if counts_a.shape != counts_b.shape:
        raise ValueError("paired test needs both systems scored on the same sentences")
    if method not in ("permutation", "bootstrap"):
        raise ValueError(f"unknown paired test method '{method}' (permutation or bootstrap)")
    n = counts_a.shape[0]
    f1_a = float(f1_from_sums(counts_a.sum(axis=0)))
    f1_b = float(f1_from_sums(counts_b.sum(axis=0)))
    delta = f1_a - f1_b
    rng = np.random.default_rng(seed)
    hits = 0
    diff = counts_b - counts_a
    for lo in range(0, n_resamples, _CHUNK):
        m = min(_CHUNK, n_resamples - lo)
        if method == "permutation":
            swap = (rng.random((m, n)) < 0.5).astype(float)
            moved = swap @ diff  # what swapping adds to A and takes from B
            sums_a = counts_a.sum(axis=0) + moved
            sums_b = counts_b.sum(axis=0) - moved
            deltas = f1_from_sums(sums_a) - f1_from_sums(sums_b)
            hits += int(np.sum(deltas >= delta - 1e-12))
        else:
            weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                                for _ in range(m)]).astype(float)
            deltas = f1_from_sums(weights @ counts_a) - f1_from_sums(weights @ counts_b)
            hits += int(np.sum(deltas >= 2 * delta - 1e-12)) if delta > 0 else m
    p_value = (hits + 1) / (n_resamples + 1) if method == "permutation" else hits / n_resamples
    return PairedResult(metric, f1_a, f1_b, delta, min(1.0, p_value), method, n_resamples, n)
