"""``bioner demo``: the README's first command — train the embedded default model on the
bundled sample, score it, and tag a sentence, offline, in a few minutes on a laptop CPU."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from bioner.config import build_config, load_config
from bioner.errors import BionerError

EXAMPLE = "Long-term lithium therapy was associated with acute renal failure and hypothyroidism."


def demo_command(
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/demo"),
    epochs: Annotated[int, typer.Option(help="Epochs on the sample.")] = 8,
    sentence: Annotated[str, typer.Option(help="The sentence to tag at the end.")] = EXAMPLE,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted demo run.")] = False,
) -> None:
    """Train MiniLM on the bundled sample, print the test report and tag a sentence."""
    from bioner.models import load_tagger
    from bioner.recipes.train import train

    cfg = build_config("cpu", flags={"data": {"dataset": "sample"},
                                     "train": {"epochs": epochs, "patience": None, "lr": 2e-4,
                                               "batch_size": 16}})
    if not resume and _is_finished_demo(out):
        typer.echo(f"replacing the earlier demo run in {out}")
        shutil.rmtree(out)
    typer.echo(f"training the embedded MiniLM on the bundled sample ({epochs} epochs) into {out} ...")
    result = train(cfg, out, resume=resume)
    typer.echo(f"kept epoch {result.best_epoch}, dev strict F1 {result.best_dev_f1 or 0:.4f}, "
               f"training {result.train_seconds:.0f} s\n")
    if result.test_report is not None:
        typer.echo(result.test_report.to_markdown())
    typer.echo(f"\n{sentence}")
    for span in load_tagger(out).tag_text(sentence):
        typer.echo(f"  {span.label:10s} {span.start:4d}-{span.end:<4d} {span.text}")


def _is_finished_demo(out: Path) -> bool:
    """Only a folder the demo itself wrote (a finished run on the bundled sample) is replaced."""
    if not (out / "eval_test.json").is_file() or not (out / "config.yaml").is_file():
        return False
    try:
        return load_config(out / "config.yaml").data.dataset == "sample"
    except BionerError:
        return False
