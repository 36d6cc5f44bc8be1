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


def tiny_run_folder(folder: Path, labels: list[str], crf: bool = False, seed: int = 0,
                    word_shape: bool = False) -> Path:
    """A run folder as `bioner train` leaves it, around a tiny random BERT."""
    import torch

    from bioner.config import build_config
    from bioner.recipes.checkpoint import write_folder_atomically
    from bioner.recipes.tasks import TokenTask

    base = tiny_bert_folder(folder / "base")
    torch.manual_seed(seed)
    config = build_config("cpu", overrides=[f"model.name={base}", "model.max_subwords=64", "model.stride=16",
                                            f"model.crf={str(crf).lower()}",
                                            f"model.word_shape={str(word_shape).lower()}"])
    write_folder_atomically(folder / "model", TokenTask(config, labels).save)
    return folder


def tiny_decoder_folder(folder: Path, arch: str, texts: list[str], hidden: int = 64, layers: int = 2) -> Path:
    """A randomly initialised Llama / Mistral / Qwen2 with an on-the-fly tokenizer, as a model folder."""
    from bioner.models.tiny import tiny_decoder

    return tiny_decoder(folder, arch, texts, hidden, layers)


def corpus_texts(sentences: list) -> list[str]:  # type: ignore[type-arg]
    from bioner.models.tiny import corpus_texts as texts

    return texts(sentences)
