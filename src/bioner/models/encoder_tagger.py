"""The token tagger behind encoders and ``llm-cls``: sub-word windows → logits (→ CRF) → word tags.

Prediction batches windows of similar length under a padded-token budget with dynamic padding,
under ``torch.inference_mode`` (or through an ONNX Runtime session), and returns results in
input order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from bioner.config import InferenceConfig
from bioner.corpus.bio import repair_bio, tags_to_spans
from bioner.corpus.types import Span
from bioner.encoding.batches import collate, token_budget_batches
from bioner.encoding.subwords import SubwordEncoder, Window, stitch
from bioner.models.base import Tagger
from bioner.models.crf import segment_log_prob
from bioner.models.encoder import TokenTagger, forward_flops, word_emissions
from bioner.models.runtime import Precision, autocast

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WindowScores:
    """What span probabilities need from one window: the CRF's word emissions and its
    forward-backward tables (at ``temperature``), or the logits over its sub-words."""

    emissions: torch.Tensor | None = None  # CRF: (owned words, labels); softmax: (sub-words, labels) logits
    first: bool = True  # the window starts its sentence (the CRF's start rule applies)
    alpha: torch.Tensor | None = None
    beta: torch.Tensor | None = None
    log_z: float = 0.0
    temperature: float = 1.0
    # (temperature, alpha, beta, emissions / temperature) as flat Python lists, for scoring spans
    _rows: tuple[float, list[float], list[float], list[float]] | None = field(default=None, repr=False)

    def tables(self, crf: Any, temperature: float) -> tuple[torch.Tensor, torch.Tensor, float]:
        """alpha, beta, log Z at ``temperature`` (recomputed for this window when it differs)."""
        if self.alpha is None or self.temperature != temperature:
            assert self.emissions is not None
            n = self.emissions.shape[0]
            alpha, beta, log_z = crf.forward_backward(self.emissions[None], torch.ones(1, n, dtype=torch.bool),
                                                      torch.tensor([self.first]), temperature)
            self.alpha, self.beta, self.log_z, self.temperature = alpha[0], beta[0], float(log_z[0]), temperature
        return self.alpha, self.beta, self.log_z  # type: ignore[return-value]

    def rows(self, crf: Any, temperature: float) -> tuple[list[float], list[float], float, list[float]]:
        """:meth:`tables` and the tempered emissions as flat lists (row-major), converted once per
        window: one list each rather than one per word, so scoring spans leaves the garbage
        collector little to walk (see :func:`~bioner.models.crf.segment_log_prob`)."""
        alpha, beta, log_z = self.tables(crf, temperature)
        if self._rows is None or self._rows[0] != temperature:
            assert self.emissions is not None
            self._rows = (temperature, alpha.flatten().tolist(), beta.flatten().tolist(),
                          (self.emissions / temperature).flatten().tolist())
        return self._rows[1], self._rows[2], log_z, self._rows[3]


CRF_CELLS = 2**14  # rows x words of word emissions per CRF pass: fewer passes, little padding (see _crf_pass)

TEMPERATURES = (0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)


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
        self.label2id = {label: i for i, label in enumerate(self.labels)}
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
        self.temperature = 1.0  # divides scores before span probabilities (fitted on dev; tags unchanged)

    def reference_loop(self) -> EncoderTagger:
        """The same model and encoding run as the reference study's loop does: one sentence per
        batch, padded to ``inference.reference_pad_to`` (512) sub-words, in fp32 (the baseline
        the cost benchmarks compare against)."""
        ref = EncoderTagger(self.model, self.tokenizer, self.strategy, self.max_subwords, self.stride,
                            runner=self.runner, batch_size=1, pad_to=self.inference.reference_pad_to,
                            context=self.context, shapes=self.shapes, inference=self.inference)
        ref.kind = self.kind
        return ref

    def encoder(self) -> SubwordEncoder:
        return SubwordEncoder(self.tokenizer, self.label2id, self.strategy, self.max_subwords, self.stride,
                              self.context, self.shapes)

    @torch.inference_mode()
    def predict_ids(self, windows: list[Window], with_scores: bool = True
                    ) -> tuple[list[list[int]], list[WindowScores]]:
        """Per window: sub-word label ids (no CRF) or owned-word label ids (CRF), and (``with_scores``)
        what span scores are computed from: the CRF's forward-backward tables, or the logits."""
        out: list[list[int]] = [[] for _ in windows]
        extra: list[WindowScores] = [WindowScores() for _ in windows]
        pad = self.tokenizer.pad_token_id  # type: ignore[attr-defined]
        crf = self.model.crf
        pending: list[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for idx in token_budget_batches([len(w) for w in windows], self.max_tokens, self.batch_size):
            batch = collate([windows[i] for i in idx], pad, with_words=crf is not None, pad_to=self.pad_to)
            if self.runner is not None:
                logits = self.runner(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
            else:
                batch = {k: v.to(self.device) for k, v in batch.items()}
                with autocast(self.device, self.precision):
                    logits = self.model.emissions(batch["input_ids"], batch["attention_mask"],
                                                  batch.get("token_type_ids")).float()
            if crf is not None:
                pending.append((idx, word_emissions(logits, batch["word_pos"]).float(), batch["word_mask"],
                                batch["word_first"]))
                if sum(len(p[0]) for p in pending) * max(p[1].shape[1] for p in pending) >= CRF_CELLS:
                    self._crf_pass(pending, with_scores, out, extra)
                    pending.clear()
                continue
            logits = logits.float().cpu()
            best = logits.argmax(-1).tolist()
            for row, i in enumerate(idx):
                out[i] = best[row][: len(windows[i])]
                if with_scores:
                    extra[i] = WindowScores(logits[row, : len(windows[i])])
        if pending:
            self._crf_pass(pending, with_scores, out, extra)
        return out, extra

    def _crf_pass(self, pending: list[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]], with_scores: bool,
                  out: list[list[int]], extra: list[WindowScores]) -> None:
        """Viterbi (and forward-backward) over the word emissions of several model batches at
        once: a CRF step is a few small ops that cost mostly their dispatch, so one pass over a few
        hundred rows of similar length (batches arrive longest first) costs a third of one pass
        per batch (BC5CDR test, 2^14 cells; 2^16 pads too much).  Rows are independent, so the
        results are the same."""
        crf = self.model.crf
        width = max(e.shape[1] for _, e, _, _ in pending)
        emissions = torch.cat([torch.nn.functional.pad(e, (0, 0, 0, width - e.shape[1])) for _, e, _, _ in pending])
        mask = torch.cat([torch.nn.functional.pad(m, (0, width - m.shape[1]), value=False) for _, _, m, _ in pending])
        first = torch.cat([f for _, _, _, f in pending])
        idx = [i for ix, _, _, _ in pending for i in ix]
        paths = crf.decode(emissions, mask, first)
        if not with_scores:
            for i, path in zip(idx, paths):
                out[i] = path
            return
        alpha, beta, log_z = crf.forward_backward(emissions, mask, first, self.temperature)
        alpha, beta, emissions, log_z = alpha.cpu(), beta.cpu(), emissions.cpu(), log_z.cpu()
        for row, (i, path) in enumerate(zip(idx, paths)):
            out[i] = path
            n = len(path)
            extra[i] = WindowScores(emissions[row, :n], bool(first[row]), alpha[row, :n], beta[row, :n],
                                    float(log_z[row]), self.temperature)

    def predict(self, token_lists: Sequence[Sequence[str]]) -> list[list[str]]:
        """Tags only: no forward-backward and no span scores on this path."""
        return self._predict(token_lists, with_scores=False)[0]

    def predict_with_scores(self, token_lists: Sequence[Sequence[str]]
                            ) -> tuple[list[list[str]], list[dict[tuple[int, int], float]] | None]:
        return self._predict(token_lists, with_scores=True)

    def _predict(self, token_lists: Sequence[Sequence[str]], with_scores: bool
                 ) -> tuple[list[list[str]], list[dict[tuple[int, int], float]] | None]:
        enc = self.encoder()
        windows = enc.encode_many(token_lists)
        preds, extra = self.predict_ids(windows, with_scores)
        self.last_stats = enc.stats.to_dict()
        if enc.stats.empty_words:
            log.warning("%d word(s) had no sub-words and were read as the unknown token (e.g. %s)",
                        enc.stats.empty_words, ", ".join(enc.stats.empty_word_examples[:3]))
        return self._assemble(token_lists, windows, preds, extra, self.temperature if with_scores else None)

    @torch.inference_mode()
    def word_distributions(self, token_lists: Sequence[Sequence[str]], temperature: float = 1.0) -> list[torch.Tensor]:
        """Per sentence, a (words, labels) tensor of tag probabilities at ``temperature``: the CRF's
        tag marginals (forward-backward), or the softmax of each word's first sub-word logits.
        What a teacher hands a student in distillation."""
        enc = self.encoder()
        windows = enc.encode_many(token_lists)
        saved, self.temperature = self.temperature, temperature
        try:
            _, extra = self.predict_ids(windows, with_scores=True)
        finally:
            self.temperature = saved
        out = [torch.zeros(len(words), len(self.labels)) for words in token_lists]
        seen = [torch.zeros(len(words), dtype=torch.bool) for words in token_lists]
        for window, sc in zip(windows, extra):
            rows = out[window.sentence]
            if self.model.crf is not None:
                alpha, beta, log_z = sc.tables(self.model.crf, temperature)
                marginals = (alpha + beta - log_z).exp()
                for j, word in enumerate(window.owned):
                    rows[word] = marginals[j]
                    seen[window.sentence][word] = True
                continue
            assert sc.emissions is not None
            own = set(window.owned)
            for pos, word in enumerate(window.word_ids):
                if word in own and not seen[window.sentence][word]:
                    rows[word] = (sc.emissions[pos].float() / temperature).softmax(-1)
                    seen[window.sentence][word] = True
        return [rows / rows.sum(-1, keepdim=True).clamp(min=1e-12) for rows in out]

    def fit_temperature(self, token_lists: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]],
                        grid: Sequence[float] = TEMPERATURES) -> dict[str, float]:
        """The temperature whose span scores are best calibrated (lowest ECE) on these sentences
        (a dev split); the model runs once, only the scoring is repeated.  Sets and returns it."""
        from bioner.evaluate.calibration import calibration, scored_outcomes

        windows = self.encoder().encode_many(token_lists)
        preds, extra = self.predict_ids(windows)
        ece = {}
        for t in sorted(set(grid) | {1.0}):
            tags, scores = self._assemble(token_lists, windows, preds, extra, t)
            ece[t] = calibration(scored_outcomes(gold_tags, tags, scores or [])).ece
        best = min(ece, key=lambda t: (ece[t], abs(t - 1.0)))
        self.temperature = best
        return {"temperature": best, "ece_at_1": ece[1.0], "ece": ece[best]}

    def _assemble(self, token_lists: Sequence[Sequence[str]], windows: list[Window], preds: list[list[int]],
                  extra: list[WindowScores], temperature: float | None
                  ) -> tuple[list[list[str]], list[dict[tuple[int, int], float]] | None]:
        """Stitch window predictions into one tag per word and, unless ``temperature`` is None,
        score each span at that temperature."""
        by_sentence: dict[int, list[int]] = {}
        for j, w in enumerate(windows):
            by_sentence.setdefault(w.sentence, []).append(j)
        results: list[list[str]] = []
        scores: list[dict[tuple[int, int], float]] = []
        crf_moves: tuple[list[list[float]], list[float]] | None = None  # transitions and end scores, once
        for k, words in enumerate(token_lists):
            js = by_sentence.get(k, [])
            if self.model.crf is not None:
                ids = [-1] * len(words)
                for j in js:
                    for word, label in zip(windows[j].owned, preds[j]):
                        ids[word] = label
            else:
                ids = stitch(len(words), [windows[j] for j in js], [preds[j] for j in js], self.strategy)
            tags = [self.labels[i] for i in ids]
            if self.model.crf is not None and len(js) > 1:
                # a window cut mid-sentence may begin inside an entity (I-); where the window before
                # ended outside one, that I- starts the entity: keep the output valid IOB2
                tags = repair_bio(tags)[0]
            results.append(tags)
            if temperature is not None:
                pieces = [(windows[j], preds[j], extra[j]) for j in js]
                spans = tags_to_spans(tags)
                if spans and self.model.crf is not None and crf_moves is None:
                    trans, end = self.model.crf.transition_scores(temperature)
                    crf_moves = (trans.cpu().tolist(), end.cpu().tolist())
                scores.append({(s.start, s.end): self._span_probability(s, ids, len(words), pieces, temperature,
                                                                       crf_moves)
                               for s in spans})
        return results, scores if temperature is not None else None

    def _span_probability(self, span: Span, ids: list[int], n_words: int,
                          pieces: list[tuple[Window, list[int], WindowScores]], temperature: float,
                          crf_moves: tuple[list[list[float]], list[float]] | None = None) -> float:
        """The probability the model gives this exact span: its first tag, I- through its last word,
        and no I- of its type right after it.  Under a CRF that is the segment's marginal by
        forward-backward (a span across a window cut multiplies its parts); for softmax taggers it
        is the same product under the per-word distributions (first sub-words), taken as independent."""
        inside = self.label2id[f"I-{span.label}"]
        crf = self.model.crf
        if crf is not None:
            assert crf_moves is not None
            trans, end = crf_moves
            log_p = 0.0
            for window, path, sc in pieces:
                o0, n = window.owned[0] if window.owned else 0, len(window.owned)
                a, b = max(span.start, o0), min(span.end, o0 + n)
                if a >= b:
                    continue
                first = path[a - o0] if a == span.start else inside
                alpha, beta, log_z, emissions = sc.rows(crf, temperature)
                log_p += segment_log_prob(alpha, beta, log_z, emissions, trans, end, n, a - o0, b - o0, first, inside)
            return math.exp(log_p)
        needed = range(span.start, min(span.end + 1, n_words))  # the span's words and the one after
        word_rows: dict[int, torch.Tensor] = {}
        for window, _, sc in pieces:
            own = set(window.owned)
            for pos, word in enumerate(window.word_ids):
                if word in needed and word in own and word not in word_rows:
                    word_rows[word] = (sc.emissions[pos] / temperature).softmax(-1)  # type: ignore[index]
        p = float(word_rows[span.start][ids[span.start]])
        for word in range(span.start + 1, span.end):
            p *= float(word_rows[word][inside])
        if span.end < n_words:
            p *= 1.0 - float(word_rows[span.end][inside])
        return p

    def report_extra(self) -> dict[str, Any]:
        return {"kind": self.kind, "backend": self.backend, "precision": self.precision,
                "score_temperature": self.temperature, "encoding": self.last_stats}

    def forward_flops(self, token_lists: Sequence[Sequence[str]]) -> float | None:
        """The backbone's :func:`~bioner.models.encoder.forward_flops` over these sentences' windows."""
        lengths = [len(w) for w in self.encoder().encode_many(token_lists)]
        return forward_flops(self.model.backbone, sum(lengths), sum(n * n for n in lengths))
