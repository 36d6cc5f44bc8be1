"""``bioner data convert``: between document formats and CoNLL, reporting what did not map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bioner.corpus.conll import write_conll
from bioner.corpus.documents import (
    OVERLAP_POLICIES,
    ConversionReport,
    documents_to_sentences,
)
from bioner.corpus.formats import guess_format, read_documents, write_documents
from bioner.errors import InputError
from bioner.files import check_output


def convert_command(
    source: Annotated[Path, typer.Argument(help="Input file (or brat folder).")],
    target: Annotated[Path, typer.Argument(help="Output file (or brat folder).")],
    from_format: Annotated[str | None, typer.Option("--from", help="jsonl, pubtator, brat, bioc-xml, bioc-json.")] = None,
    to_format: Annotated[str | None, typer.Option("--to", help="conll, jsonl, pubtator, brat, bioc-xml, bioc-json.")] = None,
    overlap: Annotated[str, typer.Option(help="Overlapping/nested annotations: longest, first or error.")] = "longest",
) -> None:
    """Convert documents; every annotation that did not map cleanly is counted and listed."""
    if overlap not in OVERLAP_POLICIES:
        raise InputError(f"--overlap {overlap!r}: one of {', '.join(OVERLAP_POLICIES)}")
    check_output(target, [source])  # before anything is read
    if not source.exists():
        raise InputError(f"{source} does not exist")
    report = ConversionReport()
    docs = read_documents(source, from_format, report)
    fmt = to_format or guess_format(target)
    if fmt == "conll":
        n = write_conll(documents_to_sentences(docs, overlap, report), target)
        typer.echo(f"wrote {n} sentences to {target}", err=True)
    else:
        n = write_documents(docs, target, fmt)
        typer.echo(f"wrote {n} documents to {target}", err=True)
    summary = {k: v for k, v in report.to_dict().items() if k != "details" and v}
    if summary:
        typer.echo("report: " + json.dumps(summary), err=True)
    for line in report.details:
        typer.echo(f"  {line}", err=True)
