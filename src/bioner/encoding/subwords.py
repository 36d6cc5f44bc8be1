"""Words ↔ sub-words: label alignment, sliding windows, and stitching predictions back.

No word is ever lost: a sentence longer than the model's window is cut into overlapping
windows at word boundaries, every word is *owned* by exactly one window (the one where it
has the most context on both sides), and only the owner's prediction is kept.  With ``context > 0`` a
sentence that fits one window also sees up to that many sub-words of the sentences before and
after it (FLERT-style document context); those sub-words are never labelled nor owned.  Words the
tokenizer turns into nothing (odd control characters, say) are replaced by the unknown
token and counted, so they still get a prediction.

With ``shapes=True`` every sub-word also gets a casing class (:func:`case_shape`) that the model
reads as its token type: uncased vocabularies (MiniLM, BiomedBERT) otherwise cannot tell
``NO`` (nitric oxide) from ``no`` or ``ALL`` (a leukaemia) from ``all``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

IGNORE = -100
STRATEGIES = ("first", "all")
N_SHAPES = 4  # lower-case or uncased (0, what pretrained models saw), Capitalized, UPPER, mIxed


def case_shape(piece: str) -> int:
    """The casing class of a piece of a word: 0 no upper-case letter, 1 Capitalized, 2 UPPER
    (all cased letters upper), 3 mixed."""
    # fast paths for the common pieces (str.islower/isupper also see title-case letters as
    # cased, so where one of those is present they are False and the per-letter rule decides)
    if piece.islower():
        return 0
    if piece.isupper():
        return 2
    cased = [c for c in piece if c.isupper() or c.islower()]
    if not any(c.isupper() for c in cased):
        return 0
    if all(c.isupper() for c in cased):
        return 2
    if cased[0].isupper() and all(c.islower() for c in cased[1:]):
        return 1
    return 3


@dataclass(slots=True)
class Window:
    """One model input: sub-word ids plus, per sub-word, its word (or -1) and label."""

    sentence: int
    input_ids: list[int]
    word_ids: list[int]  # -1 for special tokens
    labels: list[int]  # IGNORE where not trained
    owned: list[int]  # words whose prediction this window gives
    shape_ids: list[int] = field(default_factory=list)  # casing class per sub-word (shapes=True)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(slots=True)
class EncodeStats:
    sentences: int = 0
    words: int = 0
    subwords: int = 0
    windows: int = 0
    split_sentences: int = 0
    empty_words: int = 0
    empty_word_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, int | list[str]]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def _windows(word_starts: list[int], n_sub: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Cut ``n_sub`` sub-words into windows of at most ``size`` at word starts, overlapping
    by about ``stride`` sub-words."""
    if n_sub <= size:
        return [(0, n_sub)]
    bounds = sorted(set(word_starts) | {n_sub})
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        limit = start + size
        if limit >= n_sub:
            spans.append((start, n_sub))
            return spans
        end = max((b for b in bounds if start < b <= limit), default=limit)
        spans.append((start, end))
        target = max(end - stride, start + 1)
        start = min((b for b in bounds if b >= target), default=end)
        if start >= end:  # stride could not be kept (a very long word): no overlap
            start = end


def special_affixes(tokenizer: object) -> tuple[list[int], list[int]]:
    """The special ids a tokenizer puts before and after a single sequence ([CLS] … [SEP],
    <s> … </s>, a lone BOS …), found by encoding a probe with and without them."""
    probe = ["probe"]
    bare = tokenizer(probe, is_split_into_words=True, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    full = tokenizer(probe, is_split_into_words=True, add_special_tokens=True)["input_ids"]  # type: ignore[operator]
    for i in range(len(full) - len(bare) + 1):
        if full[i:i + len(bare)] == bare:
            return list(full[:i]), list(full[i + len(bare):])
    raise ValueError("cannot find where the tokenizer puts its special tokens")


class SubwordEncoder:
    """Turns tokenized, tagged sentences into windows for a Hugging Face fast tokenizer."""

    def __init__(self, tokenizer: object, label2id: dict[str, int], strategy: str = "first",
                 max_subwords: int = 256, stride: int = 64, context: int = 0, shapes: bool = False) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown sub-word strategy '{strategy}' (first or all)")
        self.tok = tokenizer
        self.label2id = label2id
        self.strategy = strategy
        self.prefix, self.suffix = special_affixes(tokenizer)
        self.content = max_subwords - len(self.prefix) - len(self.suffix)
        if self.content < 8:
            raise ValueError(f"max_subwords={max_subwords} leaves no room for text")
        self.stride = min(stride, self.content // 2)
        self.context = context
        self.shapes = shapes
        self.stats = EncodeStats()

    def _tokenize(self, word_lists: list[list[str]]) -> Any:
        """One batch call to the tokenizer: pre-split words, no special tokens, offsets where
        casing classes need them."""
        return self.tok(word_lists, is_split_into_words=True, add_special_tokens=False,  # type: ignore[operator]
                        return_offsets_mapping=self.shapes)

    def _subwords(self, words: Sequence[str], enc: Any = None, row: int = 0) -> tuple[list[int], list[int], list[int]]:
        """Sub-word ids, their word indices, and their casing classes (zeros unless ``shapes``).
        ``enc``/``row``: this sentence's row of a batch encoding already made (see :meth:`_subwords_many`)."""
        fixed = list(words)
        if enc is None:
            enc, row = self._tokenize([fixed]), 0
        word_ids = enc.word_ids(row)
        present = set(word_ids)
        if len(present) < len(words):
            for i, w in enumerate(words):
                if i not in present:
                    self.stats.empty_words += 1
                    if len(self.stats.empty_word_examples) < 10:
                        self.stats.empty_word_examples.append(repr(w))
                    fixed[i] = self.tok.unk_token  # type: ignore[attr-defined]
            enc, row = self._tokenize([fixed]), 0
            word_ids = enc.word_ids(row)
        ids = list(enc["input_ids"][row])
        if self.shapes:  # offsets are relative to each word for pre-split input
            shapes = [case_shape(fixed[w][a:b]) for w, (a, b) in zip(word_ids, enc["offset_mapping"][row])]
        else:
            shapes = [0] * len(ids)
        return ids, [int(w) for w in word_ids], shapes

    def _subwords_many(self, word_lists: Sequence[Sequence[str]]) -> list[tuple[list[int], list[int], list[int]]]:
        """:meth:`_subwords` of every sentence, from one batch call to the tokenizer (one call per
        sentence cost ~0.15 ms each in Python around the Rust tokenizer)."""
        present = [k for k, words in enumerate(word_lists) if words]
        out: list[tuple[list[int], list[int], list[int]]] = [([], [], []) for _ in word_lists]
        if not present:
            return out
        enc = self._tokenize([list(word_lists[k]) for k in present])
        for row, k in enumerate(present):
            out[k] = self._subwords(word_lists[k], enc, row)
        return out

    def encode_many(self, word_lists: Sequence[Sequence[str]],
                    tag_lists: Sequence[Sequence[str] | None] | None = None) -> list[Window]:
        """Windows of every non-empty sentence, in order.  With ``context > 0`` the neighbours
        in list order give the context; an empty sentence is a boundary (between documents)."""
        subs = self._subwords_many(word_lists)
        out: list[Window] = []
        for k, words in enumerate(word_lists):
            if not words:
                continue
            left: list[tuple[int, int]] = []  # (sub-word id, casing class)
            right: list[tuple[int, int]] = []
            if self.context:
                j = k - 1
                while j >= 0 and word_lists[j] and len(left) < self.context:
                    left = list(zip(subs[j][0], subs[j][2])) + left
                    j -= 1
                j = k + 1
                while j < len(subs) and word_lists[j] and len(right) < self.context:
                    right = right + list(zip(subs[j][0], subs[j][2]))
                    j += 1
                left, right = left[-self.context:], right[: self.context]
            tags = tag_lists[k] if tag_lists is not None else None
            out += self.encode(k, words, tags, subs[k], left, right)
        return out

    def encode(self, index: int, words: Sequence[str], tags: Sequence[str] | None = None,
               subwords: tuple[list[int], list[int], list[int]] | None = None,
               left: Sequence[tuple[int, int]] = (), right: Sequence[tuple[int, int]] = ()) -> list[Window]:
        """Windows of one sentence; ``left``/``right``: (sub-word id, casing class) of context."""
        ids, word_ids, shapes = subwords or self._subwords(words)
        self.stats.sentences += 1
        self.stats.words += len(words)
        self.stats.subwords += len(ids)
        starts = [k for k, w in enumerate(word_ids) if k == 0 or word_ids[k - 1] != w]
        first_sub = {word_ids[k]: k for k in reversed(starts)}
        last_sub: dict[int, int] = {}
        for k, w in enumerate(word_ids):
            last_sub[w] = k
        cuts = _windows(starts, len(ids), self.content, self.stride)
        if len(cuts) > 1:
            self.stats.split_sentences += 1
        # owner: the window that holds the whole word with the most context around it
        owner: dict[int, int] = {}
        margin: dict[int, int] = {}
        for c, (lo, hi) in enumerate(cuts):
            for w in range(len(words)):
                a, b = first_sub[w], last_sub[w]
                inside = lo <= a and b < hi
                if not inside and not (lo <= a < hi and w not in owner):
                    continue
                m = min(a - lo, hi - 1 - b) if inside else -1
                if w not in owner or m > margin[w]:
                    owner[w], margin[w] = c, m
        windows = []
        for c, (lo, hi) in enumerate(cuts):
            piece_ids = ids[lo:hi]
            piece_shapes = shapes[lo:hi]
            piece_words = word_ids[lo:hi]
            owned = sorted(w for w, o in owner.items() if o == c)
            own = set(owned)
            labels = [IGNORE] * len(piece_ids)
            if tags is not None:
                for k, w in enumerate(piece_words):
                    if w not in own:
                        continue
                    if self.strategy == "all" or lo + k == first_sub[w]:
                        labels[k] = self.label2id[tags[w]]
            if len(cuts) == 1 and (left or right):  # context fills the room the sentence leaves
                room = self.content - len(piece_ids)
                n_right = min(len(right), max(room // 2, room - len(left)))
                n_left = min(len(left), room - n_right)
                ctx_l, ctx_r = list(left[len(left) - n_left:]), list(right[:n_right])
                piece_ids = [i for i, _ in ctx_l] + piece_ids + [i for i, _ in ctx_r]
                piece_shapes = [c for _, c in ctx_l] + piece_shapes + [c for _, c in ctx_r]
                piece_words = [-1] * n_left + piece_words + [-1] * n_right
                labels = [IGNORE] * n_left + labels + [IGNORE] * n_right
            pre, suf = [-1] * len(self.prefix), [-1] * len(self.suffix)
            windows.append(Window(
                index, self.prefix + piece_ids + self.suffix, pre + piece_words + suf,
                [IGNORE] * len(pre) + labels + [IGNORE] * len(suf), owned,
                [0] * len(pre) + piece_shapes + [0] * len(suf) if self.shapes else [],
            ))
        self.stats.windows += len(windows)
        return windows


def stitch(n_words: int, windows: Sequence[Window], predictions: Sequence[Sequence[int]],
           strategy: str) -> list[int]:
    """Word-level label ids from per-sub-word label ids of a sentence's windows.

    ``first``: the owner window's prediction at the word's first sub-word; ``all``: majority
    vote over the word's sub-words in its owner window, ties going to the first sub-word.
    """
    out = [-1] * n_words
    for window, pred in zip(windows, predictions):
        own = set(window.owned)
        votes: dict[int, list[int]] = {}
        for k, w in enumerate(window.word_ids):
            if w in own:
                votes.setdefault(w, []).append(int(pred[k]))
        for w, v in votes.items():
            if strategy == "first" or len(v) == 1:
                out[w] = v[0]
            else:
                counts = Counter(v)
                best = max(counts.values())
                out[w] = next(x for x in v if counts[x] == best)
    missing = [w for w, v in enumerate(out) if v < 0]
    if missing:
        raise RuntimeError(f"words {missing[:5]} got no prediction; this is a bioner bug")
    return out
