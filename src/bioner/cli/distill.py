"""``bioner distill``: teachers label unlabelled text; a cheap student learns from it and gold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bioner.config import build_config


def distill_command(
    teacher: Annotated[list[str], typer.Option(help="Teacher run folder (encoder, llm-cls or llm-gen); repeat for an ensemble.")],
    unlabeled: Annotated[list[str], typer.Option(help="Unlabelled text: .txt (a document per line), .jsonl, .pubtator, BioC, or CoNLL (tags ignored); repeat for more.")],
    dataset: Annotated[str, typer.Option(help="The gold dataset (train for the student, dev for selection, test for the report).")],
    out: Annotated[Path, typer.Option(help="The student's run folder.")],
    student: Annotated[str, typer.Option(help="'minilm' (embedded default) or an encoder model folder.")] = "minilm",
    alpha: Annotated[float | None, typer.Option(help="Weight of the KL term on pseudo-labelled words (default 0.5).")] = None,
    temperature: Annotated[float | None, typer.Option(help="Softening temperature of the KL term (default 2).")] = None,
    hard: Annotated[bool, typer.Option("--hard", help="Train on the teachers' argmax tags only (no KL term).")] = False,
    limit_unlabeled: Annotated[int | None, typer.Option(help="Pseudo-label at most N sentences.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    limit_train: Annotated[int | None, typer.Option(help="Use the first N gold training sentences.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML run config for the student.")] = None,
    preset: Annotated[str, typer.Option(help="cpu (default) or paper.")] = "cpu",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted distillation in --out.")] = False,
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. train.lr=3e-4")] = None,
) -> None:
    """Pseudo-label unlabelled text with the teachers, then train the student on gold + pseudo-labels."""
    from bioner.recipes.distill import distill

    section: dict[str, Any] = {"teachers": teacher, "unlabeled": unlabeled, "hard": hard}
    for key, value in (("alpha", alpha), ("temperature", temperature), ("limit_unlabeled", limit_unlabeled)):
        if value is not None:
            section[key] = value
    flags: dict[str, Any] = {"data": {"dataset": dataset}, "model": {"name": student, "kind": "encoder"},
                             "train": {}, "distill": section}
    if epochs is not None:
        flags["train"]["epochs"] = epochs
    if limit_train is not None:
        flags["data"]["limit_train"] = limit_train
    cfg = build_config(preset, config, flags, overrides)
    result, stats = distill(cfg, out, resume=resume)
    typer.echo(f"pseudo-labelled {stats.kept} sentences ({stats.dropped_in_dev_or_test} dropped as dev/test "
               f"sentences, {stats.duplicates} duplicates, {stats.empty} empty) in {stats.seconds:.0f} s")
    typer.echo(f"run folder: {result.run_dir}")
    typer.echo(f"kept epoch {result.best_epoch} of {result.epochs_run} ({result.selection}"
               + (f": {result.best_dev_f1:.4f}" if result.best_dev_f1 is not None else "")
               + f"), training {result.train_seconds:.0f} s")
    if result.test_report is not None:
        typer.echo("\ntest:\n" + result.test_report.to_markdown())
