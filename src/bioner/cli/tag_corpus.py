"""``bioner tag-corpus``: tag whole corpora on Ray Data (local, or a cluster), resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bioner.cli.options import Backend, Precision, at_least


def tag_corpus_command(
    model: Annotated[Path, typer.Option(help="Run folder from `bioner train`.")],
    input: Annotated[list[str], typer.Option(help="Input files or glob patterns ('DIR/*.jsonl'); repeat for more. "
                                                  "JSONL, PubTator, BioC XML/JSON, .txt (one document per line), Parquet (id, text).")],
    output: Annotated[Path, typer.Option(help="Output folder: one shard per input file plus manifest.json.")],
    format: Annotated[str, typer.Option("--format", help="Shard format: jsonl or parquet.")] = "jsonl",
    from_format: Annotated[str | None, typer.Option("--from", help="Input format if the names do not tell (jsonl, pubtator, bioc-xml, bioc-json, txt, parquet).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster to join: auto, ray://host:10001 (default: $RAY_ADDRESS, else a local Ray on this machine).")] = None,
    workers: Annotated[int | None, typer.Option(callback=at_least(1), help="Tagger actors (default: the cluster's CPUs / threads per worker).")] = None,
    threads_per_worker: Annotated[int, typer.Option(callback=at_least(1), help="CPU threads (and CPUs reserved) per actor.")] = 1,
    gpus_per_worker: Annotated[float, typer.Option(help="GPUs per actor (fractions share one GPU).")] = 0.0,
    batch_docs: Annotated[int, typer.Option(callback=at_least(1), help="Documents per actor call.")] = 64,
    backend: Backend = "auto",
    precision: Precision = None,
) -> None:
    """Tag every document of the inputs with exact offsets; a rerun skips finished input files."""
    from bioner.scale.corpus import tag_corpus

    result = tag_corpus(model, input, output, format, from_format, address, workers, threads_per_worker,
                        gpus_per_worker, batch_docs, backend, precision)
    typer.echo(result.summary())
