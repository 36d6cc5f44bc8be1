"""The one cost meter: what tagging costs, like-for-like, for every tagger kind.

Warm-up kept apart, prediction timed alone (never metrics), the device synchronised before the
clock is read, several repeats (median), batch-1 latency, memory, parameters, the precision
that ran, and an efficiency figure (achieved FLOP/s over a stated peak, as nanoGPT's MFU) where
the tagger can count its FLOPs.  ``bioner bench``, the benchmarks and the experiment runner all
call :func:`measure`."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from bioner.models.base import Tagger
from bioner.models.runtime import cpu_info, parse_cpuinfo


@dataclass(slots=True)
class CostReport:
    kind: str
    backend: str
    precision: str
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
    achieved_flops_per_s: float | None
    peak_flops_per_s: float | None
    peak_flops_basis: str
    efficiency: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_peak_flops(threads: int, precision: str = "fp32", cpuinfo: str | None = None) -> tuple[float | None, str]:
    """Peak of ``threads`` cores from the CPU flags × clock: FMA lanes per cycle for fp32, twice
    that for bf16 on AVX512-BF16 (a dot-product instruction does two multiply-adds per lane).
    AMD's family 25 (Zen 3/4) runs AVX-512 on 256-bit units, so it has half the lanes its flags
    suggest; AMX's tile peak is not stated (None)."""
    fields = cpu_info() if cpuinfo is None else parse_cpuinfo(cpuinfo)
    if not fields:
        return None, "unknown CPU"
    flags = frozenset(fields.get("flags", "").split())
    try:
        mhz = float(fields.get("cpu MHz", 0))
        family = int(fields.get("cpu family", 0))
    except ValueError:
        return None, "unknown CPU"
    if not mhz:
        return None, "unknown clock"
    vendor = fields.get("vendor_id", "")
    if "avx512f" in flags:
        per_cycle = 32 if vendor == "AuthenticAMD" and family == 25 else 64
    else:
        per_cycle = 32 if {"avx2", "fma"} <= flags else 8
    width = "fp32"
    if precision == "bf16":
        if "amx_bf16" in flags:
            return None, "AMX bf16 peak not stated"
        if "avx512_bf16" not in flags:
            return None, "no native bf16 on this CPU"
        per_cycle, width = 2 * per_cycle, "bf16"
    peak = threads * per_cycle * mhz * 1e6
    return peak, f"{threads} cores x {per_cycle} {width} FLOP/cycle x {mhz:.0f} MHz ({platform.processor() or 'cpu'})"


def peak_rss_mb() -> float:
    """This process's peak resident memory.  Linux's VmHWM starts afresh at exec; ``ru_maxrss``
    (the fallback elsewhere) also counts a large parent's memory at fork time."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(tagger: Tagger, token_lists: Sequence[Sequence[str]], repeats: int = 3,
            latency_samples: int = 200, warmup: int = 32) -> CostReport:
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1 (got {repeats})")
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
    stats = dict(tagger.last_stats)
    words = int(stats.get("words", sum(len(t) for t in token_lists)))
    subwords = int(stats.get("subwords", 0))
    lat = []
    for sentence in token_lists[:latency_samples]:
        start = time.perf_counter()
        tagger.predict([sentence])
        sync()
        lat.append(1000 * (time.perf_counter() - start))
    lat.sort()
    threads = torch.get_num_threads()
    flops = tagger.forward_flops(token_lists)
    achieved = flops / seconds if flops is not None else None
    peak, basis = (None, "GPU peak not stated") if cuda else cpu_peak_flops(threads, tagger.precision)
    params = list(tagger.model.parameters())
    return CostReport(
        kind=tagger.kind, backend=str(getattr(tagger, "backend", "torch")), precision=tagger.precision,
        device=torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)",
        threads=threads, n_sentences=len(token_lists), n_words=words,
        n_subwords=subwords, repeats=repeats, seconds=seconds,
        sentences_per_s=len(token_lists) / seconds, words_per_s=words / seconds,
        subwords_per_s=subwords / seconds,
        latency_p50_ms=lat[len(lat) // 2] if lat else 0.0,
        latency_p95_ms=lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else 0.0,
        latency_samples=len(lat), peak_rss_mb=peak_rss_mb(),
        peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        params_total=sum(p.numel() for p in params),
        params_trainable=sum(p.numel() for p in params if p.requires_grad),
        achieved_flops_per_s=achieved, peak_flops_per_s=peak, peak_flops_basis=basis,
        efficiency=achieved / peak if peak and achieved is not None else None,
    )


def agreement(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    """Share of tokens with the same tag."""
    same = total = 0
    for x, y in zip(a, b):
        total += len(x)
        same += sum(p == q for p, q in zip(x, y))
    return same / total if total else 1.0
