"""Where and in what precision models run: the one device and precision policy.

Training, dev selection, the final test and inference all ask :func:`resolve_precision`, so a
run trained in bf16 is also selected and (by default) served in bf16, and the choice is
recorded in the run folder.  ``auto`` means bf16 where the hardware has native bf16 matrix
instructions (CUDA GPUs with bf16; CPUs with AMX or AVX512-BF16: measured on this project's
2-core AVX512-BF16 machine, 1.5x faster MiniLM training steps and 1.6x faster Gemma 3 270M LoRA
steps) and fp32 elsewhere -- CPUs with plain AVX-512 only emulate bf16 and run it slower.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import platform
from collections.abc import Iterator
from pathlib import Path
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


def parse_cpuinfo(text: str) -> dict[str, str]:
    """The first processor's fields of a Linux ``/proc/cpuinfo`` (flags, cpu family, cpu MHz ...)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the blank line after the first processor
            continue
        fields.setdefault(key.strip(), value.strip())
    return fields


@functools.cache
def cpu_info() -> dict[str, str]:
    """This machine's :func:`parse_cpuinfo` (empty where there is no /proc/cpuinfo)."""
    try:
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text(encoding="utf-8"))
    except OSError:
        return {}


def has_fast_bf16(device: torch.device) -> bool:
    """Native bf16 matrix instructions: CUDA bf16, or a CPU with AMX or AVX512-BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(amx and amx()) or bool({"avx512_bf16", "amx_bf16"} & set(cpu_info().get("flags", "").split()))


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """``auto``/``fp32``/``bf16`` → what actually runs on ``device``."""
    if requested not in PRECISIONS:
        raise ConfigError(f"unknown precision '{requested}' (one of {', '.join(PRECISIONS)})")
    if requested == "auto":
        return "bf16" if has_fast_bf16(device) else "fp32"
    return requested  # type: ignore[return-value]


def cast_linear_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Store the ``nn.Linear`` weights of an inference model in bf16, for use under
    :func:`autocast`.  Autocast casts fp32 weights to bf16 on every call, which a generative
    tagger's many small decoder calls pay again and again (Gemma 3 270M constrained decoding:
    1.39x faster this way, same tags).  The values are the ones autocast would compute, so the
    outputs are identical; norms, embeddings and the residual stream stay fp32, and a Linear
    tied to an embedding (an output layer) is left alone.  Only for bf16 inference: without
    autocast the cast layers would meet fp32 inputs."""
    tied = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in tied:
            module.to(torch.bfloat16)
    return model


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


def settle_heap() -> None:
    """Collect garbage once, then move every object alive now (modules, the loaded model) out of
    the garbage collector's view (:func:`gc.freeze`).  For processes that load a model once and
    then tag for long -- ``bioner predict``, ``bioner serve``, corpus-scale workers: a full
    collection otherwise walks the ~400k objects that torch, transformers and ONNX Runtime leave
    after import, ~0.2 s each time one runs, which cost ``tag_text`` ~0.2 ms a sentence on
    average with the int8 backend (BC5CDR test).  Objects frozen here that later become
    unreachable cycles are not collected: call it after loading, not in a loop that reloads."""
    gc.collect()
    gc.freeze()


# glibc's mallopt parameters and their defaults (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_TOP_PAD, _DEFAULT_MMAP_MAX = 128 * 1024, 128 * 1024, 65536


@contextlib.contextmanager
def keep_freed_memory(device: torch.device) -> Iterator[None]:
    """While training on a CPU, keep freed memory in the process instead of handing it back to
    the kernel (glibc only; elsewhere, and on GPUs, nothing changes).

    glibc serves blocks over 32 MB with a fresh ``mmap`` and unmaps them when freed, so a block
    that every step allocates and frees -- MiniLM's dense word-embedding gradient is 47 MB -- is
    faulted in again page by page each step (the embedding backward alone: 14 ms fresh, 4 ms
    reused, on the 2-core AMD EPYC this was measured on).  Here nothing is mmapped, the heap is
    not trimmed below 1 GB, and it grows with 64 MB to spare, so what a step allocates in between
    does not push the freed block off the top.  MiniLM on BC5CDR, each batch's step timed with
    and without (60 pairs): 12.1k -> 0.7k page faults a step, steps 15 ms (5%) shorter.  It is
    what jemalloc or tcmalloc, which PyTorch's CPU tuning guide suggests, would do, without
    preloading either.  The process keeps its peak heap until the block ends; then glibc's
    values are back (its sliding mmap threshold stays where it was) and the free heap is returned."""
    libc = _glibc() if device.type == "cpu" else None
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    libc.mallopt(_M_TOP_PAD, 64 << 20)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        libc.mallopt(_M_TOP_PAD, _DEFAULT_TOP_PAD)
        libc.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc
