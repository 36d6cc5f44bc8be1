"""Tiny random-weight models built in the tests, saved and loaded the way users' models are."""

from __future__ import annotations

from pathlib import Path

from bioner.models.encoder import embedded_model_dir


def tiny_bert_folder(folder: Path, hidden: int = 32, layers: int = 2, max_positions: int = 128) -> Path:
    """A 2-layer BERT with the MiniLM tokenizer, random weights, as a model folder."""
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    tok = AutoTokenizer.from_pretrained(str(embedded_model_dir()))
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2,
                        max_position_embeddings=max_positions)
    BertForTokenClassification(config).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder
