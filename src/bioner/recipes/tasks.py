"""What differs between tagger kinds during training, behind one small interface.

The loop in :mod:`bioner.recipes.train` is the same for all kinds; a task supplies the model,
the training examples, batching, the loss, a tagger for dev/test scoring, and saving.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bioner.config import RunConfig
from bioner.corpus.types import Sentence
from bioner.encoding.batches import collate
from bioner.encoding.prompts import prompt_text, response_pieces
from bioner.encoding.subwords import IGNORE, SubwordEncoder
from bioner.errors import ConfigError, ModelError
from bioner.models.encoder import (
    TokenTagger, build_encoder, load_tokenizer, resolve_model_name, save_encoder,
)
from bioner.models.tagger import TAGGER_FILE, EncoderTagger, Tagger, pick_device


def tagger_meta(config: RunConfig) -> dict[str, Any]:
    m = config.model
    return {"kind": m.kind, "subword_strategy": m.subword_strategy, "max_subwords": m.max_subwords,
            "stride": m.stride, "context": m.context, "word_shape": m.word_shape,
            "trust_remote_code": m.trust_remote_code, "base_model": m.name,
            "bidirectional": m.bidirectional, "constrained": m.constrained,
            "generation_batch_size": m.generation_batch_size}


class TokenTask:
    """Encoders and LLMs with a token-classification head: sub-word windows, per-token loss."""

    def __init__(self, config: RunConfig, labels: list[str]) -> None:
        self.config, self.labels = config, labels
        m = config.model
        name = resolve_model_name(m.name)
        self.tokenizer = load_tokenizer(name, m.trust_remote_code)
        if m.kind == "encoder":
            self.model = build_encoder(name, labels, m.crf, m.trust_remote_code, m.word_shape)
        elif m.word_shape:
            raise ConfigError("model.word_shape is for encoders with token-type embeddings, not llm-cls")
        else:
            from bioner.models.llm import build_llm_cls, prepare_llm_tokenizer

            prepare_llm_tokenizer(self.tokenizer)
            self.model = TokenTagger(build_llm_cls(name, labels, m), labels, m.crf)
        self.model.to(pick_device())
        self.encoder = SubwordEncoder(self.tokenizer, {t: i for i, t in enumerate(labels)},
                                      m.subword_strategy, m.max_subwords, m.stride, m.context,
                                      shapes=m.word_shape)

    @property
    def module(self) -> nn.Module:
        return self.model

    def examples(self, sentences: Sequence[Sentence]) -> list[Any]:
        return self.encoder.encode_many([s.tokens for s in sentences], [s.tags for s in sentences])

    def collate(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        return collate(examples, self.tokenizer.pad_token_id, with_words=self.config.model.crf)  # type: ignore[attr-defined]

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.loss(batch)

    def tagger(self) -> Tagger:
        m = self.config.model
        return EncoderTagger(self.model, self.tokenizer, m.subword_strategy, m.max_subwords, m.stride,
                             context=m.context, shapes=m.word_shape)

    def save(self, folder: Path) -> None:
        if self.config.model.kind == "encoder":
            save_encoder(self.model, self.tokenizer, folder)
        else:
            from bioner.models.llm import save_llm

            save_llm(self.model.backbone, folder)
            save_encoder(self.model, self.tokenizer, folder, weights=False)
        (folder / TAGGER_FILE).write_text(json.dumps(tagger_meta(self.config), indent=1), encoding="utf-8")


@dataclass(slots=True)
class PromptExample:
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


class GenerativeTask:
    """Causal LMs trained to write ``token:TAG`` lines; loss on the response by default."""

    def __init__(self, config: RunConfig, labels: list[str]) -> None:
        from bioner.models.llm import build_llm_gen, prepare_llm_tokenizer

        self.config, self.labels = config, labels
        m = config.model
        name = resolve_model_name(m.name)
        self.tokenizer = prepare_llm_tokenizer(load_tokenizer(name, m.trust_remote_code))
        self.model = build_llm_gen(name, m)
        self.model.to(pick_device())
        self.types = sorted({label[2:] for label in labels if label != "O"})

    @property
    def module(self) -> nn.Module:
        return self.model

    def examples(self, sentences: Sequence[Sentence]) -> list[PromptExample]:
        from bioner.models.generative import piece_ids

        tok = self.tokenizer
        eos = tok.eos_token_id
        cache: dict[str, list[int]] = {}
        out = []
        for s in sentences:
            prompt = list(tok(prompt_text(s.tokens, self.types))["input_ids"])
            response: list[int] = []
            for piece in response_pieces(s.tokens, s.tags or []):
                if piece not in cache:
                    cache[piece] = piece_ids(tok, piece)
                response += cache[piece]
            response.append(eos)
            prompt_labels = prompt if self.config.model.loss_on_prompt else [IGNORE] * len(prompt)
            out.append(PromptExample(prompt + response, prompt_labels + response))
        return out

    def collate(self, examples: Sequence[PromptExample]) -> dict[str, torch.Tensor]:
        width = max(len(e) for e in examples)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(examples), width), pad, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for i, e in enumerate(examples):
            ids[i, : len(e)] = torch.tensor(e.input_ids)
            labels[i, : len(e)] = torch.tensor(e.labels)
            mask[i, : len(e)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).loss

    def tagger(self) -> Tagger:
        from bioner.models.generative import GenerativeTagger

        m = self.config.model
        return GenerativeTagger(self.model, self.tokenizer, self.labels, m.constrained, m.generation_batch_size)

    def save(self, folder: Path) -> None:
        from bioner.models.llm import save_llm

        save_llm(self.model, folder)
        self.tokenizer.save_pretrained(folder)
        (folder / "labels.json").write_text(json.dumps(self.labels, indent=1), encoding="utf-8")
        (folder / TAGGER_FILE).write_text(json.dumps(tagger_meta(self.config), indent=1), encoding="utf-8")


def make_task(config: RunConfig, labels: list[str]) -> TokenTask | GenerativeTask:
    if config.model.kind in ("encoder", "llm-cls"):
        return TokenTask(config, labels)
    if config.model.kind == "llm-gen":
        return GenerativeTask(config, labels)
    raise ModelError(f"unknown tagger kind {config.model.kind!r}")
