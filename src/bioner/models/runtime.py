"""Where and in what precision models run: the one device and precision policy.

Training, dev selection, the final test and inference all ask :func:`resolve_precision`, so a
run trained in bf16 is also selected and (by default) served in bf16, and the choice is
recorded in the run folder.  ``auto`` means bf16 where the hardware has bf16 matrix units
(CUDA GPUs with bf16, CPUs with AMX: 1.5x faster MiniLM training steps and ~1.6x faster
inference on this project's machine) and fp32 elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch

from bioner.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
Precision = Literal["fp32", "bf16"]


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device '{device}' (auto, cpu, cuda, cuda:N)") from exc


def has_fast_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return device.type == "cpu" and bool(amx and amx())


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """``auto``/``fp32``/``bf16`` → what actually runs on ``device``."""
    if requested not in PRECISIONS:
        raise ConfigError(f"unknown precision '{requested}' (one of {', '.join(PRECISIONS)})")
    if requested == "auto":
        return "bf16" if has_fast_bf16(device) else "fp32"
    return requested  # type: ignore[return-value]


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """bf16 autocast for matrix work (the CRF and losses are computed in fp32 by their callers)."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        yield


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"threads must be at least 1 (got {threads})")
    torch.set_num_threads(threads)
