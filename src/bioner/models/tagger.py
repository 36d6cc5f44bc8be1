"""The Tagger: load a trained model folder and turn token lists into tag lists.

``Tagger.load(run_dir).predict([["Aspirin", "causes", "ulcers"]])`` returns
``[["B-Chemical", "O", "B-Disease"]]``.  Prediction batches windows of similar length with
dynamic padding under ``torch.inference_mode`` and returns results in input order.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from bioner.corpus.documents import Document, TextSpan, sentence_spans
from bioner.corpus.text import text_to_sentences
from bioner.corpus.types import Sentence
from bioner.encoding.batches import collate, token_budget_batches
from bioner.encoding.subwords import SubwordEncoder, Window, stitch
from bioner.errors import ModelError
from bioner.models.encoder import TokenTagger, load_encoder, word_emissions

log = logging.getLogger(__name__)
TAGGER_FILE = "tagger.json"


class Tagger(ABC):
    """What every tagger kind offers; ``Tagger.load`` picks the right kind from the folder."""

    kind = "base"

    @staticmethod
    def load(path: str | Path, threads: int | None = None, backend: str = "auto") -> "Tagger":
        return load_tagger(path, threads, backend)

    @abstractmethod
    def predict(self, token_lists: Sequence[Sequence[str]]) -> list[list[str]]:
        """One tag per input token, for every sentence, in input order."""

    def predict_with_scores(self, token_lists: Sequence[Sequence[str]]
                            ) -> tuple[list[list[str]], list[list[float]] | None]:
        """Tags plus a per-token confidence where the model gives one (None otherwise)."""
        return self.predict(token_lists), None

    def predict_sentences(self, sentences: Sequence[Sentence]) -> list[Sentence]:
        tags = self.predict([s.tokens for s in sentences])
        return [Sentence(s.id, s.tokens, t, s.offsets, s.source, dict(s.meta))
                for s, t in zip(sentences, tags)]

    def report_extra(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def tag_text(self, text: str) -> list[TextSpan]:
        """Split, tokenize, tag and map back: spans with exact character offsets into ``text``."""
        return next(iter(self.tag_documents([Document("text", text)]))).spans

    def tag_documents(self, docs: Iterable[Document], batch_sentences: int = 256) -> Iterator[Document]:
        """Tag a stream of documents, batching sentences across documents; documents come out
        in input order as soon as all their sentences are tagged, so memory stays bounded by
        ``batch_sentences`` and the largest single document, not by the stream."""
        waiting: deque[list[Any]] = deque()  # [document, spans so far, sentences left]
        buffer: list[tuple[list[Any], Sentence]] = []

        def flush() -> None:
            lists: list[list[str]] = []
            where: list[int] = []
            for k, (entry, sent) in enumerate(buffer):
                if k and entry is not buffer[k - 1][0]:
                    lists.append([])  # an empty sentence between documents: context never crosses it
                where.append(len(lists))
                lists.append(sent.tokens)
            tags, scores = self.predict_with_scores(lists)
            for k, (entry, sent) in zip(where, buffer):
                entry[1] += sentence_spans(sent, entry[0].text, tags[k], scores[k] if scores else None)
                entry[2] -= 1
            buffer.clear()

        def ready() -> Iterator[Document]:
            while waiting and waiting[0][2] == 0:
                doc, spans, _ = waiting.popleft()
                yield Document(doc.id, doc.text, spans, dict(doc.meta))

        for doc in docs:
            sents = text_to_sentences(doc.text, doc.id)
            entry: list[Any] = [doc, [], len(sents)]
            waiting.append(entry)
            for sent in sents:
                buffer.append((entry, sent))
                if len(buffer) >= batch_sentences:
                    flush()
                    yield from ready()
            yield from ready()
        flush()
        yield from ready()


def model_folder(path: Path) -> Path:
    """A run folder (holding ``model/``) or a model folder itself."""
    if (path / "model" / TAGGER_FILE).is_file():
        return path / "model"
    if (path / TAGGER_FILE).is_file():
        return path
    if not path.exists():
        raise ModelError(f"model folder {path} does not exist")
    raise ModelError(f"{path} is not a bioner model: no {TAGGER_FILE} in it or in {path / 'model'}. "
                     "Give the run folder written by `bioner train`.")


BACKENDS = ("auto", "torch", "onnx", "onnx-fp32")


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def use_bf16(precision: str, device: torch.device) -> bool:
    """``auto``: bf16 where it is fast (CUDA with bf16, CPUs with AMX), fp32 elsewhere."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return device.type == "cpu" and bool(amx and amx())


def load_tagger(path: str | Path, threads: int | None = None, backend: str = "auto",
                device: str = "auto") -> Tagger:
    """Load a trained tagger.  ``backend``: ``torch``; ``onnx`` (the int8 export if there is
    one, else fp32); ``onnx-fp32``; ``auto`` (an ONNX export when the folder has one, else torch)."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend '{backend}' (one of {', '.join(BACKENDS)})")
    folder = model_folder(Path(path))
    meta = json.loads((folder / TAGGER_FILE).read_text(encoding="utf-8"))
    if threads:
        torch.set_num_threads(threads)
    kind = meta.get("kind")
    if kind == "llm-gen":
        from bioner.models.generative import load_generative

        gen = load_generative(folder, meta)
        gen.model.to(pick_device(device))
        return gen
    if kind not in ("encoder", "llm-cls"):
        raise ModelError(f"{folder}: unknown tagger kind {kind!r}")
    model, tokenizer = load_encoder(folder, meta.get("trust_remote_code", False))
    if kind == "llm-cls":
        from bioner.models.llm import make_bidirectional, prepare_llm_tokenizer

        prepare_llm_tokenizer(tokenizer)
        if meta.get("bidirectional"):
            make_bidirectional(model.backbone)
    runner = None
    if backend != "torch":
        from bioner.models.onnx_backend import OnnxRunner, find_onnx

        onnx_path = find_onnx(folder, prefer_int8=backend != "onnx-fp32")
        if onnx_path is None and backend != "auto":
            raise ModelError(f"{folder} has no ONNX export; run `bioner export --model {path} --onnx`")
        if onnx_path is not None:
            runner = OnnxRunner(onnx_path, threads)
    if runner is None:
        model = model.to(pick_device(device))
    tagger = EncoderTagger(model, tokenizer, meta["subword_strategy"], meta["max_subwords"], meta["stride"],
                           runner=runner, context=meta.get("context", 0), shapes=meta.get("word_shape", False))
    tagger.kind = kind
    return tagger


class EncoderTagger(Tagger):
    kind = "encoder"

    def __init__(self, model: TokenTagger, tokenizer: object, strategy: str, max_subwords: int,
                 stride: int, max_tokens_per_batch: int | None = None, runner: Any = None,
                 batch_size: int | None = None, pad_to: int | None = None, context: int = 0,
                 shapes: bool = False) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.runner = runner  # an OnnxRunner, or None for torch
        self.backend = "torch" if runner is None else f"onnx:{runner.path.name}"
        self.tokenizer = tokenizer
        self.labels = model.labels
        self.strategy = strategy
        self.max_subwords = max_subwords
        self.stride = stride
        self.context = context  # neighbouring sub-words each side; token_lists are read in document order
        self.shapes = shapes  # casing classes as token types (model.word_shape)
        # CPUs are fastest with batches that stay in cache (1,024 padded sub-words tag BC5CDR
        # test 30% faster than 8,192 on 2 cores); GPUs want large ones
        self.max_tokens = max_tokens_per_batch or (16384 if self.device.type == "cuda" else 1024)
        self.batch_size = batch_size
        self.pad_to = pad_to  # pad every batch to this many sub-words (the reference study's loop)
        self.last_stats: dict[str, Any] = {}

    def reference_loop(self) -> "EncoderTagger":
        """The same model and encoding run as the reference study's loop does: one sentence per
        batch, padded to 512 sub-words (the baseline the cost benchmarks compare against)."""
        ref = EncoderTagger(self.model, self.tokenizer, self.strategy, self.max_subwords, self.stride,
                            runner=self.runner, batch_size=1, pad_to=512, context=self.context,
                            shapes=self.shapes)
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
                # bf16 autocast on GPUs that support it; fp32 on CPU (bf16 there is slower on most CPUs)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"
                                    and torch.cuda.is_bf16_supported()):
                    logits = self.model.emissions(batch["input_ids"], batch["attention_mask"],
                                                  batch.get("token_type_ids")).float()
            if self.model.crf is not None:
                emissions = word_emissions(logits, batch["word_pos"])
                paths = self.model.crf.decode(emissions, batch["word_mask"])
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
            results.append([self.labels[i] for i in ids])
            scores.append(word_p)
        self.last_stats = enc.stats.to_dict()
        if enc.stats.empty_words:
            log.warning("%d word(s) had no sub-words and were read as the unknown token (e.g. %s)",
                        enc.stats.empty_words, ", ".join(enc.stats.empty_word_examples[:3]))
        return results, scores

    def report_extra(self) -> dict[str, Any]:
        return {"kind": self.kind, "backend": self.backend, "encoding": self.last_stats}
