"""Tiny random-weight models built in the tests, saved and loaded the way users' models are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import strategies as st

from bioner.models.sources import embedded_model_dir

TYPES = ["Chemical", "Disease", "Gene"]
REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path | None:
    """``$BIONER_DATA_DIR`` if set, else ``../shared/datasets`` beside the checkout."""
    env = os.environ.get("BIONER_DATA_DIR")
    candidate = Path(env) if env else REPO.parent / "shared" / "datasets"
    return candidate if candidate.is_dir() else None


def bioner(*args: str, env: dict[str, str] | None = None, check: bool = True,
           cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh process, as a user would."""
    proc = subprocess.run([sys.executable, "-m", "bioner", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"bioner {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def dataset_split(data_dir: Path, name: str, split: str) -> Path:
    path = data_dir / name / f"{split}.txt"
    if not path.is_file():
        pytest.skip(f"{path} is missing from the data dir")
    return path


@st.composite
def valid_iob2(draw: st.DrawFn, max_len: int = 30) -> list[str]:
    n = draw(st.integers(0, max_len))
    tags: list[str] = []
    for _ in range(n):
        choice = draw(st.sampled_from(["O", "B", "I"]))
        if choice == "I" and tags and tags[-1] != "O":
            tags.append("I-" + tags[-1][2:])
        elif choice == "O":
            tags.append("O")
        else:
            tags.append("B-" + draw(st.sampled_from(TYPES)))
    return tags



def tiny_bert_folder(folder: Path, hidden: int = 32, layers: int = 2, max_positions: int = 512) -> Path:
    """A 2-layer BERT with the MiniLM tokenizer, random weights, as a model folder."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    tok = AutoTokenizer.from_pretrained(str(embedded_model_dir()))
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2,
                        max_position_embeddings=max_positions)
    BertForTokenClassification(config).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def tiny_run_folder(folder: Path, labels: list[str], crf: bool = False, seed: int = 0,
                    word_shape: bool = False) -> Path:
    """A run folder as `bioner train` leaves it, around a tiny random BERT.  Its precision policy
    is fp32: tests compare outputs across batchings, processes and servers to float precision,
    and bf16 rounding (``auto`` on CPUs with native bf16) depends on how sentences are batched."""
    import torch

    from bioner.config import build_config
    from bioner.files import write_folder_atomically
    from bioner.recipes.tasks import TokenTask

    base = tiny_bert_folder(folder / "base")
    torch.manual_seed(seed)
    config = build_config("cpu", overrides=[f"model.name={base}", "model.max_subwords=64", "model.stride=16",
                                            f"model.crf={str(crf).lower()}",
                                            f"model.word_shape={str(word_shape).lower()}", "train.precision=fp32"])
    write_folder_atomically(folder / "model", TokenTask(config, labels).save)
    return folder


def tiny_decoder_folder(folder: Path, arch: str, texts: list[str], hidden: int = 64, layers: int = 2) -> Path:
    """A randomly initialised Llama / Mistral / Qwen2 with an on-the-fly tokenizer, as a model folder."""
    from bioner.models.tiny import tiny_decoder

    return tiny_decoder(folder, arch, texts, hidden, layers)


def corpus_texts(sentences: list) -> list[str]:  # type: ignore[type-arg]
    from bioner.models.tiny import corpus_texts as texts

    return texts(sentences)
