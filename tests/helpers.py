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
    from bioner.recipes.checkpoint import write_folder_atomically
    from bioner.recipes.tasks import TokenTask

    base = tiny_bert_folder(folder / "base")
    torch.manual_seed(seed)
    config = build_config("cpu", overrides=[f"model.name={base}", "model.max_subwords=64", "model.stride=16",
                                            f"model.crf={str(crf).lower()}"])
    write_folder_atomically(folder / "model", TokenTask(config, labels).save)
    return folder


def train_bpe_tokenizer(folder: Path, texts: list[str], vocab_size: int = 1200) -> Path:
    """A byte-level BPE tokenizer trained on the fly (keeps case and newlines, unlike MiniLM's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(folder)
    return folder


def tiny_decoder_folder(folder: Path, arch: str, texts: list[str], hidden: int = 64, layers: int = 2) -> Path:
    """A randomly initialised Llama / Mistral / Qwen2 with an on-the-fly tokenizer, as a model folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    train_bpe_tokenizer(folder, texts)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    config = AutoConfig.for_model(arch, vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                                  num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                  max_position_embeddings=2048, bos_token_id=tok.bos_token_id,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                  tie_word_embeddings=False)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder, safe_serialization=True)
    return folder


def corpus_texts(sentences: list) -> list[str]:  # type: ignore[type-arg]
    """Texts to train a test tokenizer on: sentences, prompts and tag lines."""
    from bioner.encoding.prompts import prompt_text, response_pieces

    texts = []
    types = sorted({t[2:] for s in sentences for t in (s.tags or []) if t != "O"})
    for s in sentences:
        texts.append(prompt_text(s.tokens, types))
        texts.append("".join(response_pieces(s.tokens, s.tags or ["O"] * len(s.tokens))))
    return texts
