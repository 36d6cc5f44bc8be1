"""Measure what tagging costs, like-for-like: warm-up kept apart, prediction timed alone
(never metrics), device synchronised before the clock is read, and an efficiency figure
(achieved FLOP/s over a stated peak, as nanoGPT's MFU) beside the times."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from bioner.models.tagger import EncoderTagger


@dataclass(slots=True)
class CostReport:
    backend: str
    device: str
    threads: int
    n_sentences: int
    n_words: int
    n_subwords: int
    repeats: int
    seconds: float
    sentences_per_s: float
    words_per_s: float
    subwords_per_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_samples: int
    peak_rss_mb: float
    peak_gpu_mb: float | None
    params_total: int
    params_trainable: int
    achieved_flops_per_s: float
    peak_flops_per_s: float | None
    peak_flops_basis: str
    efficiency: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_peak_flops(threads: int) -> tuple[float | None, str]:
    """fp32 peak of ``threads`` cores: FMA lanes per cycle from the CPU flags × clock."""
    flags, mhz = "", 0.0
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags") and not flags:
                    flags = line
                elif line.startswith("cpu MHz") and not mhz:
                    mhz = float(line.split(":")[1])
    except OSError:
        return None, "unknown CPU"
    if not mhz:
        return None, "unknown clock"
    per_cycle = 64 if " avx512f" in flags else 32 if " avx2" in flags and " fma" in flags else 8
    peak = threads * per_cycle * mhz * 1e6
    return peak, f"{threads} cores x {per_cycle} fp32 FLOP/cycle x {mhz:.0f} MHz ({platform.processor() or 'cpu'})"


def forward_flops(tagger: EncoderTagger, window_lengths: Sequence[int]) -> float:
    """≈ 2 FLOPs per non-embedding weight per sub-word, plus attention (4·L·d·n² per window)."""
    model = tagger.model.backbone
    config = model.config  # type: ignore[attr-defined]
    embed = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    dense = sum(p.numel() for p in model.parameters()) - embed
    layers = getattr(config, "num_hidden_layers", 0)
    hidden = getattr(config, "hidden_size", 0)
    total = sum(window_lengths)
    return 2.0 * dense * total + 4.0 * layers * hidden * sum(n * n for n in window_lengths)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(tagger: EncoderTagger, token_lists: Sequence[Sequence[str]], repeats: int = 3,
            latency_samples: int = 200, warmup: int = 32) -> CostReport:
    cuda = torch.cuda.is_available() and next(tagger.model.parameters()).is_cuda
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    tagger.predict(token_lists[:warmup])  # warm-up: allocator, kernels, caches
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tagger.predict(token_lists)
        sync()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    stats = tagger.last_stats
    enc = tagger.encoder()
    lengths = [len(w) for w in enc.encode_many(token_lists)]
    lat = []
    for words in token_lists[:latency_samples]:
        start = time.perf_counter()
        tagger.predict([words])
        sync()
        lat.append(1000 * (time.perf_counter() - start))
    lat.sort()
    threads = torch.get_num_threads()
    achieved = forward_flops(tagger, lengths) / seconds
    peak, basis = (None, "GPU peak not stated") if cuda else cpu_peak_flops(threads)
    params = list(tagger.model.parameters())
    return CostReport(
        backend=tagger.backend, device=torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)",
        threads=threads, n_sentences=len(token_lists), n_words=int(stats.get("words", 0)),
        n_subwords=int(stats.get("subwords", 0)), repeats=repeats, seconds=seconds,
        sentences_per_s=len(token_lists) / seconds, words_per_s=stats.get("words", 0) / seconds,
        subwords_per_s=stats.get("subwords", 0) / seconds,
        latency_p50_ms=lat[len(lat) // 2] if lat else 0.0,
        latency_p95_ms=lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else 0.0,
        latency_samples=len(lat), peak_rss_mb=peak_rss_mb(),
        peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        params_total=sum(p.numel() for p in params),
        params_trainable=sum(p.numel() for p in params if p.requires_grad),
        achieved_flops_per_s=achieved, peak_flops_per_s=peak, peak_flops_basis=basis,
        efficiency=achieved / peak if peak else None,
    )


def agreement(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    """Share of tokens with the same tag."""
    same = total = 0
    for x, y in zip(a, b):
        total += len(x)
        same += sum(p == q for p, q in zip(x, y))
    return same / total if total else 1.0
