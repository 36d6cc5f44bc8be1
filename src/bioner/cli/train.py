"""``bioner train``: fine-tune a tagger and leave a traceable run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bioner.cli.options import at_least
from bioner.config import build_config
from bioner.errors import ConfigError


def train_command(
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. train.lr=3e-4")] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name ($BIONER_DATA_DIR/NAME), folder, or 'sample'.")] = None,
    train: Annotated[Path | None, typer.Option(help="Train CoNLL file (instead of --dataset).")] = None,
    dev: Annotated[Path | None, typer.Option(help="Dev CoNLL file.")] = None,
    test: Annotated[Path | None, typer.Option(help="Test CoNLL file.")] = None,
    model: Annotated[str | None, typer.Option(help="'minilm' (embedded default), a model folder or a hub name.")] = None,
    kind: Annotated[str | None, typer.Option(help="encoder (default), llm-cls (decoder + classification head) or llm-gen (writes token:TAG).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML run config.")] = None,
    preset: Annotated[str, typer.Option(help="cpu (default) or paper (the reference study's recipe).")] = "cpu",
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/latest"),
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    limit_train: Annotated[int | None, typer.Option(help="Use the first N training sentences.")] = None,
    limit_eval: Annotated[int | None, typer.Option(help="Use the first N dev/test sentences.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    crf: Annotated[bool | None, typer.Option("--crf/--no-crf", help="Linear-chain CRF head with valid-BIO Viterbi.")] = None,
    constrained: Annotated[bool | None, typer.Option("--constrained/--no-constrained", help="llm-gen: constrained decoding when scoring (default on).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    nproc: Annotated[int | None, typer.Option(callback=at_least(2), help="Train with N processes on this machine (torch.distributed, gloo on CPU / nccl on GPU); for several machines launch `torchrun ... -m bioner train` yourself.")] = None,
) -> None:
    """Train a tagger, keep the best epoch by dev strict F1, and score it on test."""
    from bioner.recipes import distributed
    from bioner.recipes.train import split_paths
    from bioner.recipes.train import train as run_training

    flags: dict[str, Any] = {"data": {}, "model": {}, "train": {}}
    for section, key, value in (
        ("data", "dataset", dataset), ("data", "train", train and str(train)),
        ("data", "dev", dev and str(dev)), ("data", "test", test and str(test)),
        ("data", "limit_train", limit_train), ("data", "limit_eval", limit_eval),
        ("model", "name", model), ("model", "kind", kind), ("model", "crf", crf), ("model", "constrained", constrained),
        ("train", "epochs", epochs), ("train", "seed", seed), ("train", "threads", threads),
    ):
        if value is not None:
            flags[section][key] = value
    if nproc is not None:
        if distributed.world_from_env().active:
            raise ConfigError("--nproc inside a torchrun launch: drop --nproc (torchrun already started the processes)")
        split_paths(build_config(preset, config, flags, overrides))  # bad settings or data fail here, once
        distributed.launch(nproc, distributed.strip_nproc(sys.argv[1:]), threads)
        return

    cfg = build_config(preset, config, flags, overrides)
    result = run_training(cfg, out, resume=resume)
    if not distributed.world_from_env().main:
        return
    typer.echo(f"run folder: {result.run_dir}")
    typer.echo(f"kept epoch {result.best_epoch} of {result.epochs_run} ({result.selection}"
               + (f": {result.best_dev_f1:.4f}" if result.best_dev_f1 is not None else "")
               + f"), training {result.train_seconds:.0f} s")
    if result.test_report is not None:
        typer.echo("")
        typer.echo("test:")
        typer.echo(result.test_report.to_markdown())
