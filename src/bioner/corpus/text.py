"""Raw text → sentences → tokens, with character offsets that always hold.

Tokens follow the benchmark convention (BC5CDR, ChemProt, BioRED files): runs of letters and
digits are tokens, every other non-space character is a token of its own, so punctuation,
hyphens, slashes and decimal points are split off.  ``text[start:end] == token`` for every
token, whatever the Unicode, tabs or repeated spaces.

Sentences come from blingfire (a fast rule-based splitter with abbreviation handling; pysbd where
blingfire's native library does not load) plus biomedical rules that re-join splits it gets
wrong: after ``et al.``, ``e.g.``, ``i.e.``, ``Fig.``, ``vs.``, ``approx.``, ``ca.``, ``no.``, a
genus initial before a lower-case species name (``E. coli``), and inside numbers.
Newlines that end a line of prose are not boundaries by themselves; blank lines are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from itertools import accumulate

from bioner.corpus.types import Sentence

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[^\W_]+|[^\s]", re.UNICODE)
_NO_BREAK_AFTER = re.compile(
    r"(?:\bet al|\be\.g|\bi\.e|\bFigs?|\bvs|\bapprox|\bca|\bcf|\bno|\bNo|\bref|\bRefs?|\bDr|\bsp|\bspp"
    r"|\bvol|\bsuppl|\bSuppl|\bTab|\bEq)\.\s*$"
)
_STARTS_LOWER_OR_DIGIT = re.compile(r"^\s*[a-z0-9(\[,;:%]")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def tokenize(text: str, offset: int = 0) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start() + offset, m.end() + offset) for m in _TOKEN.finditer(text)]


def count_tokens(text: str) -> int:
    """How many tokens :func:`tokenize` would make (for batching budgets; no lists built)."""
    return sum(1 for _ in _TOKEN.finditer(text))


def _model_spans(text: str) -> list[tuple[int, int]]:
    """The splitter's sentences as character spans.  Spans out of order, out of bounds or cutting
    a token are dropped here and the text between neighbours is covered by :func:`_cover_gaps`,
    so a splitter failure costs a sentence boundary, never text nor a token."""
    try:
        found = _splitter()(text)
    except AssertionError:  # blingfire's offset mapping asserts on a few inputs (e.g. the empty string)
        return [(0, len(text))]
    spans, pos = [], 0
    for a, b in found:
        if pos <= a < b <= len(text) and not _inside_token(text, a) and not _inside_token(text, b):
            spans.append((a, b))
            pos = b
    return spans or [(0, len(text))]


@lru_cache(maxsize=1)
def _splitter() -> Callable[[str], list[tuple[int, int]]]:
    """blingfire (C++: ~10x faster than pysbd and closer to the gold sentences of six biomedical
    corpora, see bench/sentence_split.py); pysbd where blingfire's native library does not load
    (its wheel carries x86-64 builds only, so not on ARM)."""
    try:
        import blingfire

        blingfire.text_to_sentences_and_offsets("A test. Another.")
        return lambda text: blingfire.text_to_sentences_and_offsets(text)[1]
    except (ImportError, OSError) as err:
        log.warning("sentence splitting with pysbd, ~10x slower: blingfire does not load here (%s)", err)
    import pysbd

    # pysbd builds ~1,500 distinct regular expressions through re's module-level cache (512 kept)
    if getattr(re, "_MAXCACHE", 4096) < 4096:
        re._MAXCACHE = 4096  # type: ignore[attr-defined]
    plain = pysbd.Segmenter(language="en", clean=False)
    located = pysbd.Segmenter(language="en", clean=False, char_span=True)

    def spans(text: str) -> list[tuple[int, int]]:
        pieces = plain.segment(text)  # pieces of the text: their running lengths are the spans
        if "".join(pieces) != text:
            return [(seg.start, seg.end) for seg in located.segment(text)]
        ends = list(accumulate(len(piece) for piece in pieces))
        return list(zip([0, *ends[:-1]], ends))

    return spans


def _inside_token(text: str, i: int) -> bool:
    """Whether position ``i`` falls between two letters/digits, i.e. inside a :func:`tokenize` token."""
    return 0 < i < len(text) and text[i - 1].isalnum() and text[i].isalnum()


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences (whitespace trimmed), covering every non-space character."""
    spans: list[tuple[int, int]] = []
    start = 0
    blocks = [(m.start(), m.end()) for m in _BLANK_LINE.finditer(text)] + [(len(text), len(text))]
    for b_start, b_end in blocks:
        block = text[start:b_start]
        if block.strip():
            merged: list[list[int]] = []
            for a, b in _model_spans(block):
                a, b = a + start, b + start
                if merged and (_NO_BREAK_AFTER.search(text[merged[-1][0]:merged[-1][1]])
                               or _STARTS_LOWER_OR_DIGIT.match(text[a:b])):
                    merged[-1][1] = b
                else:
                    merged.append([a, b])
            spans += [(a, b) for a, b in merged]
        start = b_end
    out = []
    covered_to = 0
    for a, b in spans:
        a = max(a, covered_to)
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
            covered_to = b
    return _cover_gaps(text, out)


def _cover_gaps(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Any non-space text the splitter left between sentences joins its neighbour."""
    fixed: list[list[int]] = []
    prev_end = 0
    for a, b in spans:
        if text[prev_end:a].strip():
            if fixed:
                fixed[-1][1] = a if not text[a - 1].isspace() else len(text[:a].rstrip())
            else:
                a = len(text[:prev_end]) + (len(text[prev_end:a]) - len(text[prev_end:a].lstrip()))
        fixed.append([a, b])
        prev_end = b
    if text[prev_end:].strip():
        tail_start = prev_end + (len(text[prev_end:]) - len(text[prev_end:].lstrip()))
        fixed.append([tail_start, len(text.rstrip())])
    return [(a, b) for a, b in fixed]


def text_to_sentences(text: str, doc_id: str = "text") -> list[Sentence]:
    """Split and tokenize; each sentence keeps offsets into ``text``."""
    out = []
    for k, (a, b) in enumerate(split_sentences(text)):
        toks = tokenize(text[a:b], a)
        if toks:
            out.append(Sentence(f"{doc_id}-{k}", [t for t, _, _ in toks], offsets=[(s, e) for _, s, e in toks],
                                meta={"doc": doc_id}))
    return out
