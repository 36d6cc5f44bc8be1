"""The Tagger interface: what every tagger kind offers, whatever model is behind it.

``predict([["Aspirin", "causes", "ulcers"]])`` returns ``[["B-Chemical", "O", "B-Disease"]]``;
``tag_text`` and ``tag_documents`` split raw text, tag it and map the tags back to exact
character offsets.  Serving and corpus-scale tagging build on these methods only.
Load a trained one with :func:`bioner.models.loading.load_tagger`.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from torch import nn

from bioner.corpus.documents import Document, TextSpan, sentence_spans
from bioner.corpus.text import text_to_sentences
from bioner.corpus.types import Sentence
from bioner.errors import ModelError
from bioner.models.runtime import Precision


class Tagger(ABC):
    """What every tagger kind offers; :func:`bioner.models.load_tagger` picks the kind from the folder."""

    kind = "base"
    labels: list[str]
    model: nn.Module  # the torch module (kept for parameter counts also when ONNX runs)
    precision: Precision = "fp32"
    batch_sentences: int = 256  # sentences gathered across documents per model call
    last_stats: dict[str, Any] = {}
    sentences_tagged: int = 0  # by tag_documents over this tagger's life (corpus-scale tagging reports it)

    @abstractmethod
    def predict(self, token_lists: Sequence[Sequence[str]]) -> list[list[str]]:
        """One tag per input token, for every sentence, in input order."""

    def predict_with_scores(self, token_lists: Sequence[Sequence[str]]
                            ) -> tuple[list[list[str]], list[dict[tuple[int, int], float]] | None]:
        """Tags plus, per sentence, each predicted span's probability keyed by its token
        ``(start, end)``, where the model gives one (None otherwise)."""
        return self.predict(token_lists), None

    def word_distributions(self, token_lists: Sequence[Sequence[str]], temperature: float = 1.0) -> list[Any]:
        """Per sentence, a (words, labels) tensor of tag probabilities; taggers without a
        distribution (generative ones) give their predicted tags as one-hot rows."""
        import torch

        index = {label: i for i, label in enumerate(self.labels)}
        out = []
        for tags in self.predict(token_lists):
            rows = torch.zeros(len(tags), len(self.labels))
            rows[torch.arange(len(tags)), torch.tensor([index[t] for t in tags], dtype=torch.long)] = 1.0
            out.append(rows)
        return out

    def predict_sentences(self, sentences: Sequence[Sentence]) -> list[Sentence]:
        tags = self.predict([s.tokens for s in sentences])
        return [Sentence(s.id, s.tokens, t, s.offsets, s.source, dict(s.meta))
                for s, t in zip(sentences, tags)]

    def report_extra(self) -> dict[str, Any]:
        return {"kind": self.kind, "precision": self.precision}

    def forward_flops(self, token_lists: Sequence[Sequence[str]]) -> float | None:
        """FLOPs of one prediction over ``token_lists`` where the kind can count them (else None)."""
        return None

    def tag_text(self, text: str, min_score: float | None = None) -> list[TextSpan]:
        """Split, tokenize, tag and map back: spans with exact character offsets into ``text``.
        All its sentences go to the model in one call (they are all in memory already): the model
        then sorts and batches them by length as ``predict`` does, ~5% faster than 256 at a time."""
        doc = Document("text", text)
        return next(iter(self.tag_documents([doc], batch_sentences=sys.maxsize, min_score=min_score))).spans

    def tag_documents(self, docs: Iterable[Document], batch_sentences: int | None = None,
                      min_score: float | None = None) -> Iterator[Document]:
        """Tag a stream of documents, batching sentences across documents; documents come out
        in input order as soon as all their sentences are tagged, so memory stays bounded by
        ``batch_sentences`` and the largest single document, not by the stream.  ``min_score``
        drops spans whose probability is lower (taggers without scores refuse it)."""
        batch_sentences = batch_sentences or self.batch_sentences
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
            if min_score is not None and scores is None:
                raise ModelError(f"a minimum score was asked for, but this {self.kind} tagger gives no span scores")
            for k, (entry, sent) in zip(where, buffer):
                spans = sentence_spans(sent, entry[0].text, tags[k], scores[k] if scores else None)
                if min_score is not None:
                    spans = [s for s in spans if s.score is not None and s.score >= min_score]
                entry[1] += spans
                entry[2] -= 1
            buffer.clear()

        def ready() -> Iterator[Document]:
            while waiting and waiting[0][2] == 0:
                doc, spans, _ = waiting.popleft()
                yield Document(doc.id, doc.text, spans, dict(doc.meta))

        for doc in docs:
            sents = text_to_sentences(doc.text, doc.id)
            self.sentences_tagged += len(sents)
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
