"""The ``bioner`` command line: thin commands over library functions, one file each.

Main flow for a newcomer: ``train.py`` → :mod:`bioner.recipes.train`; ``evaluate.py`` →
:mod:`bioner.evaluate`; ``predict.py`` → :func:`bioner.models.load_tagger`.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from bioner.cli import (
    bench,
    calibrate,
    data,
    demo,
    distill,
    evaluate,
    experiment,
    export,
    predict,
    serve,
    tag_corpus,
    train,
)
from bioner.errors import BionerError

app = typer.Typer(
    name="bioner",
    help="Biomedical NER: train, evaluate and compare encoder and LLM taggers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(experiment.app, name="experiment")
app.command("evaluate")(evaluate.evaluate_command)
app.command("train")(train.train_command)
app.command("predict")(predict.predict_command)
app.command("demo")(demo.demo_command)
app.command("bench")(bench.bench_command)
app.command("export")(export.export_command)
app.command("serve")(serve.serve_command)
app.command("calibrate")(calibrate.calibrate_command)
app.command("tag-corpus")(tag_corpus.tag_corpus_command)
app.command("distill")(distill.distill_command)


def quiet_libraries() -> None:
    """Hugging Face's own progress bars and notices would drown bioner's output; environment
    variables do it without importing transformers for commands that never load a model."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    try:
        # standalone_mode=False: bioner, not the CLI framework, decides what Ctrl-C and usage errors print
        code = app(standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except typer.TyperException as exc:  # usage errors: bad option values, missing arguments
        exc.show()  # type: ignore[attr-defined]
        sys.exit(getattr(exc, "exit_code", 2))
    except BionerError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug or an environment problem: say so, keep the traceback opt-in
        if os.environ.get("BIONER_DEBUG"):
            raise
        typer.echo(f"error: unexpected {exc.__class__.__name__}: {exc}\n"
                   "(this is likely a bioner bug; rerun with BIONER_DEBUG=1 for the traceback and report it)",
                   err=True)
        sys.exit(2)
    if code == 130:  # the framework turns Ctrl-C into exit code 130
        typer.echo("interrupted", err=True)
    if isinstance(code, int) and code:
        sys.exit(code)
