"""Tiny random-weight models built in the tests, saved and loaded the way users' models are."""

from __future__ import annotations

from pathlib import Path

from bioner.models.encoder import embedded_model_dir


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


def tiny_run_folder(folder: Path, labels: list[str], crf: bool = False, seed: int = 0) -> Path:
    """A run folder as `bioner train` leaves it, around a tiny random BERT."""
    import torch

    from bioner.config import build_config
    from bioner.models.encoder import build_encoder, load_tokenizer
    from bioner.recipes.train import save_best

    base = tiny_bert_folder(folder / "base")
    torch.manual_seed(seed)
    model = build_encoder(str(base), labels, crf=crf)
    config = build_config("cpu", overrides=[f"model.name={base}", "model.max_subwords=64", "model.stride=16"])
    save_best(folder, model, load_tokenizer(str(base)), config)
    return folder
