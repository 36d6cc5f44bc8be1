"""What differs between tagger kinds during training, behind one small interface.

The loop in :mod:`bioner.recipes.train` is the same for all kinds; a task supplies the model,
the training examples, batching, the loss, a tagger for dev/test scoring, and saving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bioner.config import RunConfig
from bioner.corpus.bio import repair_bio
from bioner.corpus.labels import LabelSet
from bioner.corpus.types import Sentence
from bioner.encoding.batches import collate
from bioner.encoding.prompts import prompt_text, response_pieces
from bioner.encoding.subwords import IGNORE, SubwordEncoder, Window
from bioner.errors import ConfigError, ModelError
from bioner.models.base import Tagger
from bioner.models.encoder import (
    TokenTagger,
    build_encoder,
    load_tokenizer,
    save_encoder,
)
from bioner.models.encoder_tagger import EncoderTagger
from bioner.models.folder import TaggerMeta, write_tagger_files
from bioner.models.runtime import Precision, cast_linear_weights, pick_device
from bioner.models.sources import resolve_model_name
from bioner.recipes.pseudo import load_pseudo


def tagger_meta(config: RunConfig, trained_precision: Precision) -> TaggerMeta:
    """``tagger.json`` from the run's config: never ``trust_remote_code`` (a loader asks its user)."""
    m, i = config.model, config.inference
    return TaggerMeta(kind=m.kind, subword_strategy=m.subword_strategy, max_subwords=m.max_subwords,
                      stride=m.stride, context=m.context, word_shape=m.word_shape, base_model=m.name,
                      bidirectional=m.bidirectional, constrained=m.constrained,
                      generation_batch_size=m.generation_batch_size, precision=config.train.precision,
                      trained_precision=trained_precision, max_tokens_cpu=i.max_tokens_cpu,
                      max_tokens_gpu=i.max_tokens_gpu, reference_pad_to=i.reference_pad_to,
                      batch_sentences=i.batch_sentences)


class TokenTask:
    """Encoders and LLMs with a token-classification head: sub-word windows, per-token loss."""

    def __init__(self, config: RunConfig, labels: list[str], precision: Precision = "fp32") -> None:
        self.config, self.labels, self.precision = config, labels, precision
        m = config.model
        name = resolve_model_name(m.name)
        self.tokenizer = load_tokenizer(name, m.trust_remote_code)
        if m.kind == "encoder":
            self.model = build_encoder(name, labels, m.crf, m.trust_remote_code, m.word_shape, m.allow_pickle)
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
                             context=m.context, shapes=m.word_shape, precision=self.precision,
                             inference=self.config.inference)

    def save(self, folder: Path) -> None:
        if self.config.model.kind == "encoder":
            save_encoder(self.model, self.tokenizer, folder)
        else:
            from bioner.models.llm import save_llm

            save_llm(self.model.backbone, folder)
            save_encoder(self.model, self.tokenizer, folder, weights=False)
        write_tagger_files(folder, self.labels, tagger_meta(self.config, self.precision))


@dataclass(slots=True)
class PromptExample:
    """A prompt + response as one sequence; shaped like a sub-word window for :func:`collate`."""

    input_ids: list[int]
    labels: list[int]
    shape_ids: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)


class GenerativeTask:
    """Causal LMs trained to write ``token:TAG`` lines; loss on the response by default."""

    def __init__(self, config: RunConfig, labels: list[str], precision: Precision = "fp32") -> None:
        from bioner.models.llm import build_llm_gen, prepare_llm_tokenizer

        self.config, self.labels, self.precision = config, labels, precision
        m = config.model
        name = resolve_model_name(m.name)
        self.tokenizer = prepare_llm_tokenizer(load_tokenizer(name, m.trust_remote_code))
        self.model = build_llm_gen(name, m)
        self.model.to(pick_device())
        self.types = list(LabelSet.from_tags(labels).types)

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
        return collate(examples, self.tokenizer.pad_token_id)  # type: ignore[arg-type]

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        from bioner.models.llm import response_loss

        return response_loss(self.model, batch)  # the same loss as model(**batch).loss, logits only where labelled

    def tagger(self) -> Tagger:
        """Scores dev as the run folder's model will run: on a CPU, a merged copy whose Linear
        weights are bf16 in a bf16 run (generation makes thousands of small decoder calls, each
        paying the adapters' extra products and autocast's re-cast of every frozen weight).  The
        training model is untouched; a quantized one (QLoRA) or one on a GPU is used as it is."""
        from bioner.models.generative import GenerativeTagger
        from bioner.models.llm import merged_copy

        m = self.config.model
        model = self.model
        if next(model.parameters()).device.type == "cpu" and m.quantize is None:
            model = merged_copy(model)
            if self.precision == "bf16":
                cast_linear_weights(model)
        tagger = GenerativeTagger(model, self.tokenizer, self.labels, m.constrained, m.generation_batch_size)
        tagger.precision = self.precision
        return tagger

    def save(self, folder: Path) -> None:
        from bioner.models.llm import save_llm

        save_llm(self.model, folder)
        self.tokenizer.save_pretrained(folder)
        write_tagger_files(folder, self.labels, tagger_meta(self.config, self.precision))


@dataclass(slots=True)
class SoftWindow(Window):
    """A window of a pseudo-labelled sentence, with the teacher's distribution per word."""

    soft: torch.Tensor | None = None  # (words of the sentence, labels)


class DistillTask:
    """The student's TokenTask plus the pseudo-labelled sentences and the distillation term."""

    def __init__(self, config: RunConfig, labels: list[str], precision: Precision, run_dir: Path) -> None:
        if config.model.kind != "encoder":
            raise ConfigError("the student of `bioner distill` is an encoder (MiniLM or a model folder)")
        self.inner = TokenTask(config, labels, precision)
        self.config, self.labels, self.run_dir = config, labels, run_dir

    def __getattr__(self, name: str) -> Any:  # module, model, tokenizer, encoder, tagger, save
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def examples(self, sentences: Sequence[Any]) -> list[Any]:
        gold = self.inner.examples(sentences)
        tokens, dists = load_pseudo(self.run_dir)
        # the argmax per word can break IOB2 (I- after O), which a CRF student cannot score: repair it
        tags = [repair_bio([self.labels[i] for i in d.argmax(-1).tolist()])[0] for d in dists]
        windows = self.inner.encoder.encode_many(tokens, tags)
        pseudo = [SoftWindow(w.sentence, w.input_ids, w.word_ids, w.labels, w.owned, w.shape_ids, dists[w.sentence])
                  for w in windows]
        return gold + pseudo

    def collate(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        batch = collate(examples, self.inner.tokenizer.pad_token_id, with_words=self.config.model.crf)  # type: ignore[attr-defined]
        n, width = batch["input_ids"].shape
        soft = torch.zeros(n, width, len(self.labels))
        mask = torch.zeros(n, width, dtype=torch.bool)
        for i, w in enumerate(examples):
            if isinstance(w, SoftWindow) and w.soft is not None:
                for pos, (word, label) in enumerate(zip(w.word_ids, w.labels)):
                    if label != IGNORE and word >= 0:
                        soft[i, pos] = w.soft[word]
                        mask[i, pos] = True
        batch["soft"], batch["soft_mask"] = soft, mask
        return batch

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        d = self.config.distill
        assert d is not None
        model = self.inner.model
        logits = model.emissions(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        loss = model.loss(batch, logits)
        mask = batch["soft_mask"]
        if d.hard or d.alpha == 0 or not bool(mask.any()):
            return loss
        t = d.temperature
        student = nn.functional.log_softmax(logits[mask].float() / t, dim=-1)
        teacher = batch["soft"][mask].clamp(min=1e-8)
        kl = nn.functional.kl_div(student, teacher, reduction="batchmean")
        return loss + d.alpha * t * t * kl


def make_task(config: RunConfig, labels: list[str], precision: Precision = "fp32",
              run_dir: Path | None = None) -> TokenTask | GenerativeTask:
    if config.distill is not None:  # a student: gold + the teachers' pseudo-labels in run_dir
        if run_dir is None:
            raise ConfigError("a distillation run needs its run folder (for the pseudo-labels)")
        return DistillTask(config, labels, precision, run_dir)  # type: ignore[return-value]
    if config.model.kind in ("encoder", "llm-cls"):
        return TokenTask(config, labels, precision)
    if config.model.kind == "llm-gen":
        return GenerativeTask(config, labels, precision)
    raise ModelError(f"unknown tagger kind {config.model.kind!r}")
