"""``bioner calibrate``: fit the span-score temperature of a trained run on a dev split."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Annotated

import typer

from bioner.cli.options import AllowPickle, TrustRemoteCode, at_least
from bioner.corpus.conll import read_conll
from bioner.corpus.datasets import resolve_dataset
from bioner.errors import BionerError


def calibrate_command(
    model: Annotated[Path, typer.Option(help="Run folder from `bioner train`.")],
    dataset: Annotated[str, typer.Option(help="Dataset name or folder.")],
    split: Annotated[str, typer.Option(help="Split to fit on (never test).")] = "dev",
    limit: Annotated[int | None, typer.Option(callback=at_least(1), help="Only the first N sentences.")] = None,
    trust_remote_code: TrustRemoteCode = False,
    allow_pickle: AllowPickle = False,
) -> None:
    """Pick the temperature whose span scores are best calibrated (lowest ECE) and save it with the model."""
    from bioner.models import load_tagger
    from bioner.models.encoder_tagger import EncoderTagger
    from bioner.models.folder import model_folder, write_calibration

    if split == "test":
        raise BionerError("calibrate on dev (or another held-out split), never on test: test scores would flatter it")
    tagger = load_tagger(model, backend="torch", trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    if not isinstance(tagger, EncoderTagger):
        raise BionerError(f"temperature scaling covers encoder and llm-cls runs; {model} is a {tagger.kind} run")
    sents = list(islice(read_conll(resolve_dataset(dataset).path(split)), limit))
    fit = tagger.fit_temperature([s.tokens for s in sents], [s.tags or [] for s in sents])
    write_calibration(model_folder(model), {**fit, "fitted_on": f"{dataset}:{split}", "n_sentences": len(sents)})
    typer.echo(f"temperature {fit['temperature']:g}: {split} ECE {fit['ece_at_1']:.4f} -> {fit['ece']:.4f}")
