"""The pseudo-label cache of a distillation run: ``RUN/pseudo/part-NNNNN.{safetensors,jsonl}``
(per chunk: the sentences' tokens, and float16 per-word tag distributions with their lengths)
and ``manifest.json``.  Written by :mod:`bioner.recipes.distill`, read by the student's task."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from bioner.errors import ConfigError
from bioner.files import atomic_write

PSEUDO = "pseudo"
MANIFEST = "manifest.json"


def write_chunk(folder: Path, index: int, sentences: Sequence[Sequence[str]], dists: Sequence[torch.Tensor]) -> str:
    """Write one chunk (each file atomically); returns its name for the manifest."""
    name = f"part-{index:05d}"
    tensors = {"probs": torch.cat(list(dists)).to(torch.float16).contiguous(),
               "lengths": torch.tensor([len(s) for s in sentences], dtype=torch.int64)}
    with atomic_write(folder / f"{name}.safetensors", "wb") as out:
        out.write(save(tensors))
    with atomic_write(folder / f"{name}.jsonl") as out:
        out.write("".join(json.dumps(list(s), ensure_ascii=False) + "\n" for s in sentences))
    return name


def load_pseudo(run_dir: Path) -> tuple[list[list[str]], list[torch.Tensor]]:
    """The pseudo-labelled sentences and their (words, labels) distributions, in order."""
    folder = run_dir / PSEUDO
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    sentences: list[list[str]] = []
    dists: list[torch.Tensor] = []
    for entry in manifest["chunks"]:
        tensors = load_file(str(folder / f"{entry['name']}.safetensors"))
        chunk = [json.loads(line) for line in (folder / f"{entry['name']}.jsonl").read_text(encoding="utf-8").splitlines()]
        lengths = tensors["lengths"].tolist()
        if len(chunk) != len(lengths) or sum(lengths) != tensors["probs"].shape[0]:
            raise ConfigError(f"{folder / entry['name']}: sentences and probabilities disagree; delete {folder} "
                              "to pseudo-label again")
        sentences += chunk
        dists += list(tensors["probs"].float().split(lengths))
    return sentences, dists
