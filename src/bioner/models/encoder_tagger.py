"""The token tagger behind encoders and ``llm-cls``: sub-word windows → logits (→ CRF) → word tags.

Prediction batches windows of similar length under a padded-token budget with dynamic padding,
under ``torch.inference_mode`` (or through an ONNX Runtime session), and returns results in
input order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from bioner.config import InferenceConfig
from bioner.corpus.bio import repair_bio
from bioner.encoding.batches import collate, token_budget_batches
from bioner.encoding.subwords import SubwordEncoder, Window, stitch
from bioner.models.base import Tagger
from bioner.models.encoder import TokenTagger, word_emissions
from bioner.models.runtime import Precision, autocast

log = logging.getLogger(__name__)


class EncoderTagger(Tagger):
    kind = "encoder"

    def __init__(self, model: TokenTagger, tokenizer: object, strategy: str, max_subwords: int,
                 stride: int, max_tokens_per_batch: int | None = None, runner: Any = None,
                 batch_size: int | None = None, pad_to: int | None = None, context: int = 0,
                 shapes: bool = False, precision: Precision = "fp32",
                 inference: InferenceConfig | None = None) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.precision = precision
        self.inference = inference or InferenceConfig()
        self.batch_sentences = self.inference.batch_sentences
        self.runner = runner  # an OnnxRunner, or None for torch
        self.backend = "torch" if runner is None else f"onnx:{runner.path.name}"
        self.tokenizer = tokenizer
        self.labels = model.labels
        self.strategy = strategy
        self.max_subwords = max_subwords
        self.stride = stride
        self.context = context  # neighbouring sub-words each side; token_lists are read in document order
        self.shapes = shapes  # casing classes as token types (model.word_shape)
        self.max_tokens = max_tokens_per_batch or (
            self.inference.max_tokens_gpu if self.device.type == "cuda" else self.inference.max_tokens_cpu)
        self.batch_size = batch_size
        self.pad_to = pad_to  # pad every batch to this many sub-words (the reference study's loop)
        self.last_stats: dict[str, Any] = {}

    def reference_loop(self) -> "EncoderTagger":
        """The same model and encoding run as the reference study's loop does: one sentence per
        batch, padded to ``inference.reference_pad_to`` (512) sub-words, in fp32 (the baseline
        the cost benchmarks compare against)."""
        ref = EncoderTagger(self.model, self.tokenizer, self.strategy, self.max_subwords, self.stride,
                            runner=self.runner, batch_size=1, pad_to=self.inference.reference_pad_to,
                            context=self.context, shapes=self.shapes, inference=self.inference)
        ref.kind = self.kind
        return ref

    def encoder(self) -> SubwordEncoder:
        label2id = {label: i for i, label in enumerate(self.labels)}
        return SubwordEncoder(self.tokenizer, label2id, self.strategy, self.max_subwords, self.stride,
                              self.context, self.shapes)

    @torch.inference_mode()
    def predict_ids(self, windows: list[Window]) -> tuple[list[list[int]], list[list[float]]]:
        """Per window: sub-word label ids (no CRF) or owned-word label ids (CRF), each with the
        model's probability for it (softmax of the logits; of the emissions under a CRF)."""
        out: list[list[int]] = [[] for _ in windows]
        probs: list[list[float]] = [[] for _ in windows]
        pad = self.tokenizer.pad_token_id  # type: ignore[attr-defined]
        with_words = self.model.crf is not None
        for idx in token_budget_batches([len(w) for w in windows], self.max_tokens, self.batch_size):
            batch = collate([windows[i] for i in idx], pad, with_words=with_words, pad_to=self.pad_to)
            if self.runner is not None:
                logits = self.runner(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
            else:
                batch = {k: v.to(self.device) for k, v in batch.items()}
                with autocast(self.device, self.precision):
                    logits = self.model.emissions(batch["input_ids"], batch["attention_mask"],
                                                  batch.get("token_type_ids")).float()
            if self.model.crf is not None:
                emissions = word_emissions(logits, batch["word_pos"])
                paths = self.model.crf.decode(emissions, batch["word_mask"], batch["word_first"])
                soft = emissions.softmax(-1).cpu()
                for row, (i, path) in enumerate(zip(idx, paths)):
                    out[i] = path
                    probs[i] = [float(soft[row, k, label]) for k, label in enumerate(path)]
            else:
                best_p, best = logits.softmax(-1).max(-1)
                for i, row, row_p in zip(idx, best.tolist(), best_p.tolist()):
                    out[i] = row[: len(windows[i])]
                    probs[i] = row_p[: len(windows[i])]
        return out, probs

    def predict(self, token_lists: Sequence[Sequence[str]]) -> list[list[str]]:
        return self.predict_with_scores(token_lists)[0]

    def predict_with_scores(self, token_lists: Sequence[Sequence[str]]
                            ) -> tuple[list[list[str]], list[list[float]] | None]:
        enc = self.encoder()
        windows = enc.encode_many(token_lists)
        preds, probs = self.predict_ids(windows)
        by_sentence: dict[int, list[int]] = {}
        for j, w in enumerate(windows):
            by_sentence.setdefault(w.sentence, []).append(j)
        results: list[list[str]] = []
        scores: list[list[float]] = []
        for k, words in enumerate(token_lists):
            js = by_sentence.get(k, [])
            word_p = [1.0] * len(words)
            if self.model.crf is not None:
                ids = [-1] * len(words)
                for j in js:
                    for word, label, p in zip(windows[j].owned, preds[j], probs[j]):
                        ids[word], word_p[word] = label, p
            else:
                ids = stitch(len(words), [windows[j] for j in js], [preds[j] for j in js], self.strategy)
                for j in js:  # the probability at each owned word's first sub-word
                    own, seen = set(windows[j].owned), set()
                    for pos, word in enumerate(windows[j].word_ids):
                        if word in own and word not in seen:
                            seen.add(word)
                            word_p[word] = probs[j][pos]
            tags = [self.labels[i] for i in ids]
            if self.model.crf is not None and len(js) > 1:
                # a window cut mid-sentence may begin inside an entity (I-); where the window before
                # ended outside one, that I- starts the entity: keep the output valid IOB2
                tags = repair_bio(tags)[0]
            results.append(tags)
            scores.append(word_p)
        self.last_stats = enc.stats.to_dict()
        if enc.stats.empty_words:
            log.warning("%d word(s) had no sub-words and were read as the unknown token (e.g. %s)",
                        enc.stats.empty_words, ", ".join(enc.stats.empty_word_examples[:3]))
        return results, scores

    def report_extra(self) -> dict[str, Any]:
        return {"kind": self.kind, "backend": self.backend, "precision": self.precision,
                "encoding": self.last_stats}

    def forward_flops(self, token_lists: Sequence[Sequence[str]]) -> float:
        """≈ 2 FLOPs per non-embedding weight per sub-word, plus attention (4·L·d·n² per window)."""
        lengths = [len(w) for w in self.encoder().encode_many(token_lists)]
        model = self.model.backbone
        config = model.config  # type: ignore[attr-defined]
        embed = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
        dense = sum(p.numel() for p in model.parameters()) - embed
        layers = getattr(config, "num_hidden_layers", 0)
        hidden = getattr(config, "hidden_size", 0)
        return 2.0 * dense * sum(lengths) + 4.0 * layers * hidden * sum(n * n for n in lengths)
