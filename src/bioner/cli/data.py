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
