"""``bioner predict``: tag CoNLL tokens, raw text or documents with a trained model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bioner.corpus.conll import load_conll, write_conll
from bioner.corpus.formats import guess_format
from bioner.errors import BionerError

CONLL_SUFFIXES = (".conll", ".tsv", ".iob", ".bio")


def predict_command(
    model: Annotated[Path, typer.Option(help="Run folder from `bioner train`.")],
    input: Annotated[Path | None, typer.Option(help="CoNLL tokens (.conll/.tsv, or a .txt that reads as CoNLL: tags ignored) or documents (.txt one per line, .jsonl, .pubtator, .xml/.json BioC, brat folder).")] = None,
    output: Annotated[Path | None, typer.Option(help="Output: .conll, .jsonl, .pubtator, .xml, .json or a brat folder (default: stdout).")] = None,
    text: Annotated[str | None, typer.Option(help="Raw text to tag; prints spans with character offsets.")] = None,
    from_format: Annotated[str | None, typer.Option("--from", help="Input format if the name does not tell.")] = None,
    to_format: Annotated[str | None, typer.Option("--to", help="Output format if the name does not tell.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads.")] = None,
    backend: Annotated[str, typer.Option(help="auto, torch, onnx or onnx-fp32.")] = "auto",
) -> None:
    """Write predicted tags beside tokens, or entity spans with exact offsets for documents."""
    from bioner.corpus.formats import read_documents, write_documents
    from bioner.models.tagger import load_tagger

    if (input is None) == (text is None):
        raise BionerError("give exactly one of --input FILE or --text 'some text'")
    tagger = load_tagger(model, threads, backend)
    if text is not None:
        for span in tagger.tag_text(text):
            typer.echo(json.dumps(span.to_dict(), ensure_ascii=False))
        return
    assert input is not None  # narrowed by the check above
    suffix = input.suffix.lower()
    if (from_format or "") == "conll" or (from_format is None and (
            suffix in CONLL_SUFFIXES or (suffix == ".txt" and guess_format(input) == "conll"))):
        predicted = tagger.predict_sentences(load_conll(input))
        if output is None:
            write_conll(predicted, typer.get_text_stream("stdout"))
        else:
            typer.echo(f"wrote {write_conll(predicted, output)} sentences to {output}", err=True)
        return
    from tqdm import tqdm

    docs = tqdm(read_documents(input, from_format), desc="tagging", unit="doc", disable=not sys.stderr.isatty())
    tagged = tagger.tag_documents(docs)
    if output is None:
        for doc in tagged:
            typer.echo(json.dumps({"id": doc.id, "text": doc.text, "spans": [s.to_dict() for s in doc.spans]},
                                  ensure_ascii=False))
        return
    fmt = to_format or ("conll" if output.suffix.lower() in CONLL_SUFFIXES else None)
    if fmt == "conll":
        from bioner.corpus.documents import documents_to_sentences

        n = write_conll(documents_to_sentences(tagged), output)
        typer.echo(f"wrote {n} sentences to {output}", err=True)
        return
    typer.echo(f"wrote {write_documents(tagged, output, fmt)} documents to {output}", err=True)
