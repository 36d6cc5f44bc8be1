"""``bioner predict``: tag CoNLL tokens, raw text or documents with a trained model."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from bioner.cli.options import AllowPickle, Backend, Precision, Threads, TrustRemoteCode
from bioner.corpus.bio import spans_to_tags, tags_to_spans
from bioner.corpus.conll import load_conll, write_conll
from bioner.corpus.documents import Document, documents_to_sentences
from bioner.corpus.formats import (
    document_record,
    guess_format,
    read_documents,
    write_documents,
)
from bioner.corpus.types import Sentence
from bioner.errors import BionerError, InputError
from bioner.files import check_output
from bioner.models.base import Tagger

CONLL_SUFFIXES = (".conll", ".tsv", ".iob", ".bio")


def checked_text(text: str) -> str:
    """Text from the command line, refused (not mangled) when it is not valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raw = text.encode("utf-8", "surrogateescape")[max(0, exc.start - 10):exc.end + 10]
        raise InputError(f"--text is not valid UTF-8 (bad byte near {raw!r}); pass UTF-8 text or "
                         "put it in a file and use --input") from None
    return text


def predict_command(
    model: Annotated[Path, typer.Option(help="Run folder from `bioner train`.")],
    input: Annotated[Path | None, typer.Option(help="CoNLL tokens (.conll/.tsv, or a .txt that reads as CoNLL: tags ignored) or documents (.txt one per line, .jsonl, .pubtator, .xml/.json BioC, brat folder).")] = None,
    output: Annotated[Path | None, typer.Option(help="Output: .conll, .jsonl, .pubtator, .xml, .json or a brat folder (default: stdout).")] = None,
    text: Annotated[str | None, typer.Option(help="Raw text to tag; writes one JSONL record {id, text, spans}.")] = None,
    from_format: Annotated[str | None, typer.Option("--from", help="Input format if the name does not tell.")] = None,
    to_format: Annotated[str | None, typer.Option("--to", help="Output format if the name does not tell.")] = None,
    threads: Threads = None,
    backend: Backend = "auto",
    precision: Precision = None,
    min_score: Annotated[float | None, typer.Option(help="Keep only spans whose probability is at least this (0-1).")] = None,
    trust_remote_code: TrustRemoteCode = False,
    allow_pickle: AllowPickle = False,
) -> None:
    """Write predicted tags beside tokens, or entity spans with exact offsets for documents."""
    from bioner.models import load_tagger
    from bioner.models.runtime import settle_heap

    if (input is None) == (text is None):
        raise BionerError("give exactly one of --input FILE or --text 'some text'")
    if min_score is not None and not 0.0 <= min_score <= 1.0:
        raise InputError(f"--min-score {min_score}: a probability between 0 and 1")
    if text is not None:
        text = checked_text(text)
    check_output(output, [input])  # before anything is read or loaded
    if input is not None and not input.exists():
        raise InputError(f"--input {input} does not exist")
    tagger = load_tagger(model, threads, backend, precision=precision, trust_remote_code=trust_remote_code,
                         allow_pickle=allow_pickle)
    settle_heap()  # loaded once, then tags: keep full garbage collections off the loaded heap
    if text is not None:
        _write_documents(tagger.tag_documents([Document("text", text)], min_score=min_score), output, to_format)
        return
    assert input is not None  # narrowed by the check above
    suffix = input.suffix.lower()
    if (from_format or "") == "conll" or (from_format is None and (
            suffix in CONLL_SUFFIXES or (suffix == ".txt" and guess_format(input) == "conll"))):
        predicted = predict_conll(tagger, load_conll(input), min_score)
        if output is None:
            write_conll(predicted, typer.get_text_stream("stdout"))
        else:
            typer.echo(f"wrote {write_conll(predicted, output)} sentences to {output}", err=True)
        return
    from tqdm import tqdm

    docs = tqdm(read_documents(input, from_format), desc="tagging", unit="doc", disable=not sys.stderr.isatty())
    _write_documents(tagger.tag_documents(docs, min_score=min_score), output, to_format)


def predict_conll(tagger: Tagger, sentences: list[Sentence], min_score: float | None) -> list[Sentence]:
    """Tags for CoNLL input; spans under ``min_score`` become O."""
    if min_score is None:
        return tagger.predict_sentences(sentences)
    tags, scores = tagger.predict_with_scores([s.tokens for s in sentences])
    if scores is None:
        raise InputError(f"--min-score: this {tagger.kind} tagger gives no span scores")
    out = []
    for sent, t, sc in zip(sentences, tags, scores):
        kept = [s for s in tags_to_spans(t) if sc.get((s.start, s.end), 0.0) >= min_score]
        out.append(Sentence(sent.id, sent.tokens, spans_to_tags(kept, len(t)), sent.offsets, sent.source, dict(sent.meta)))
    return out


def _write_documents(tagged: Iterable[Document], output: Path | None, to_format: str | None) -> None:
    if output is None:
        for doc in tagged:
            typer.echo(json.dumps(document_record(doc), ensure_ascii=False))
        return
    fmt = to_format or ("conll" if output.suffix.lower() in CONLL_SUFFIXES else None)
    if fmt == "conll":
        n = write_conll(documents_to_sentences(tagged), output)
        typer.echo(f"wrote {n} sentences to {output}", err=True)
        return
    typer.echo(f"wrote {write_documents(tagged, output, fmt)} documents to {output}", err=True)
