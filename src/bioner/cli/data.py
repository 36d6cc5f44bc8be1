"""``bioner data``: look at corpora before trusting them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioner.cli.convert import convert_command
from bioner.cli.output import Format, emit
from bioner.corpus.datasets import DatasetFiles, resolve_dataset
from bioner.corpus.stats import file_stats, stats_markdown
from bioner.corpus.validate import validate_conll
from bioner.errors import InputError

app = typer.Typer(help="Corpus statistics, validation and conversion.", no_args_is_help=True)
app.command("convert")(convert_command)


def _files(target: str) -> DatasetFiles:
    path = Path(target)
    if path.is_file():
        return DatasetFiles(path.stem, {path.stem: path})
    return resolve_dataset(target)


@app.command("stats")
def stats_command(
    dataset: Annotated[str, typer.Argument(help="Dataset name (in $BIONER_DATA_DIR), folder or file.")],
    fmt: Annotated[Format, typer.Option("--format", help="json or md.")] = Format.md,
) -> None:
    """Sentences, tokens, entities per type and entity lengths (1, 2, >=3 tokens) per split."""
    files = _files(dataset)
    per_split = {split: file_stats(path) for split, path in files.splits.items()}
    payload = {"dataset": files.name,
               "splits": {split: s.to_dict() for split, s in per_split.items()}}
    emit(payload, stats_markdown(files.name, per_split), fmt)


@app.command("validate")
def validate_command(
    paths: Annotated[list[str], typer.Argument(help="CoNLL files, dataset folders or names.")],
) -> None:
    """List every problem with path:line; exit 1 if there is any."""
    total = 0
    for target in paths:
        for path in _files(target).splits.values():
            problems = validate_conll(path)
            total += len(problems)
            for problem in problems:
                typer.echo(str(problem))
            if not problems:
                typer.echo(f"{path}: ok")
    if total:
        typer.echo(f"{total} problem(s) found", err=True)
        raise typer.Exit(1)


@app.command("fetch")
def fetch_command(
    name: Annotated[str, typer.Argument(help="BC5CDR, NCBI-disease, BC2GM, JNLPBA, LINNAEUS or BioRED.")],
    data_dir: Annotated[Path | None, typer.Option(help="Where NAME/ goes (default $BIONER_DATA_DIR).")] = None,
    from_file: Annotated[Path | None, typer.Option(help="A local copy (archive or folder) instead of downloading.")] = None,
    mirror: Annotated[str | None, typer.Option(help="Replace the upstream URL prefix (a local mirror).")] = None,
    sha256: Annotated[list[str] | None, typer.Option(help="Expected digest as PART=HEX (train=…); repeatable.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
) -> None:
    """Download a public benchmark, verify, convert to NAME/{train,dev,test}.txt, write SOURCE.md."""
    from bioner.corpus.datasets import data_dir as default_data_dir
    from bioner.corpus.fetch import fetch

    pins: dict[str, str] = {}
    for item in sha256 or []:
        part, sep, digest = item.partition("=")
        if not sep or not part or not digest:
            raise InputError(f"--sha256 {item!r}: expected PART=HEX, e.g. train=<64 hex characters>")
        pins[part] = digest
    folder, warnings = fetch(name, data_dir or default_data_dir(), from_file=from_file, mirror=mirror,
                             sha256=pins, force=force)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {folder}")
