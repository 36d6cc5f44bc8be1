"""CoNLL / BIO column files: a streaming reader that knows ``path:line`` and a writer.

The reader accepts the layouts found in the wild: ``token<TAB>tag`` (the shared datasets),
space-separated columns, the 4-column JNLPBA/CoNLL-2003 layout (token first, tag last),
``-DOCSTART-`` lines, CRLF line ends, a UTF-8 BOM and trailing whitespace.  Anything else is
a :class:`~bioner.errors.CorpusFormatError` naming the file and line; nothing is skipped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bioner.corpus.bio import TAG_PATTERNS
from bioner.corpus.types import Sentence
from bioner.errors import CorpusFormatError
from bioner.files import atomic_write

_SPACES = re.compile(r"[ \t]+")
DOCSTART = "-DOCSTART-"


@dataclass(slots=True)
class ConllLayout:
    """Where the token and the tag sit in each line."""

    token_col: int = 0
    tag_col: int = -1
    sep: str | None = None  # None: runs of tabs/spaces; else the exact separator
    scheme: str = "iob2"


def _split(line: str, sep: str | None) -> list[str]:
    if sep is None:
        return _SPACES.split(line)
    return line.split(sep)


def iter_conll(
    path: str | Path,
    layout: ConllLayout | None = None,
) -> Iterator[Sentence | CorpusFormatError]:
    """Yield sentences and, in file order, the problems met; never stops at a problem.

    A sentence that contains a bad line is not yielded (its problem is), so a caller that
    collects problems sees all of them and one that raises stops at the first.
    """
    layout = layout or ConllLayout()
    tag_re = TAG_PATTERNS[layout.scheme]
    path = Path(path)
    stem = path.stem
    n_cols: int | None = None
    cols_line = 0
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    bad = False
    n_sent = 0
    doc = 0

    def flush() -> Sentence | None:
        nonlocal tokens, tags, bad, n_sent
        sent = None
        if tokens and not bad:
            sent = Sentence(
                id=f"{stem}-{n_sent}",
                tokens=tokens,
                tags=tags if n_cols != 1 else None,
                source=f"{path}:{first_line}",
                meta={"doc": str(doc)} if doc else {},
            )
            n_sent += 1
        tokens, tags, bad = [], [], False
        return sent

    try:
        handle = open(path, "rb")
    except OSError as exc:
        yield CorpusFormatError(path, 0, f"cannot open file ({exc.strerror})")
        return
    with handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = True
                yield CorpusFormatError(
                    path, lineno,
                    f"non-UTF-8 bytes at byte {exc.start} of the line "
                    f"({raw[exc.start:exc.start + 4]!r}); re-encode the file as UTF-8",
                )
                continue
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            line = line.rstrip(" \t\r\n")
            if "\r" in line:
                bad = True
                yield CorpusFormatError(
                    path, lineno,
                    "carriage return inside a line: the file has old-Mac (CR-only) line ends, which would "
                    "merge its lines into one; convert them first (e.g. tr '\\r' '\\n' < in > out)",
                )
                continue
            if not line:
                sent = flush()
                if sent is not None:
                    yield sent
                continue
            if line.startswith(DOCSTART):
                sent = flush()
                if sent is not None:
                    yield sent
                doc += 1
                continue
            parts = _split(line, layout.sep)
            if n_cols is None:
                n_cols, cols_line = len(parts), lineno
            elif len(parts) != n_cols:
                bad = True
                yield CorpusFormatError(
                    path, lineno,
                    f"expected {n_cols} columns (as on line {cols_line}), got {len(parts)}: {line!r}",
                )
                continue
            if not tokens:
                first_line = lineno
            token = parts[layout.token_col]
            if not token:
                bad = True
                yield CorpusFormatError(path, lineno, f"empty token: {line!r}")
                continue
            tokens.append(token)
            if n_cols > 1:
                tag = parts[layout.tag_col]
                if not tag_re.match(tag):
                    bad = True
                    yield CorpusFormatError(
                        path, lineno,
                        f"unknown tag shape {tag!r} (expected O, B-Type or I-Type"
                        f"{'' if layout.scheme == 'iob2' else ' in ' + layout.scheme.upper()})",
                    )
                    continue
                tags.append(tag)
        sent = flush()
        if sent is not None:
            yield sent


def read_conll(
    path: str | Path,
    token_col: int = 0,
    tag_col: int = -1,
    sep: str | None = None,
    scheme: str = "iob2",
) -> Iterator[Sentence]:
    """Stream the sentences of a CoNLL file; raise CorpusFormatError at the first problem."""
    for item in iter_conll(path, ConllLayout(token_col, tag_col, sep, scheme)):
        if isinstance(item, CorpusFormatError):
            raise item
        yield item


def load_conll(path: str | Path, **layout: object) -> list[Sentence]:
    """All sentences of a file, for callers that need random access."""
    return list(read_conll(path, **layout))  # type: ignore[arg-type]


def format_conll(sentences: Iterable[Sentence], sep: str = "\t") -> Iterator[str]:
    """The lines of a CoNLL file: one ``token<sep>tag`` per token, a blank line after each sentence."""
    for sent in sentences:
        if sent.tags is None:
            for tok in sent.tokens:
                yield tok + "\n"
        else:
            for tok, tag in zip(sent.tokens, sent.tags):
                yield f"{tok}{sep}{tag}\n"
        yield "\n"


def write_conll(sentences: Iterable[Sentence], path: str | Path | IO[str], sep: str = "\t") -> int:
    """Write sentences atomically (temp file then rename); returns the number written.

    The output of reading a shared dataset file and writing it back is byte-identical.
    """
    if isinstance(path, io.TextIOBase) or hasattr(path, "write"):
        n = 0
        for line in format_conll(sentences, sep):
            path.write(line)  # type: ignore[union-attr]
            n += line == "\n"
        return n
    n = 0
    with atomic_write(path, newline="\n") as out:
        for line in format_conll(sentences, sep):
            out.write(line)
            n += line == "\n"
    return n
