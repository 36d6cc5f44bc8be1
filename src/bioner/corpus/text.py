"""Raw text → tokens with character offsets, in the benchmark convention.

Punctuation and hyphens are split off as tokens of their own (as in the BC5CDR and ChemProt
files), and every token keeps its offsets: ``text[start:end] == token`` always.
"""

from __future__ import annotations

import re

from bioner.corpus.types import Sentence

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def tokenize(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def text_to_sentence(text: str, sentence_id: str = "text-0") -> Sentence:
    toks = tokenize(text)
    return Sentence(sentence_id, [t for t, _, _ in toks], offsets=[(s, e) for _, s, e in toks])
