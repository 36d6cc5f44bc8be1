"""Tiny randomly initialised decoders (Llama, Mistral, Qwen2) with a tokenizer trained on the
fly: for tests and CPU demos of the LLM code paths where no real checkpoint can be downloaded.
Their accuracy means nothing; their shapes, code paths and costs are real."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bioner.corpus.labels import LabelSet
from bioner.corpus.types import Sentence
from bioner.encoding.prompts import prompt_text, response_pieces

ARCHITECTURES = ("llama", "mistral", "qwen2")


def corpus_texts(sentences: Sequence[Sentence]) -> list[str]:
    """Texts to train a tokenizer on: the prompts and responses the taggers will see."""
    types = list(LabelSet.from_tags(t for s in sentences for t in (s.tags or [])).types)
    texts = []
    for s in sentences:
        texts.append(prompt_text(s.tokens, types))
        texts.append("".join(response_pieces(s.tokens, s.tags or ["O"] * len(s.tokens))))
    return texts


def train_bpe_tokenizer(folder: Path, texts: list[str], vocab_size: int = 1200) -> Path:
    """A byte-level BPE tokenizer (keeps case and newlines) saved as a fast HF tokenizer."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
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


def tiny_decoder(folder: Path, arch: str, texts: list[str], hidden: int = 64, layers: int = 2,
                 seed: int = 0) -> Path:
    """Write a random ``arch`` decoder (2 layers by default) and its tokenizer to ``folder``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if arch not in ARCHITECTURES:
        raise ValueError(f"tiny decoders come as {', '.join(ARCHITECTURES)}, not {arch}")
    train_bpe_tokenizer(folder, texts)
    tok = AutoTokenizer.from_pretrained(folder)
    config = AutoConfig.for_model(arch, vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                                  num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                  max_position_embeddings=2048, bos_token_id=tok.bos_token_id,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                  tie_word_embeddings=False)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder, safe_serialization=True)
    return folder
